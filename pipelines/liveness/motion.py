"""Rigid versus non-rigid face motion: a photo or a screen held to the camera moves as one plane.

Every image of a flat object (a print, a phone showing a still) is related to every other by a homography,
however the hand moves it. A live face is not flat: turning shifts the nose against the cheeks (parallax), and
blinks, speech and expressions move parts of the face against the rest. So the mesh points of two frames of a
photo fit a homography up to the mesh's own jitter, and those of a live face do not.

The score compares two residuals of a least-squares homography fit over the 468 mesh points, both in
inter-ocular distances (the 97th percentile over points, so a blink or a mouth movement of a few dozen points
counts as much as a whole-face parallax):

* ``jitter``: between each sampled frame and the mean of its two neighbours: smooth motion cancels there, the
  mesh's frame-to-frame noise does not (a hand-held phone moves fast, and that must not count as noise);
* ``nonrigid``: between frames at least ``min_gap_s`` apart, on trajectories smoothed over ``smooth``
  frames (the noise averages out, coherent non-rigid motion does not), the ``pair_percentile`` over pairs.

``ratio = nonrigid / max(jitter, jitter_floor)``; a video shows live motion when the ratio reaches
``min_ratio``. A face that hardly moved at all (``moved``, the median point displacement between far frames,
below ``min_moved``) gives no evidence either way (``live`` is None): a photo on a stand and a person sitting
still look alike, and then the passive score and the challenge decide. A photo held by a hand always drifts.
The thresholds are checked with the rest of the liveness evaluation (docs/liveness.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# Outer eye corners of the MediaPipe mesh: the inter-ocular distance that normalises every residual.
_EYE_OUTER = (33, 263)


@dataclass(frozen=True)
class MotionConfig:
    smooth: int = 3
    min_gap_s: float = 0.45
    pair_percentile: float = 95.0
    point_percentile: float = 97.0
    # Noise floor (inter-ocular distances): the mesh jitter of a sharp, well-lit, steady face is 0.005–0.01;
    # a steady mesh must not turn a tiny residual into a large ratio.
    jitter_floor: float = 0.009
    min_ratio: float = 3.0
    # Inter-ocular distances: a hand holding a photo drifts by far more than this within a second.
    min_moved: float = 0.1
    min_frames: int = 6
    # Pairs grow with the square of the frames: the far pairs use at most this many, evenly spread.
    max_pair_frames: int = 30


@dataclass(frozen=True)
class MotionEvidence:
    """How much the face moved in ways a flat picture cannot; ``live`` is None when too few frames tracked."""

    jitter: float
    nonrigid: float
    ratio: float
    moved: float
    n_frames: int
    live: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "jitter": round(self.jitter, 4),
            "nonrigid": round(self.nonrigid, 4),
            "ratio": round(self.ratio, 3),
            "moved": round(self.moved, 3),
            "n_frames": self.n_frames,
            "live": self.live,
        }


def homography_residual(a: np.ndarray, b: np.ndarray, scale: float, percentile: float) -> float:
    """Residual of the best homography a→b (least squares over all points), as a percentile over points."""
    src, dst = a.astype(np.float64), b.astype(np.float64)
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None:
        return float("inf")
    mapped = cv2.perspectiveTransform(src[None], h)[0]
    dist = np.sqrt(((mapped - dst) ** 2).sum(axis=1)) / scale
    return float(np.percentile(dist, percentile))


def displacement(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    """Median point displacement a→b: how far the face moved as a whole."""
    return float(np.median(np.sqrt(((a - b) ** 2).sum(axis=1)))) / scale


def _smoothed(points: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return points
    half = window // 2
    return np.stack([points[max(0, i - half) : i + half + 1].mean(axis=0) for i in range(len(points))])


def measure_motion(times: Sequence[float], points: Sequence[np.ndarray], cfg: MotionConfig) -> MotionEvidence:
    """Motion evidence over the tracked frames (2-D mesh points, image pixels, one array per frame)."""
    n = len(points)
    if n < cfg.min_frames or len(times) != n:
        return MotionEvidence(0.0, 0.0, 0.0, 0.0, n, None)
    pts = np.stack([np.asarray(p, dtype=np.float64)[:, :2] for p in points])
    t = np.asarray(times, dtype=np.float64)
    a, b = _EYE_OUTER
    scale = float(np.median(np.linalg.norm(pts[:, a] - pts[:, b], axis=1))) or 1.0
    pct = cfg.point_percentile
    mids = (pts[:-2] + pts[2:]) / 2.0
    jitter = float(np.median([homography_residual(mids[i], pts[i + 1], scale, pct) for i in range(n - 2)]))
    smooth = _smoothed(pts, cfg.smooth)
    keep = np.unique(np.linspace(0, n - 1, min(n, cfg.max_pair_frames)).round().astype(int))
    smooth, t = smooth[keep], t[keep]
    m = len(keep)
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m) if t[j] - t[i] >= cfg.min_gap_s]
    if not pairs:
        return MotionEvidence(jitter, 0.0, 0.0, 0.0, n, None)
    far = [homography_residual(smooth[i], smooth[j], scale, pct) for i, j in pairs]
    nonrigid = float(np.percentile(far, cfg.pair_percentile))
    moved = float(np.percentile([displacement(smooth[i], smooth[j], scale) for i, j in pairs], cfg.pair_percentile))
    ratio = nonrigid / max(jitter, cfg.jitter_floor)
    live = True if ratio >= cfg.min_ratio else (False if moved >= cfg.min_moved else None)
    return MotionEvidence(jitter, nonrigid, ratio, moved, n, live)
