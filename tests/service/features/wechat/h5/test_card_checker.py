"""The H5 card checker is the app's, not the module's: made on the first card photo (the API process does not
load the OCR models at start), then kept on the app's state with its reader and its cache of reads."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import cast

import pytest
from fastapi import Request

from fuzz import bombs
from pipelines.reasons import ReasonCode
from service.features.wechat.h5 import cardcheck
from service.features.wechat.h5.cardcheck import CardChecker, CardRead, CardReaderBusy, card_checker


def _request(state: SimpleNamespace) -> Request:
    return cast(Request, SimpleNamespace(app=SimpleNamespace(state=state)))


def test_one_checker_per_app_made_on_first_use() -> None:
    one, other = SimpleNamespace(), SimpleNamespace()
    first = card_checker(_request(one), None)
    assert one.card_checker is first and card_checker(_request(one), "other-pack") is first
    assert card_checker(_request(other), None) is not first


def test_the_reader_loads_only_for_a_photo_that_decodes() -> None:
    checker = CardChecker(None)
    read = checker.read(b"not an image at all")
    assert read.problems == (ReasonCode.MEDIA_UNSUPPORTED,)
    assert checker._reader is None  # nothing to read: the OCR models stay unloaded


def test_a_card_photo_over_16_megapixels_is_refused_from_its_header() -> None:
    """Under the general 40 MP bomb limit, but no card photo: refused before decoding (this one's pixels are not
    there: decoding it would have answered MEDIA_CORRUPT), the reader not loaded (review: workload 2)."""
    checker = CardChecker(None)
    assert checker.read(bombs.png_bomb(5000, 3400)).problems == (ReasonCode.MEDIA_TOO_LARGE,)
    assert checker._reader is None


@dataclass
class HeldRead:
    """A card read that runs until `finish` is set (`running` once it started), in a thread of its own."""

    checker: CardChecker
    running: threading.Event = field(default_factory=threading.Event)
    finish: threading.Event = field(default_factory=threading.Event)

    def start(self, monkeypatch: pytest.MonkeyPatch) -> threading.Thread:
        def slow_ocr(data: bytes, _reader: object) -> CardRead:
            self.running.set()
            assert self.finish.wait(10)
            return CardRead((), name="张三", id_number=data.decode())

        monkeypatch.setattr(cardcheck, "_ocr", slow_ocr)
        first = threading.Thread(target=self.checker.read, args=(b"first",))
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
        held.checker.read(b"second")
    assert 0.4 < time.monotonic() - started < 5 and busy.value.code == "BUSY"
    assert busy.value.message_zh == "系统繁忙,请稍后再试"
    held.finish.set()
    first.join(10)
    assert held.checker.read(b"first").id_number == "first"  # cached
    assert held.checker.read(b"second").id_number == "second"  # the slot is free again


def test_a_photo_waiting_for_a_slot_that_frees_in_time_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pensioners' photos meeting in one process (a read takes ~0.2 s): the second waits for the slot and is
    read, not refused."""
    held = HeldRead(CardChecker(None, slots=1, wait_s=10))
    first = held.start(monkeypatch)
    threading.Timer(0.3, held.finish.set).start()
    assert held.checker.read(b"second").id_number == "second"
    first.join(10)
