"""Instant feedback on the card photo: the ID-card reader runs in the API process (loaded once, on first use)
and the problems a new photo can fix are answered at once, before the photo is stored."""

from __future__ import annotations

import threading
from typing import Any

from pipelines.errors import MediaError
from pipelines.media import decode_image
from pipelines.reasons import ReasonCode
from service.security import Keyring

# What a re-take fixes; the rest (e.g. an expired card) is for the decision and staff, not the camera.
RETAKE = (
    ReasonCode.ID_NOT_A_CARD,
    ReasonCode.ID_WRONG_SIDE,
    ReasonCode.ID_CUT_OFF,
    ReasonCode.ID_TOO_BLURRY,
    ReasonCode.ID_GLARE,
    ReasonCode.ID_NUMBER_UNREADABLE,
    ReasonCode.ID_CHECKSUM_FAILED,
    ReasonCode.FACE_NOT_FOUND,
)

_READER: Any = None
_LOCK = threading.Lock()


def reader(pack: str | None) -> Any:
    global _READER
    with _LOCK:
        if _READER is None:
            from pipelines.id_card import IdCardReader

            _READER = IdCardReader(pack)
        return _READER


def card_problems(data: bytes, id_hash: str, keyring: Keyring, pack: str | None) -> list[ReasonCode]:
    """Problems of this photo as the portrait side of the card with this ID-number hash; empty if fine."""
    try:
        image = decode_image(data)
    except MediaError as exc:
        return [exc.reason]
    result = reader(pack).read(image)
    problems = [e for e in RETAKE if e in result.errors]
    if not problems and result.side != "portrait":
        problems = [ReasonCode.ID_WRONG_SIDE]
    if not problems and not result.id_number:
        problems = [ReasonCode.ID_NUMBER_UNREADABLE]
    if not problems and keyring.id_hash(result.id_number) != id_hash:
        problems = [ReasonCode.ID_NUMBER_MISMATCH]
    return problems
