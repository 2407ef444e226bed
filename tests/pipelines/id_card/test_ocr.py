"""The OCR engine's speed-ups change nothing it reads: rewritten graphs, parallel recogniser lanes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.id_card import IdCardReader
from pipelines.id_card import geometry as G
from pipelines.id_card import lines as LN
from pipelines.id_card import parse as P
from pipelines.id_card.ocr import OcrEngine, _width_batches, crop_quad, order_quad
from pipelines.id_card.result import IdCardResult
from pipelines.id_card.synthetic import CardGenerator
from pipelines.media import load_image
from tests.pipelines.id_card.lines_support import glare_over_number_half, ordered_lines


@pytest.fixture(scope="module")
def card_crops(reader: IdCardReader, idcard_dir: Path) -> list[np.ndarray]:
    image = load_image(idcard_dir / "synthetic" / "card_003.jpg")
    quads = reader.ocr.detect(image, 960)
    assert len(quads) >= 8
    return [crop_quad(image, order_quad(q)) for q in quads]


@pytest.fixture(scope="module")
def plain_engine() -> OcrEngine:
    return OcrEngine(optimize_graph=False, parallel_rec=False)


def test_parallel_lanes_read_what_one_session_reads(
    reader: IdCardReader, plain_engine: OcrEngine, card_crops: list[np.ndarray]
) -> None:
    assert len(reader.ocr._rec_lanes) >= 1 or reader.ocr._pool._max_workers == 1
    fast = reader.ocr.recognize(card_crops)
    plain = plain_engine.recognize(card_crops)
    assert [t for t, *_ in fast] == [t for t, *_ in plain]
    assert any("公民身份号码" in t for t, *_ in fast)
    for (_, s_fast, _, p_fast), (_, s_plain, _, p_plain) in zip(fast, plain, strict=True):
        assert p_fast.shape == p_plain.shape
        assert abs(s_fast - s_plain) < 1e-3


def test_rewritten_detector_finds_the_same_lines(
    reader: IdCardReader, plain_engine: OcrEngine, idcard_dir: Path
) -> None:
    image = load_image(idcard_dir / "synthetic" / "card_003.jpg")
    fast = sorted(q.mean(axis=0).round(-1).tolist() for q in reader.ocr.detect(image, 640))
    plain = sorted(q.mean(axis=0).round(-1).tolist() for q in plain_engine.detect(image, 640))
    assert len(fast) == len(plain) >= 8
    assert np.abs(np.array(fast) - np.array(plain)).max() <= 10.0


def test_width_batches_group_similar_widths() -> None:
    crops = [np.zeros((48, w, 3), np.uint8) for w in (100, 400, 105, 110, 600, 410, 90)]
    batches = _width_batches(crops, max_batch=4)
    assert sorted(i for b in batches for i in b) == list(range(len(crops)))
    for b in batches:
        widths = [crops[i].shape[1] for i in b]
        assert max(widths) <= min(widths) * 1.15 + 8
    assert sorted(sorted(b) for b in batches) == [[0, 2, 3, 6], [1, 5], [4]]


def test_width_batches_never_mix_heights() -> None:
    crops = [np.zeros((h, w, 3), np.uint8) for h, w in ((40, 100), (48, 102), (40, 104), (48, 98), (40, 600))]
    batches = _width_batches(crops, max_batch=4)
    assert sorted(i for b in batches for i in b) == list(range(len(crops)))
    for b in batches:
        assert len({crops[i].shape[0] for i in b}) == 1
    assert sorted(sorted(b) for b in batches) == [[0, 2], [1, 3], [4]]


def test_crops_of_two_heights_read_as_when_read_alone(reader: IdCardReader, card_crops: list[np.ndarray]) -> None:
    mixed = [c if k % 2 else cv2.resize(c, (max(8, round(c.shape[1] * 40 / 48)), 40)) for k, c in enumerate(card_crops)]
    together = reader.ocr.recognize(mixed)
    alone = [reader.ocr.recognize([c])[0] for c in mixed]
    assert [t for t, *_ in together] == [t for t, *_ in alone]
    assert sum(bool(t) for t, *_ in together) >= len(mixed) - 1


@pytest.mark.parametrize("index", [3, 4, 5])
def test_the_number_line_is_known_before_reading(reader: IdCardReader, generator: CardGenerator, index: int) -> None:
    card = generator.generate(index)
    quads = reader._detect(card.image)
    angle = G.text_direction(quads)
    assert angle is not None
    res = IdCardResult()
    _, lines = reader._orient_and_read(card.image, quads, angle, res)
    guess = LN.likely_number([(ln.quad, ln.quad) for ln in lines])  # it looks only at the upright-frame quads
    assert guess is not None
    assert P.normalize(lines[guess].text) == card.fields.id_number
    assert LN.number_line([P.normalize(ln.text) for ln in lines]) == guess


@pytest.mark.parametrize("index", [3, 8])
def test_the_number_caption_is_placed_not_read_when_the_number_reads_whole(
    reader: IdCardReader, generator: CardGenerator, index: int
) -> None:
    card = generator.generate(index)
    _, ordered = ordered_lines(reader, card.image)
    number = LN.likely_number(ordered)
    assert number is not None
    beside = LN.beside_number(ordered, number)
    assert len(beside) == 1 and LN.caption_shaped(ordered[beside[0]][1], ordered[number][1])
    # What the recogniser is actually given: every line but the caption.
    given: list[int] = []
    real = reader.ocr.recognize

    def counting(crops: list[np.ndarray]) -> list[tuple[str, float, list[float], np.ndarray]]:
        given.append(len(crops))
        return real(crops)

    reader.ocr.recognize = counting  # type: ignore[method-assign]
    try:
        lines = LN.read_lines(reader.ocr, card.image, ordered, 40, 0.9)
    finally:
        del reader.ocr.recognize
    assert given == [len(ordered) - 1]
    assert P.normalize(lines[number].text) == card.fields.id_number
    caption = lines[beside[0]]
    assert caption.text == LN.NUMBER_CAPTION and caption.probs.shape[0] == 0
    # Read anyway, the box says what it was labelled.
    assert reader.ocr.recognize([crop_quad(card.image, ordered[beside[0]][0], 40)])[0][0] == LN.NUMBER_CAPTION


def test_fixed_print_is_read_when_the_number_does_not_read_whole(
    reader: IdCardReader, generator: CardGenerator
) -> None:
    card = generator.generate(3)
    up, ordered = ordered_lines(reader, card.image)
    number = LN.likely_number(ordered)
    assert number is not None
    image = glare_over_number_half(card.image, up, ordered, number)
    lines = LN.read_lines(reader.ocr, image, ordered, 40, 0.9)
    assert len(P.normalize(lines[number].text)) < 18
    beside = LN.beside_number(ordered, number)
    assert [lines[i].text for i in beside] == [LN.NUMBER_CAPTION]
    assert all(lines[i].probs.shape[0] > 0 for i in beside)
    # The row captions too: nothing is cut off, and 姓名/出生/住址 are read.
    assert all(ln.entry_from == 0 for ln in lines)
    assert any(ln.text.startswith(("姓名", "出生", "住址")) for ln in lines)
