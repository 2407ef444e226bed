"""Row captions (blue fixed print) are cut off line crops before reading, and only where that is safe."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.id_card import IdCardReader
from pipelines.id_card import captions as C
from pipelines.id_card import lines as LN
from pipelines.id_card.synthetic import CardGenerator
from tests.pipelines.id_card.lines_support import ordered_lines

ROW_H = 100.0  # template height of a field row's box (the detector's, see geometry.ROW_EDGES)


def _row_crop(card: np.ndarray, x1: float, x2: float, y_top: float) -> tuple[np.ndarray, float]:
    """A line crop as the reader makes it: one row of the flat card, 40 px high. Returns it and its scale."""
    region = card[int(y_top) : int(y_top + ROW_H), int(x1) : int(x2)]
    scale = 40 / region.shape[0]
    return cv2.resize(region, (round(region.shape[1] * scale), 40), interpolation=cv2.INTER_AREA), scale


@pytest.mark.parametrize("row_top", [190.0, 478.0])  # name, birth
def test_caption_is_cut_between_caption_and_entry(generator: CardGenerator, row_top: float) -> None:
    card, _, _ = generator.flat(5)
    x0 = 120.0
    crop, scale = _row_crop(card, x0, 700.0, row_top)
    cut = C.entry_start(crop)
    assert cut is not None
    at = x0 + cut / scale  # back in template x
    assert 270 < at < 338  # right of the caption's second glyph (205 + its width), left of the entry column


def test_lines_without_a_leading_caption_are_read_whole(generator: CardGenerator) -> None:
    card, fields, _ = generator.flat(5)
    assert len(fields.address) > 11  # a second address line exists
    # The second address line: black from its start. The year alone: black from its start.
    assert C.entry_start(_row_crop(card, 320.0, 1100.0, 712.0)[0]) is None
    assert C.entry_start(_row_crop(card, 320.0, 1100.0, 478.0)[0]) is None
    # The caption alone: no entry after it. The month and day behind their blue 年: one blue glyph only.
    assert C.entry_start(_row_crop(card, 120.0, 330.0, 190.0)[0]) is None
    assert C.entry_start(_row_crop(card, 590.0, 1100.0, 478.0)[0]) is None


def test_single_glyph_entries_and_long_lines_keep_their_caption(generator: CardGenerator) -> None:
    card, fields, _ = generator.flat(5)
    assert len(fields.sex) == 1
    # 性别 男: read alone, lone glyphs are misread (壮 as 并), so this crop is read whole.
    assert C.entry_start(_row_crop(card, 120.0, 480.0, 340.0)[0]) is None
    # The first address line: its caption is cut off only as far as the line is short.
    assert C.entry_start(_row_crop(card, 120.0, 640.0, 612.0)[0]) is not None
    assert C.entry_start(_row_crop(card, 120.0, 1150.0, 612.0)[0]) is None


def test_reading_without_captions_gives_the_same_fields(reader: IdCardReader, generator: CardGenerator) -> None:
    card = generator.generate(3)
    _, ordered = ordered_lines(reader, card.image)
    lines = LN.read_lines(reader.ocr, card.image, ordered, 40, 0.9)
    cut = [ln for ln in lines if ln.entry_from > 0]
    assert len(cut) >= 2
    assert not any(ln.text[:1] in "姓出住" for ln in cut)  # what was read starts at the entry
    whole = LN.read_lines(reader.ocr, card.image, ordered, 40, 0.9, cut_captions=False)
    assert all(ln.entry_from == 0 for ln in whole)
    assert any(ln.text.startswith(("姓名", "出生", "住址")) for ln in whole)
    res = reader.read(card.image)
    assert res.name == card.fields.name and res.address == card.fields.address
    assert res.birth_date == card.fields.birth_date and res.id_number == card.fields.id_number
