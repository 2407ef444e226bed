"""The reader's steps (locate → fields → number) return values that, put together by hand, give what
``IdCardReader.read`` reports; and the emblem side's validity rule."""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipelines.id_card import IdCardReader, parse
from pipelines.id_card.fields import emblem_fields, read_fields, shows_emblem
from pipelines.id_card.geometry import text_direction
from pipelines.id_card.lines import number_line
from pipelines.id_card.locate import card_homography, detect_text, orient_and_read, place_card
from pipelines.id_card.number import CardGeometry, read_number, reconcile
from pipelines.id_card.ocr import TextLine
from pipelines.id_card.synthetic import CardGenerator

TODAY = dt.date(2026, 12, 1)


def test_steps_composed_by_hand_read_the_card(reader: IdCardReader, generator: CardGenerator) -> None:
    card = generator.generate(6)
    config = reader.config
    quads = detect_text(reader.ocr, card.image, config)
    angle = text_direction(quads)
    assert angle is not None
    oriented = orient_and_read(reader.ocr, card.image, quads, angle, config)
    texts = [parse.normalize(ln.text) for ln in oriented.lines]
    number_idx = number_line(texts)
    assert number_idx is not None and not shows_emblem(texts)
    h_card = card_homography(oriented.lines, texts, number_idx)
    assert h_card is not None
    placement = place_card(card.image, oriented.up, h_card, config.cut_off_margin)
    assert not placement.cut_off
    fields = read_fields(reader.ocr, card.image, oriented.up, oriented.lines, h_card, number_idx)
    located = CardGeometry(card.image, oriented.lines, number_idx, h_card, oriented.up)
    number = read_number(reader.ocr, located, TODAY, config)
    fixed = reconcile(number, fields.address, fields.birth_date, fields.sex)

    whole = reader.read(card.image, TODAY)
    assert whole.ok and whole.id_number == card.fields.id_number
    assert (fields.name, fields.sex, fields.ethnicity, fields.birth_date) == (
        whole.name,
        whole.sex,
        whole.ethnicity,
        whole.birth_date,
    )
    assert fixed.address == whole.address and not fixed.inconsistent
    assert number.number == whole.id_number and number.error is None and number.check.valid
    assert whole.rotation_deg == oriented.rotation_deg and whole.card_quad == placement.card_quad
    assert {**fields.confidence, "id_number": number.confidence} == whole.confidence


def _line(text: str, row: int) -> TextLine:
    quad = np.array([[0, 40 * row], [300, 40 * row], [300, 40 * row + 30], [0, 40 * row + 30]], np.float32)
    return TextLine(text, 0.99, [0.99] * len(text), quad, np.zeros((0, 0), np.float32))


def test_emblem_validity_decides_expiry() -> None:
    lines = [_line("签发机关某市公安局", 0), _line("有效期限2010.01.01-2020.01.01", 1)]
    found = emblem_fields(lines, TODAY)
    assert found.issuing_authority == "某市公安局"
    assert (found.valid_from, found.valid_until) == (dt.date(2010, 1, 1), dt.date(2020, 1, 1))
    assert found.expired is True
    long_term = emblem_fields([_line("有效期限2010.01.01-长期", 0)], TODAY)
    assert long_term.valid_long_term and long_term.expired is False
    assert emblem_fields([_line("签发机关某市公安局", 0)], TODAY).expired is None
