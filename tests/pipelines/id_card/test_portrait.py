"""The portrait photo's face check: a small dynamic-input detector, or the pack's own when that file is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.packs import load_pack
from models.store import ModelStore
from pipelines.face_match import FaceMatcher
from pipelines.id_card import IdCardReader
from pipelines.id_card.portrait import CHECK_MODEL, PortraitFinder
from pipelines.id_card.synthetic import CardGenerator


def test_the_check_model_verifies_and_matching_finds_the_face_again(
    reader: IdCardReader, generator: CardGenerator
) -> None:
    card = generator.generate(11)
    res = reader.read(card.image)
    checker = reader.portraits.checker
    assert checker is not None and checker.spec.name == CHECK_MODEL
    assert res.portrait_verified and res.portrait is not None
    # The check's face is not handed on: matching detects it with its own calibrated detector.
    assert res.portrait_face is None
    seen = reader.matcher.observe(res.portrait, None, allow_multiple=True)
    h, w = res.portrait.shape[:2]
    x1, y1, x2, y2 = seen.bbox
    assert 0.15 * w < (x1 + x2) / 2 < 0.85 * w and x2 - x1 > 0.3 * w
    assert 0.1 * h < (y1 + y2) / 2 < 0.9 * h


def test_without_the_check_model_the_packs_detector_checks(
    tmp_path: Path, models_dir: Path, generator: CardGenerator
) -> None:
    for f in models_dir.iterdir():
        if f.name != "yunet_n_dynamic.onnx":
            (tmp_path / f.name).symlink_to(f)
    store = ModelStore(tmp_path)
    assert not store.is_available(CHECK_MODEL)
    matcher = FaceMatcher(load_pack("default", store=store))
    finder = PortraitFinder(matcher)
    card = generator.generate(11)
    found = finder.find(card.image, card.homography)  # the true card → photo homography
    assert found.face is not None and found.aligned_by_matcher
    # Its detection is the matcher's own: the same box the matcher finds on the crop.
    again = matcher.detect(found.crop)[0]
    assert np.allclose(again.bbox, found.face.bbox)
