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


# Playback rates tried when lining two clips up: a replay may be re-timed (``setpts``, another frame rate), which a
# fixed 1:1 time alignment misses. Geometric steps of about 3 % from 0.5× to 2×.
RATES = tuple(float(r) for r in np.geomspace(0.5, 2.0, 48))


def _words(hashes: Sequence[int]) -> np.ndarray:
    """256-bit hashes as rows of four uint64 words (for vectorised Hamming distances)."""
    mask = (1 << 64) - 1
    return np.asarray([[(h >> (64 * w)) & mask for w in range(4)] for h in hashes], dtype=np.uint64)


def distance_matrix(a: Sequence[int], b: Sequence[int]) -> np.ndarray:
    """Hamming distance of every hash of ``a`` to every hash of ``b``."""
    wa, wb = _words(a), _words(b)
    return np.asarray(np.bitwise_count(wa[:, None, :] ^ wb[None, :, :]).sum(axis=2), dtype=np.int64)


def near_duplicate(a: Sequence[int], b: Sequence[int], max_ratio: float = 0.8, min_overlap: int = 8) -> bool:
    """True when the two hash sequences line up in time, at some offset and playback rate, with far smaller
    differences than each video has within itself over half a second.

    A re-encoded, rescaled, trimmed or re-timed (sped up, slowed down) copy lines up along one straight line
    ``j = rate·i + offset`` with only compression noise left; a new recording of the same person in the same place
    does not: its frames differ from the old ones about as much as the old ones differ from each other.
    Sequences shorter than ``min_overlap`` bins are not judged.
    """
    if min(len(a), len(b)) < min_overlap:
        return False
    lag = max(1, round(0.5 / HASH_STEP_S))
    within = [hamming(s[i], s[i + lag]) for s in (a, b) for i in range(len(s) - lag)]
    scale = max(float(np.median(within)) if within else 0.0, 1.0)
    limit = max_ratio * scale
    dist = distance_matrix(a, b).astype(np.float64)
    ia = np.arange(len(a))
    for rate in RATES:
        # A copy overlaps on at least half of the shorter clip, counted in bins of each clip: a few bins of one
        # nearly still clip stretched over many of the other would line up with anything still.
        need_a = max(min_overlap, min(len(a), round(len(b) / rate)) // 2)
        need_b = max(min_overlap, min(len(b), round(len(a) * rate)) // 2)
        offsets = np.arange(-int(np.ceil(rate * (len(a) - 1))), len(b))
        jb = np.rint(rate * ia)[None, :].astype(np.int64) + offsets[:, None]  # one row per offset
        ok = (jb >= 0) & (jb < len(b))
        distinct_b = np.where(ok, jb, -1)
        distinct_b.sort(axis=1)
        n_b = ((np.diff(distinct_b, axis=1) != 0) & (distinct_b[:, 1:] >= 0)).sum(axis=1)
        rows = (ok.sum(axis=1) >= need_a) & (n_b >= need_b)
        if not rows.any():
            continue
        d = np.where(ok, dist[ia[None, :], np.clip(jb, 0, len(b) - 1)], np.nan)[rows]
        if float(np.nanmedian(d, axis=1).min()) <= limit:
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
