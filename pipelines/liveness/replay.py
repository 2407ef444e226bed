"""Replay defences: single-use nonces and duplicate-video detection, behind small protocols.

The in-memory stores serve the CLI and tests; the service supplies DB-backed implementations of the same
protocols (a unique nonce column; a table of video hashes and frame hashes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from pipelines.reasons import ReasonCode

HASH_SIZE = 8  # 8×8 difference hash = 64 bits


class NonceStore(Protocol):
    def consume(self, nonce: str) -> bool:
        """Mark the nonce used; False when it had been used before (atomically)."""
        ...


class VideoFingerprintStore(Protocol):
    def seen(self, video_sha256: str, frame_hashes: Sequence[int]) -> bool:
        """True when this video, or a near-duplicate of its frames, was submitted before."""
        ...

    def add(self, video_sha256: str, frame_hashes: Sequence[int]) -> None: ...


class InMemoryNonceStore:
    def __init__(self) -> None:
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def consume(self, nonce: str) -> bool:
        with self._lock:
            if nonce in self._used:
                return False
            self._used.add(nonce)
            return True


def dhash(image_bgr: np.ndarray) -> int:
    """64-bit difference hash of a frame: robust to re-encoding and rescaling, not to new content."""
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (HASH_SIZE + 1, HASH_SIZE), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).reshape(-1)
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_duplicate(a: Sequence[int], b: Sequence[int], max_bits: int = 6, min_share: float = 0.6) -> bool:
    """True when ``min_share`` of the shorter list's frames have a near-identical frame in the other list."""
    if not a or not b:
        return False
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    hits = sum(1 for h in short if min(hamming(h, g) for g in long_) <= max_bits)
    return hits >= min_share * len(short)


class InMemoryVideoFingerprintStore:
    def __init__(self, max_bits: int = 6, min_share: float = 0.6) -> None:
        self._videos: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self.max_bits = max_bits
        self.min_share = min_share

    def seen(self, video_sha256: str, frame_hashes: Sequence[int]) -> bool:
        with self._lock:
            if video_sha256 in self._videos:
                return True
            return any(near_duplicate(frame_hashes, h, self.max_bits, self.min_share) for h in self._videos.values())

    def add(self, video_sha256: str, frame_hashes: Sequence[int]) -> None:
        with self._lock:
            self._videos[video_sha256] = list(frame_hashes)


def video_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def nonce_reasons(
    nonce: str | None,
    expires_at: dt.datetime | None,
    store: NonceStore | None,
    now: dt.datetime | None = None,
) -> list[ReasonCode]:
    """Reason codes of a challenge nonce: expired, or already used (the nonce is consumed here)."""
    reasons: list[ReasonCode] = []
    if nonce is None:
        return reasons
    if expires_at is not None and (now or dt.datetime.now(dt.UTC)) >= expires_at:
        reasons.append(ReasonCode.NONCE_EXPIRED)
    if store is not None and not store.consume(nonce):
        reasons.append(ReasonCode.NONCE_REUSED)
    return reasons
