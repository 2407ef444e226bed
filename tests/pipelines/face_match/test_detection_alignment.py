from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.errors import PipelineError
from pipelines.face_match import FaceMatcher, align_face
from pipelines.media import load_image
from pipelines.reasons import ReasonCode
from tests.pipelines.face_match.conftest import DevFaces

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def test_a_face_is_detected_in_every_dev_face_image(dev_faces: DevFaces, face_paths: list[str]) -> None:
    assert len(dev_faces.detections) == len(face_paths) > 1000
    assert [rel for rel, n in dev_faces.detections.items() if n == 0] == []


def test_landmarks_are_anatomically_ordered(matcher: FaceMatcher, faces_dir: Path, face_paths: list[str]) -> None:
    for rel in face_paths[:: max(1, len(face_paths) // 60)]:
        det, _ = matcher.primary_face(load_image(faces_dir / rel), allow_multiple=True)
        left_eye, right_eye, nose, left_mouth, right_mouth = det.kps
        assert left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])
        x1, y1, x2, y2 = det.bbox
        assert np.all((det.kps[:, 0] > x1) & (det.kps[:, 0] < x2) & (det.kps[:, 1] > y1) & (det.kps[:, 1] < y2))


def test_alignment_maps_landmarks_onto_the_arcface_template(matcher: FaceMatcher, faces_dir: Path) -> None:
    image = load_image(faces_dir / "lfw/Colin_Powell/Colin_Powell_0001.jpg")
    det, _ = matcher.primary_face(image)
    aligned = align_face(image, det.kps)
    assert aligned.shape == (112, 112, 3)
    # Detecting again on the aligned crop (padded: detectors need context) finds the landmarks on the template.
    pad = 56
    canvas = cv2.copyMakeBorder(aligned, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    redet, _ = matcher.primary_face(canvas)
    error = np.linalg.norm(redet.kps - pad - ARCFACE_TEMPLATE, axis=1)
    assert error.max() < 6.0, error


def test_rotated_face_is_aligned_upright(matcher: FaceMatcher, faces_dir: Path) -> None:
    image = load_image(faces_dir / "lfw/Colin_Powell/Colin_Powell_0001.jpg")
    h, w = image.shape[:2]
    rot = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h))
    upright = matcher.observe(image)
    tilted = matcher.observe(rot)
    assert abs(tilted.quality.roll_deg - upright.quality.roll_deg) == pytest.approx(25, abs=6)
    # Same person, same photo: alignment undoes the roll, so the embeddings stay close.
    assert float(np.dot(upright.embedding, tilted.embedding)) > 0.8


def test_no_face_and_ambiguous_faces_are_reason_codes(matcher: FaceMatcher, faces_dir: Path) -> None:
    blank = np.full((240, 320, 3), 127, dtype=np.uint8)
    with pytest.raises(PipelineError) as info:
        matcher.observe(blank)
    assert info.value.reason is ReasonCode.FACE_NOT_FOUND
    a = load_image(faces_dir / "lfw/Colin_Powell/Colin_Powell_0001.jpg")
    b = load_image(faces_dir / "lfw/Zhu_Rongji/Zhu_Rongji_0001.jpg")
    side_by_side = np.hstack([a, cv2.resize(b, (a.shape[1], a.shape[0]))])
    with pytest.raises(PipelineError) as info:
        matcher.observe(side_by_side)
    assert info.value.reason is ReasonCode.FACE_MULTIPLE
    obs = matcher.observe(side_by_side, allow_multiple=True)
    assert obs.faces_in_image >= 2
