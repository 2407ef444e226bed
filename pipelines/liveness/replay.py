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

# Frame hashes: one per time bin of HASH_STEP_S seconds, from the mean of the bin's decoded frames (robust to
# frame rate, B-frame skipping and a shifted start), as a 16×16 grid of "clearly brighter than the left
# neighbour" bits (256 bits). Small gradients give 0, so flat walls and green screens do not flip bits with
# compression noise the way a plain difference hash does.
HASH_STEP_S = 0.25
HASH_GRID = 16
THUMB_SIDE = 64
GRADIENT_MIN = 4.0  # grey levels on the averaged thumbnail


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


def grid_hash(thumb_gray: np.ndarray) -> int:
    """256-bit gradient hash of a grey thumbnail (any size; typically the 64×64 mean of one time bin)."""
    small = cv2.resize(thumb_gray.astype(np.float32), (HASH_GRID + 1, HASH_GRID), interpolation=cv2.INTER_AREA)
    bits = ((small[:, 1:] - small[:, :-1]) > GRADIENT_MIN).reshape(-1)
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def frame_thumb(image_bgr: np.ndarray) -> np.ndarray:
    """The 64×64 grey thumbnail that hashes are made from (for frames already decoded to BGR)."""
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    thumb: np.ndarray = cv2.resize(gray, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    return thumb


class BinnedHasher:
    """Averages the thumbnails of every decoded frame per time bin and hashes each bin."""

    def __init__(self, step_s: float = HASH_STEP_S) -> None:
        self.step_s = step_s
        self._bins: dict[int, tuple[np.ndarray, int]] = {}

    def add(self, t: float, thumb_gray: np.ndarray) -> None:
        k = int(t // self.step_s)
        acc, n = self._bins.get(k, (np.zeros(thumb_gray.shape, np.float32), 0))
        self._bins[k] = (acc + thumb_gray, n + 1)

    def hashes(self) -> list[int]:
        return [grid_hash(acc / n) for _, (acc, n) in sorted(self._bins.items())]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_duplicate(a: Sequence[int], b: Sequence[int], max_ratio: float = 0.8, min_overlap: int = 8) -> bool:
    """True when the two hash sequences line up in time with far smaller differences than each video has
    within itself over half a second.

    A re-encoded, rescaled or trimmed copy lines up at one offset with only compression noise left; a new
    recording of the same person in the same place does not: its frames differ from the old ones about as
    much as the old ones differ from each other. Sequences shorter than ``min_overlap`` bins are not judged.
    """
    if min(len(a), len(b)) < min_overlap:
        return False
    lag = max(1, round(0.5 / HASH_STEP_S))
    within = [hamming(s[i], s[i + lag]) for s in (a, b) for i in range(len(s) - lag)]
    scale = max(float(np.median(within)) if within else 0.0, 1.0)
    # A trimmed copy only overlaps part of the original: judge on at least half of the shorter sequence.
    need = max(min_overlap, min(len(a), len(b)) // 2)
    for k in range(-(len(b) - 1), len(a)):
        dists = [hamming(a[i], b[i - k]) for i in range(max(0, k), min(len(a), len(b) + k))]
        if len(dists) >= need and float(np.median(dists)) <= max_ratio * scale:
            return True
    return False


class InMemoryVideoFingerprintStore:
    def __init__(self, max_ratio: float = 0.8, min_overlap: int = 8) -> None:
        self._videos: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self.max_ratio = max_ratio
        self.min_overlap = min_overlap

    def seen(self, video_sha256: str, frame_hashes: Sequence[int]) -> bool:
        with self._lock:
            if video_sha256 in self._videos:
                return True
            return any(near_duplicate(frame_hashes, h, self.max_ratio, self.min_overlap) for h in self._videos.values())

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
