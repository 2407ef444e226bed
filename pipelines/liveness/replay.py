"""Replay defences: the frame hashes of a video.

What counts as a duplicate video (comparing those hashes, the thresholds, the exact sha256 rule) is decided in
:mod:`pipelines.liveness.duplicates`. The challenge nonce (single use, expiry) has one check, the service's
(service.certification.sessions), made before a video reaches the checker.
"""

from __future__ import annotations

import cv2
import numpy as np

# Frame hashes: one per time bin of HASH_STEP_S seconds, from the mean of the bin's decoded frames (robust to
# frame rate, B-frame skipping and a shifted start), as a 16×16 grid of "clearly brighter than the left
# neighbour" bits (256 bits). Small gradients give 0, so flat walls and green screens do not flip bits with
# compression noise the way a plain difference hash does.
HASH_STEP_S = 0.25
HASH_GRID = 16
THUMB_SIDE = 64
GRADIENT_MIN = 4.0  # grey levels on the averaged thumbnail


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
