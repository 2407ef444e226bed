"""Card rotation from stroke directions, and the edge box the first detection pass is cropped to."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.id_card import IdCardReader
from pipelines.id_card import geometry as G
from pipelines.id_card import layout as L
from pipelines.id_card.synthetic import CardGenerator


def _mod90_gap(a: float, b: float) -> float:
    d = (a - b) % 90.0
    return min(d, 90.0 - d)


@pytest.mark.parametrize(("index", "rotation"), [(1, 0.0), (2, 17.0), (3, 38.0), (4, 100.0), (5, 233.0), (6, 301.0)])
def test_stroke_angle_finds_the_rotation_mod_90(generator: CardGenerator, index: int, rotation: float) -> None:
    card = generator.generate(index, rotation=rotation)
    angle, score = G.stroke_angle(card.image)
    assert -45.0 < angle <= 45.0
    # Perspective tilt bends the card's axes a little; the estimate only has to level the text for the detector.
    assert _mod90_gap(angle, rotation) < 4.0
    assert score > 2.0


def test_stroke_angle_has_no_peak_on_noise() -> None:
    noise = np.random.default_rng(0).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    _, score = G.stroke_angle(noise)
    assert score < 1.5


@pytest.mark.parametrize(("index", "rotation"), [(7, 0.0), (8, 28.0), (9, 205.0)])
def test_edge_extent_keeps_the_card_text(generator: CardGenerator, index: int, rotation: float) -> None:
    card = generator.generate(index, rotation=rotation)
    h, w = card.image.shape[:2]
    scale = 480 / max(h, w)
    small = cv2.resize(card.image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    turn_deg, _ = G.stroke_angle(card.image)
    turn, size = G.upright_transform(small.shape, turn_deg)
    x1, y1, x2, y2 = G.edge_extent(small, turn, size)
    # The printed text spans the card's inner area: its corners must fall inside the box.
    inner = np.array(
        [
            [0.05 * L.CARD_W, 0.1 * L.CARD_H],
            [0.95 * L.CARD_W, 0.1 * L.CARD_H],
            [0.95 * L.CARD_W, 0.92 * L.CARD_H],
            [0.05 * L.CARD_W, 0.92 * L.CARD_H],
        ]
    )
    pts = G.apply(turn, card.project(inner) * scale)
    assert (pts[:, 0] >= x1 - 1).all() and (pts[:, 0] <= x2 + 1).all()
    assert (pts[:, 1] >= y1 - 1).all() and (pts[:, 1] <= y2 + 1).all()
    # ... and the box is smaller than the turned canvas whenever the card does not fill the photo.
    assert (x2 - x1) * (y2 - y1) < size[0] * size[1]


def test_edge_extent_of_a_blank_image_is_the_whole_canvas() -> None:
    blank = np.full((300, 400, 3), 128, np.uint8)
    turn, size = G.upright_transform(blank.shape, 20.0)
    assert G.edge_extent(blank, turn, size) == (0, 0, size[0], size[1])


def _mod180_gap(a: float, b: float) -> float:
    d = (a - b) % 180.0
    return min(d, 180.0 - d)


def test_level_turn_lays_most_cards_down(generator: CardGenerator) -> None:
    laid_down = 0
    for i in range(10, 40):
        rotation = float((i * 37) % 360)
        turn = G.level_turn(generator.generate(i, rotation=rotation).image)
        assert _mod90_gap(turn, rotation) < 4.0
        # Turned by this, the text runs horizontally (right way up or upside down: the classifier settles that).
        # Lines in the background can hide which way the card stands; then the first pass sees vertical text.
        laid_down += _mod180_gap(turn, rotation) < 4.0
    assert laid_down >= 23  # of 30; without the quarter-turn decision about half would be


@pytest.mark.parametrize(("index", "rotation"), [(41, 12.0), (42, 250.0)])
def test_detection_from_a_level_view_matches_detection_from_the_photo(
    reader: IdCardReader, generator: CardGenerator, index: int, rotation: float
) -> None:
    image = generator.generate(index, rotation=rotation).image
    view = G.level_view(image, 480)
    assert view.angle == G.level_turn(image)
    assert max(view.small.shape[:2]) == 480 and view.strong.shape == view.small.shape[:2]
    assert 0.05 < view.strong.mean() < 0.15  # the strongest 10% of the gradients
    reused = reader.ocr.detect_turned(image, 480, view.angle, crop=True, view=view)
    fresh = reader.ocr.detect_turned(image, 480, view.angle, crop=True)
    assert len(reused) >= 8 and len(reused) == len(fresh)
    for a, b in zip(reused, fresh, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)
    # A view of another size is not mistaken for the copy the detector needs.
    larger = reader.ocr.detect_turned(image, 640, view.angle, crop=True, view=view)
    assert len(larger) >= 8
