"""The H5 card checker is the app's, not the module's: made on the first card photo (the API process does not
load the OCR models at start), then kept on the app's state with its reader and its cache of reads."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import cast

import pytest
from fastapi import Request
from PIL import Image

from fuzz import bombs
from pipelines.reasons import ReasonCode
from service.features.wechat.h5 import cardcheck
from service.features.wechat.h5.cardcheck import CardChecker, CardRead, CardReaderBusy, card_checker


def _photo(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 40), (shade, 180, 160)).save(buf, "JPEG")
    return buf.getvalue()


# Two photos whose header passes (the checker refuses a non-image before it takes a slot), read as their names.
FIRST, SECOND = _photo(10), _photo(200)
NAMES = {FIRST: "first", SECOND: "second"}
DAY = dt.date(2026, 3, 10)  # the bureau's date the photos are read on (no number here depends on it)


def _request(state: SimpleNamespace) -> Request:
    return cast(Request, SimpleNamespace(app=SimpleNamespace(state=state)))


def test_one_checker_per_app_made_on_first_use() -> None:
    one, other = SimpleNamespace(), SimpleNamespace()
    first = card_checker(_request(one), None)
    assert one.card_checker is first and card_checker(_request(one), "other-pack") is first
    assert card_checker(_request(other), None) is not first


def test_the_reader_loads_only_for_a_photo_that_decodes() -> None:
    checker = CardChecker(None)
    read = checker.read(b"not an image at all", DAY)
    assert read.problems == (ReasonCode.MEDIA_UNSUPPORTED,)
    assert checker._reader is None  # nothing to read: the OCR models stay unloaded


def test_a_card_photo_over_16_megapixels_is_refused_from_its_header() -> None:
    """Under the general 40 MP bomb limit, but no card photo: refused before decoding (this one's pixels are not
    there: decoding it would have answered MEDIA_CORRUPT), the reader not loaded (review: workload 2)."""
    checker = CardChecker(None)
    assert checker.read(bombs.png_bomb(5000, 3400), DAY).problems == (ReasonCode.MEDIA_TOO_LARGE,)
    assert checker._reader is None


@dataclass
class HeldRead:
    """A card read that runs until `finish` is set (`running` once it started), in a thread of its own."""

    checker: CardChecker
    running: threading.Event = field(default_factory=threading.Event)
    finish: threading.Event = field(default_factory=threading.Event)

    def start(self, monkeypatch: pytest.MonkeyPatch) -> threading.Thread:
        def slow_ocr(data: bytes, _reader: object, _today: dt.date) -> CardRead:
            self.running.set()
            assert self.finish.wait(10)
            return CardRead((), name="张三", id_number=NAMES[data])

        monkeypatch.setattr(cardcheck, "_ocr", slow_ocr)
        first = threading.Thread(target=self.checker.read, args=(FIRST, DAY))
        first.start()
        assert self.running.wait(10)
        return first


def test_card_reads_beyond_the_processs_slots_are_refused_after_a_short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot: while a read runs, another photo waits its short while and is then answered BUSY (not queued on a
    request thread for as long as the read takes); the slot is free again once the read ends, and a cached photo
    needs no slot."""
    held = HeldRead(CardChecker(None, slots=1, wait_s=0.5))
    first = held.start(monkeypatch)
    started = time.monotonic()
    with pytest.raises(CardReaderBusy) as busy:
        held.checker.read(SECOND, DAY)
    assert 0.4 < time.monotonic() - started < 5 and busy.value.code == "BUSY"
    assert busy.value.message_zh == "系统繁忙,请稍后再试"
    held.finish.set()
    first.join(10)
    assert held.checker.read(FIRST, DAY).id_number == "first"  # cached
    assert held.checker.read(SECOND, DAY).id_number == "second"  # the slot is free again


def test_a_photo_waiting_for_a_slot_that_frees_in_time_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pensioners' photos meeting in one process (a read takes ~0.2 s): the second waits for the slot and is
    read, not refused."""
    held = HeldRead(CardChecker(None, slots=1, wait_s=10))
    first = held.start(monkeypatch)
    threading.Timer(0.3, held.finish.set).start()
    assert held.checker.read(SECOND, DAY).id_number == "second"
    first.join(10)


def test_a_photo_its_header_refuses_is_answered_without_waiting_for_a_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every slot taken by a read: a progressive JPEG of 10,000 scans (a minute of decoding in a slot before, so two of
    them made every pensioner's card read BUSY) is answered at once from its markers, never waiting for nor holding
    a slot (review: media 3)."""
    bomb = bombs.jpeg_scan_bomb(4000, 4000, 10_000)
    held = HeldRead(CardChecker(None, slots=1, wait_s=2))
    first = held.start(monkeypatch)
    cpu = time.process_time()
    read = held.checker.read(bomb, DAY)
    # The slot stays held throughout: a read that waited for it would have been answered BUSY after wait_s.
    assert read.problems == (ReasonCode.MEDIA_UNSUPPORTED,)
    assert time.process_time() - cpu < 2  # a hang guard: its decode took 10.8 CPU-s
    held.finish.set()
    first.join(10)
