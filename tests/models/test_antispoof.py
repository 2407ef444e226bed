"""MiniFASNet V2 / V1SE on real photos and replayed/printed faces from shared/data/spoof."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.antispoof import MiniFASNet, minivision_crop_box
from models.packs import load_pack
from pipelines.face_match import FaceMatcher
from pipelines.media import load_image

FRAMES = "spoof/images/frames"


@pytest.fixture(scope="module")
def models_and_matcher(models_dir: Path) -> tuple[list[MiniFASNet], FaceMatcher]:
    pack = load_pack("default")
    return pack.antispoof, FaceMatcher(pack)


def test_pack_ensemble_is_v2_and_v1se(models_and_matcher: tuple[list[MiniFASNet], FaceMatcher]) -> None:
    models, _ = models_and_matcher
    assert [m.name for m in models] == ["minifasnet_v2", "minifasnet_v1se"]
    assert [m.crop_scale for m in models] == [2.7, 4.0]


@pytest.mark.parametrize(
    ("name", "real"),
    [
        ("lestari15_real_f03_t1.656.jpg", True),
        ("apfol_real2_f02_t3.649.jpg", True),
        ("lestari15_fake_f03_t1.147.jpg", False),
        ("apfol_fake2_f02_t4.778.jpg", False),
    ],
)
def test_each_model_separates_real_from_replay(
    models_and_matcher: tuple[list[MiniFASNet], FaceMatcher], data_dir: Path, name: str, real: bool
) -> None:
    models, matcher = models_and_matcher
    image = load_image(data_dir / FRAMES / name)
    det, _ = matcher.primary_face(image)
    for model in models:
        probs = model.probabilities([image], [det.bbox])
        assert probs.shape == (1, 3)
        assert abs(float(probs.sum()) - 1.0) < 1e-4
        score = float(model.real_scores([image], [det.bbox])[0])
        assert (score > 0.5) is real, (model.name, score)


def test_crop_box_stays_inside_the_image() -> None:
    # A face near the right edge: the box is shifted left, not clipped, and keeps its scale.
    x1, y1, x2, y2 = minivision_crop_box(640, 480, (560.0, 200.0, 620.0, 280.0), 2.7)
    assert x2 == 639 and x1 >= 0
    assert abs((x2 - x1) - 60 * 2.7) <= 2
    # A face too large for the scale: the scale shrinks to fit.
    x1, y1, x2, y2 = minivision_crop_box(640, 480, (100.0, 50.0, 500.0, 450.0), 4.0)
    assert 0 <= x1 < x2 <= 639 and 0 <= y1 < y2 <= 479
