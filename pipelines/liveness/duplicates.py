"""One duplicate-video policy: what counts as a duplicate video, its thresholds, and where each check runs.

A video is a duplicate of an earlier one when

- its bytes are the same (equal sha256, :func:`video_sha256`): an *exact re-upload*; or
- its frame hashes (:mod:`pipelines.liveness.replay`, one 256-bit hash per 0.25 s) line up in time with the
  earlier video's, at some offset and playback rate, far closer than each video is to itself half a second
  later (:func:`near_duplicate`, thresholds :data:`MAX_RATIO`, :data:`MIN_OVERLAP`): a *near-duplicate*
  (re-encoded, rescaled, trimmed, re-timed or screen-recorded copy).

The checks are split by what they cost and what they can see:

- **At upload** (``service/certification/sessions.py`` via ``service/certification/fingerprints.py``
  ``already_uploaded``): exact re-uploads only, against every stored video of anyone, before the video is
  stored; refused with ``VIDEO_DUPLICATE`` at once (the citizen must film again). Cheap: one indexed lookup.
- **In the worker** (a :class:`VideoFingerprintStore` given to the liveness checker or the decision runner,
  :func:`check_and_record`): exact and near-duplicates, after decoding, against the same beneficiary's recent
  videos (the service's ``SessionFingerprints``) or every earlier video (the in-memory store of the CLI and
  tests). The video's hashes are recorded whatever the answer; ``VIDEO_DUPLICATE`` is then a hard finding that
  rejects the attempt.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from pipelines.liveness.replay import HASH_STEP_S, hamming

# A copy's aligned frames differ by at most this share of the videos' own half-second change (median Hamming).
MAX_RATIO = 0.8
# Clips shorter than this many hash bins (2 s) are not judged as near-duplicates.
MIN_OVERLAP = 8


def video_sha256(data: bytes) -> str:
    """The exact identity of a video's bytes, stored at upload and compared in the worker."""
    return hashlib.sha256(data).hexdigest()


def is_duplicate(
    video_sha: str,
    frame_hashes: Sequence[int],
    earlier_sha: str,
    earlier_hashes: Sequence[int],
    max_ratio: float = MAX_RATIO,
    min_overlap: int = MIN_OVERLAP,
) -> bool:
    """The policy for one pair of videos: the same bytes, or frame hashes that line up (both non-empty)."""
    if video_sha == earlier_sha:
        return True
    if len(frame_hashes) == 0 or len(earlier_hashes) == 0:
        return False
    return near_duplicate(frame_hashes, earlier_hashes, max_ratio, min_overlap)


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


def near_duplicate(
    a: Sequence[int], b: Sequence[int], max_ratio: float = MAX_RATIO, min_overlap: int = MIN_OVERLAP
) -> bool:
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


class VideoFingerprintStore(Protocol):
    def seen(self, video_sha256: str, frame_hashes: Sequence[int]) -> bool:
        """True when this video, or a near-duplicate of its frames, was submitted before."""
        ...

    def add(self, video_sha256: str, frame_hashes: Sequence[int]) -> None: ...


class InMemoryVideoFingerprintStore:
    def __init__(self, max_ratio: float = MAX_RATIO, min_overlap: int = MIN_OVERLAP) -> None:
        self._videos: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self.max_ratio = max_ratio
        self.min_overlap = min_overlap

    def seen(self, video_sha256: str, frame_hashes: Sequence[int]) -> bool:
        with self._lock:
            return any(
                is_duplicate(video_sha256, frame_hashes, sha, h, self.max_ratio, self.min_overlap)
                for sha, h in self._videos.items()
            )

    def add(self, video_sha256: str, frame_hashes: Sequence[int]) -> None:
        with self._lock:
            self._videos[video_sha256] = list(frame_hashes)


def check_and_record(store: VideoFingerprintStore, video_sha: str, frame_hashes: Sequence[int]) -> bool:
    """True when the store has seen this video (or a near-duplicate) before; the video is recorded either way."""
    seen = store.seen(video_sha, frame_hashes)
    store.add(video_sha, frame_hashes)
    return seen
