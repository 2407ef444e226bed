"""Instant feedback on the card photo: the ID-card reader runs in the API process (loaded on first use, once
per app: the `CardChecker` on the app's state, see `card_checker`) and the problems a new photo can fix are
answered at once, before the photo is stored.

The card-first page reads the photo before a session exists (`CardChecker.read`: the name and number for the person
to confirm) and then uploads the same photo to the session it opens; the read is kept for a few minutes by the
photo's sha256 so the second check does not run the OCR again."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from pipelines.errors import MediaError
from pipelines.media import ID_CARD_IMAGE_LIMITS, decode_image, open_image
from pipelines.reasons import ReasonCode
from service.certification.contract import CardReader
from service.certification.errors import ServiceError
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
# Card reads run at once in one API process (settings.h5.card_reads): each holds a request thread, a core and up to
# a few hundred MiB while it runs.
DEFAULT_CARD_READS = 2
# How long a photo waits for a slot before BUSY: a read takes about 0.2 s, so a peak minute's chance meeting of three
# pensioners' photos in one process is absorbed, while a flood still gets no more than the slots' cores. A photo whose
# header the pipeline refuses (e.g. a JPEG of 10,000 scans, a minute to decode) is answered before it takes a slot.
CARD_READ_WAIT_S = 3.0


class CardReaderBusy(ServiceError):
    """Every card-read slot of this process stayed taken for CARD_READ_WAIT_S: answered then (503 BUSY,
    "系统繁忙,请稍后再试"), not queued for longer on the request threads, which every other page of the service
    needs (review: workload 2)."""

    def __init__(self) -> None:
        super().__init__("BUSY", "all card reads of this process are running")


@dataclass(frozen=True)
class CardRead:
    """What the page needs of one card photo: the problems a re-take fixes, else the name and number read."""

    problems: tuple[ReasonCode, ...]
    name: str | None = None
    id_number: str | None = None


class CardChecker:
    """The reader (loaded on the first photo, not when the process starts) and the recent reads by sha256."""

    def __init__(self, pack: str | None, slots: int = DEFAULT_CARD_READS, wait_s: float = CARD_READ_WAIT_S) -> None:
        self.pack = pack
        self._slots = threading.BoundedSemaphore(slots)
        self._wait_s = wait_s
        self._reader: CardReader | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, CardRead]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def reader(self) -> CardReader:
        with self._lock:
            if self._reader is None:
                from pipelines.id_card import IdCardReader  # lazy: the OCR models load on the first card photo

                self._reader = IdCardReader(self.pack)
            return self._reader

    def read(self, data: bytes, today: dt.date, cached: bool = True) -> CardRead:
        """The portrait side's problems, or its name and number; with `cached`, the same photo is read once per
        CACHE_TTL_S (off for the bench, which times the OCR itself). `today`: the bureau's date
        (service/infra/clock.local_today), up to which the number's birth date is valid: the reader's own default,
        the machine's date, is the day before Beijing's from 16:00 to 24:00 UTC and refused a number born on the
        bureau's today (ID_CHECKSUM_FAILED, "请重拍"). A read is kept for the day it was judged on."""
        key = f"{hashlib.sha256(data).hexdigest()}:{today.isoformat()}"
        read = self._cached(key) if cached else None
        if read is None:
            try:  # what the header refuses (size, format, a JPEG's scans) never waits for nor holds a slot
                open_image(data, ID_CARD_IMAGE_LIMITS)
            except MediaError as exc:
                return CardRead((exc.reason,))
            if not self._slots.acquire(timeout=self._wait_s):
                raise CardReaderBusy()
            try:
                read = _ocr(data, self.reader, today)
            finally:
                self._slots.release()
            self._remember(key, read)
        return read

    def problems(
        self, data: bytes, id_hash: str, keyring: Keyring, today: dt.date, cached: bool = False
    ) -> list[ReasonCode]:
        """Problems of this photo as the portrait side of the card with this ID-number hash; empty if fine.
        `today`: the bureau's date (`read`). `cached`: reuse the read of the card-first page (the same bytes it read
        a moment ago)."""
        read = self.read(data, today, cached)
        if read.problems:
            return list(read.problems)
        if id_hash not in keyring.id_hashes(read.id_number or ""):  # stored under any signing key in use
            return [ReasonCode.ID_NUMBER_MISMATCH]
        return []

    def _cached(self, key: str) -> CardRead | None:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is None or hit[0] < time.monotonic() - CACHE_TTL_S:
                return None
            self._cache.move_to_end(key)
            return hit[1]

    def _remember(self, key: str, read: CardRead) -> None:
        with self._cache_lock:
            self._cache[key] = (time.monotonic(), read)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)


def card_checker(request: Request, pack: str | None, slots: int = DEFAULT_CARD_READS) -> CardChecker:
    """The app's checker, made on its first card photo and kept on the app's state (one per app, so per API
    process); the card-first read and the session's card check share it, and with it the cache of reads and the
    `slots` card reads that may run at once."""
    checker: CardChecker | None = getattr(request.app.state, "card_checker", None)
    if checker is None:
        checker = request.app.state.card_checker = CardChecker(pack, slots)
    return checker


def _ocr(data: bytes, reader: Callable[[], CardReader], today: dt.date) -> CardRead:
    try:
        image = decode_image(data, ID_CARD_IMAGE_LIMITS)  # a larger picture is refused from its header
    except MediaError as exc:
        return CardRead((exc.reason,))
    result = reader().read(image, today)
    problems = [e for e in RETAKE if e in result.errors]
    if not problems and result.side != "portrait":
        problems = [ReasonCode.ID_WRONG_SIDE]
    if not problems and not result.id_number:
        problems = [ReasonCode.ID_NUMBER_UNREADABLE]
    if problems:
        return CardRead(tuple(problems))
    return CardRead((), name=result.name, id_number=result.id_number)
