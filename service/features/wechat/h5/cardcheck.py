"""Instant feedback on the card photo: the ID-card reader runs in the API process (loaded once, on first use)
and the problems a new photo can fix are answered at once, before the photo is stored.

The card-first page reads the photo before a session exists (`read_card`: the name and number for the person
to confirm) and then uploads the same photo to the session it opens; the read is kept for a few minutes by the
photo's sha256 so the second check does not run the OCR again."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from pipelines.errors import MediaError
from pipelines.media import decode_image
from pipelines.reasons import ReasonCode
from service.certification.contract import CardReader
from service.infra.security import Keyring

# What a re-take fixes; the rest (e.g. an expired card) is for the decision and staff, not the camera.
RETAKE = (
    ReasonCode.ID_NOT_A_CARD,
    ReasonCode.ID_WRONG_SIDE,
    ReasonCode.ID_CUT_OFF,
    ReasonCode.ID_TOO_BLURRY,
    ReasonCode.ID_GLARE,
    ReasonCode.ID_NUMBER_UNREADABLE,
    ReasonCode.ID_CHECKSUM_FAILED,
    ReasonCode.ID_PORTRAIT_NO_FACE,
)
# Reads kept (by photo sha256): a handful of phones between their card read and their session's upload.
CACHE_SIZE = 64
CACHE_TTL_S = 600.0

_READER: CardReader | None = None
_LOCK = threading.Lock()
_CACHE: OrderedDict[str, tuple[float, CardRead]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CardRead:
    """What the page needs of one card photo: the problems a re-take fixes, else the name and number read."""

    problems: tuple[ReasonCode, ...]
    name: str | None = None
    id_number: str | None = None


def reader(pack: str | None) -> CardReader:
    global _READER
    with _LOCK:
        if _READER is None:
            # Lazy: the OCR models load on the first card photo, not when the API process starts.
            from pipelines.id_card import IdCardReader  # lazy: the OCR models, see above

            _READER = IdCardReader(pack)
        return _READER


def _cached(key: str) -> CardRead | None:
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None or hit[0] < time.monotonic() - CACHE_TTL_S:
            return None
        _CACHE.move_to_end(key)
        return hit[1]


def _remember(key: str, read: CardRead) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = (time.monotonic(), read)
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)


def _ocr(data: bytes, pack: str | None) -> CardRead:
    try:
        image = decode_image(data)
    except MediaError as exc:
        return CardRead((exc.reason,))
    result = reader(pack).read(image)
    problems = [e for e in RETAKE if e in result.errors]
    if not problems and result.side != "portrait":
        problems = [ReasonCode.ID_WRONG_SIDE]
    if not problems and not result.id_number:
        problems = [ReasonCode.ID_NUMBER_UNREADABLE]
    if problems:
        return CardRead(tuple(problems))
    return CardRead((), name=result.name, id_number=result.id_number)


def read_card(data: bytes, pack: str | None, cached: bool = True) -> CardRead:
    """The portrait side's problems, or its name and number; with `cached`, the same photo is read once per
    CACHE_TTL_S (off for the bench, which times the OCR itself)."""
    key = hashlib.sha256(data).hexdigest()
    read = _cached(key) if cached else None
    if read is None:
        read = _ocr(data, pack)
        _remember(key, read)
    return read


def card_problems(
    data: bytes, id_hash: str, keyring: Keyring, pack: str | None, cached: bool = False
) -> list[ReasonCode]:
    """Problems of this photo as the portrait side of the card with this ID-number hash; empty if fine.
    `cached`: reuse the read of the card-first page (the same bytes it read a moment ago)."""
    read = read_card(data, pack, cached)
    if read.problems:
        return list(read.problems)
    if keyring.id_hash(read.id_number or "") != id_hash:
        return [ReasonCode.ID_NUMBER_MISMATCH]
    return []
