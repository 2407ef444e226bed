"""The H5 card checker is the app's, not the module's: made on the first card photo (the API process does not
load the OCR models at start), then kept on the app's state with its reader and its cache of reads."""

from __future__ import annotations

import threading
import time
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


def test_card_reads_beyond_the_processs_slots_are_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot: while a read runs, another photo is answered BUSY at once (not queued on a request thread); the
    slot is free again once the read ends, and a cached photo needs no slot."""
    running, finish = threading.Event(), threading.Event()

    def slow_ocr(data: bytes, _reader: object) -> CardRead:
        running.set()
        assert finish.wait(10)
        return CardRead((), name="张三", id_number=data.decode())

    monkeypatch.setattr(cardcheck, "_ocr", slow_ocr)
    checker = CardChecker(None, slots=1)
    first = threading.Thread(target=checker.read, args=(b"first",))
    first.start()
    assert running.wait(10)
    started = time.monotonic()
    with pytest.raises(CardReaderBusy) as busy:
        checker.read(b"second")
    assert time.monotonic() - started < 1 and busy.value.code == "BUSY"
    assert busy.value.message_zh == "系统繁忙,请稍后再试"
    finish.set()
    first.join(10)
    assert checker.read(b"first").id_number == "first"  # cached
    assert checker.read(b"second").id_number == "second"  # the slot is free again
