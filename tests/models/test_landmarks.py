"""MediaPipe face mesh on real faces: landmarks land on the face, presence separates face from background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.landmarks import MediaPipeFaceMesh
from models.packs import load_pack
from pipelines.face_match import FaceMatcher
from pipelines.media import load_image


@pytest.fixture(scope="module")
def mesh_and_matcher(models_dir: Path) -> tuple[MediaPipeFaceMesh, FaceMatcher]:
    pack = load_pack("default")
    return pack.landmarks, FaceMatcher(pack)


@pytest.mark.parametrize(
    "name", ["spoof/images/frames/lestari15_real_f00_t0.237.jpg", "spoof/images/frames/apfol_real2_f00_t0.73.jpg"]
)
def test_mesh_points_match_detector_landmarks(
    mesh_and_matcher: tuple[MediaPipeFaceMesh, FaceMatcher], data_dir: Path, name: str
) -> None:
    mesh_model, matcher = mesh_and_matcher
    image = load_image(data_dir / name)
    det, _ = matcher.primary_face(image)
    mesh = mesh_model.predict(image, det.bbox)
    assert mesh.points.shape == (468, 3)
    assert mesh.presence > 0.9
    iod = float(np.linalg.norm(det.kps[1] - det.kps[0]))
    # Eye centres (mean of each eye's contour) and nose tip agree with YuNet's 5 points.
    right_eye = mesh.points[[33, 133, 159, 145], :2].mean(axis=0)
    left_eye = mesh.points[[362, 263, 386, 374], :2].mean(axis=0)
    assert np.linalg.norm(right_eye - det.kps[0]) < 0.25 * iod
    assert np.linalg.norm(left_eye - det.kps[1]) < 0.25 * iod
    assert np.linalg.norm(mesh.points[1, :2] - det.kps[2]) < 0.3 * iod
    x1, _y1, x2, _y2 = mesh.bbox()
    assert x1 >= det.bbox[0] - 0.3 * iod and x2 <= det.bbox[2] + 0.3 * iod


def test_presence_is_low_without_a_face(
    mesh_and_matcher: tuple[MediaPipeFaceMesh, FaceMatcher], data_dir: Path
) -> None:
    mesh_model, _ = mesh_and_matcher
    image = load_image(data_dir / "spoof/images/frames/lestari15_real_f00_t0.237.jpg")
    # The wall left of the person.
    mesh = mesh_model.predict(image, (10.0, 100.0, 210.0, 300.0))
    assert mesh.presence < 0.5
