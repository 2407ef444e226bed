"""The CelebA-Spoof binary model (evaluation pack only) on the real and replayed clips' frames of shared/data/spoof."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.antispoof import CelebASpoofBinary, square_crop
from models.packs import load_pack
from pipelines.face_match import FaceMatcher
from pipelines.media import load_image

FRAMES = "spoof/images/frames"


@pytest.fixture(scope="module")
def model_and_matcher(models_dir: Path) -> tuple[CelebASpoofBinary, FaceMatcher]:
    pack = load_pack("liveness_eval")
    *default_models, celeba = pack.antispoof
    assert [m.name for m in default_models] == ["minifasnet_v2", "minifasnet_v1se"]
    assert isinstance(celeba, CelebASpoofBinary)
    return celeba, FaceMatcher(pack)


def test_the_evaluation_pack_is_not_for_deployment(models_dir: Path) -> None:
    pack = load_pack("liveness_eval")
    assert not pack.spec.commercial_use
    assert not pack.store.manifest.model("antispoof_celeba_bin").commercial_use


@pytest.mark.parametrize(("clip", "real"), [("lestari15_real", True), ("apfol_real2", True), ("lestari15_fake", False),
                                            ("apfol_fake2", False)])  # fmt: skip
def test_clip_mean_separates_real_from_replay(
    model_and_matcher: tuple[CelebASpoofBinary, FaceMatcher], data_dir: Path, clip: str, real: bool
) -> None:
    """Per clip (the stage averages frames): single frames of apfol's real clip score as low as 0.15."""
    model, matcher = model_and_matcher
    scores = []
    for path in sorted((data_dir / FRAMES).glob(f"{clip}_f*.jpg")):
        image = load_image(path)
        det, _ = matcher.primary_face(image)
        scores.append(float(model.real_scores([image], [det.bbox])[0]))
    assert len(scores) == 8 and all(0.0 <= s <= 1.0 for s in scores)
    assert (float(np.mean(scores)) > 0.5) is real, scores
    if not real:
        assert max(scores) < 0.5


def test_square_crop_pads_outside_the_image_with_black() -> None:
    image = np.full((100, 200, 3), 200, dtype=np.uint8)
    # A 40×20 box at the top-left corner: a square of 1.5 × 40 = 60 px about its centre (20, 10).
    crop = square_crop(image, (0.0, 0.0, 40.0, 20.0), 1.5)
    assert crop.shape == (60, 60, 3)
    assert (crop[:20, :, :] == 0).all() and (crop[:, :10, :] == 0).all()  # above and left of the image
    assert (crop[20:, 10:, :] == 200).all()
    inside = square_crop(image, (80.0, 30.0, 120.0, 70.0), 1.0)
    assert inside.shape == (40, 40, 3) and (inside == 200).all()


def test_empty_batch(model_and_matcher: tuple[CelebASpoofBinary, FaceMatcher]) -> None:
    model, _ = model_and_matcher
    assert model.real_scores([], []).shape == (0,)


def test_square_crop_can_mirror_the_image_at_its_border_instead() -> None:
    """SURI MiniFAS was trained on crops mirrored (reflect-101) where they leave the image, not blackened."""
    import cv2

    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    crop = square_crop(image, (0.0, 0.0, 40.0, 20.0), 1.5, cv2.BORDER_REFLECT_101)
    assert crop.shape == (60, 60, 3)
    assert (crop[20:, 10:] == image[:40, :50]).all()  # the part inside the image, unchanged
    assert (crop[19, 10:] == image[1, :50]).all() and (crop[20:, 9] == image[:40, 1]).all()  # mirrored, not 0
