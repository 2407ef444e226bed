"""A photo the levelled view yields no number for is looked at once more, unlevelled; a clean card is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.id_card import IdCardReader
from pipelines.id_card.reader import _rank
from pipelines.id_card.result import IdCardResult
from pipelines.media import load_image


def _spy(reader: IdCardReader, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    original = reader._attempt

    def attempt(image: np.ndarray, today: object, levelled: bool) -> IdCardResult:
        calls.append(levelled)
        return original(image, today, levelled)  # type: ignore[arg-type]

    monkeypatch.setattr(reader, "_attempt", attempt)
    return calls


def test_clean_card_is_read_once(reader: IdCardReader, idcard_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(reader, monkeypatch)
    res = reader.read(load_image(idcard_dir / "synthetic" / "card_000.jpg"))
    assert res.id_number_valid
    assert calls == [True]


def test_photo_without_a_number_is_looked_at_unlevelled(reader: IdCardReader, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(reader, monkeypatch)
    blank = np.full((600, 800, 3), 200, np.uint8)
    res = reader.read(blank)
    assert calls == [True, False]
    assert res.id_number is None and res.errors


def test_rank_prefers_a_valid_number_then_more_fields() -> None:
    empty, partial, number, valid = IdCardResult(), IdCardResult(), IdCardResult(), IdCardResult()
    partial.name = "张三"
    number.id_number = "110101195001011234"
    valid.id_number, valid.id_number_valid = "11010119500101123X", True
    assert _rank(empty) < _rank(partial) < _rank(number) < _rank(valid)
