"""The H5 card checker is the app's, not the module's: made on the first card photo (the API process does not
load the OCR models at start), then kept on the app's state with its reader and its cache of reads."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from fastapi import Request

from pipelines.reasons import ReasonCode
from service.features.wechat.h5.cardcheck import CardChecker, card_checker


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
