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

import numpy as np

# Outer eye corners of the MediaPipe mesh: the inter-ocular distance that normalises every residual.
_EYE_OUTER = (33, 263)


# The design value: reals on the dev clips gave 3.6–18, hand-moved stills of their frames 1.3–2.4.
DEFAULT_MIN_RATIO = 3.0


@dataclass(frozen=True)
class MotionConfig:
    smooth: int = 3
    min_gap_s: float = 0.45
    pair_percentile: float = 95.0
    point_percentile: float = 97.0
    # Noise floor (inter-ocular distances): the mesh jitter of a sharp, well-lit, steady face is 0.005–0.01;
    # a steady mesh must not turn a tiny residual into a large ratio.
    jitter_floor: float = 0.009
    # None: the calibrated value (calibration.json, chosen by the evaluation protocol), else DEFAULT_MIN_RATIO.
    min_ratio: float | None = None
    # Inter-ocular distances: a hand holding a photo drifts by far more than this within a second.
    min_moved: float = 0.1
    min_frames: int = 6
    # Pairs grow with the square of the frames: the far pairs use at most this many, evenly spread; and every
    # `point_step`-th mesh point (the mesh is dense: every other point still covers each eyelid and lip).
    max_pair_frames: int = 16
    point_step: int = 2


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


def _normaliser(pts: np.ndarray) -> np.ndarray:
    """Hartley normalisation per set (batch × N × 2): centroid to 0, mean distance to √2 (3×3 matrices)."""
    centre = pts.mean(axis=1)
    dist = np.sqrt(((pts - centre[:, None]) ** 2).sum(axis=2)).mean(axis=1)
    k = np.sqrt(2.0) / np.maximum(dist, 1e-9)
    t = np.zeros((len(pts), 3, 3))
    t[:, 0, 0] = t[:, 1, 1] = k
    t[:, 0, 2], t[:, 1, 2] = -k * centre[:, 0], -k * centre[:, 1]
    t[:, 2, 2] = 1.0
    return t


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    x = np.matmul(pts, h[:, :, :2].transpose(0, 2, 1)) + h[:, None, :, 2]
    out: np.ndarray = x[..., :2] / x[..., 2:3]
    return out


def homography_residuals(src: np.ndarray, dst: np.ndarray, scale: float, percentile: float) -> np.ndarray:
    """Per pair (batch × N × 2 each): residual of the least-squares homography src→dst, a percentile over points.

    The normalised direct linear transform of all pairs at once (a 9×9 eigenproblem each): one OpenCV call per
    pair cost ~2 ms, hundreds of pairs per video.
    """
    ts, td = _normaliser(src), _normaliser(dst)
    a, b = _apply(ts, src), _apply(td, dst)
    x, y, u, v = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    rows_u = np.stack([-x, -y, -one, zero, zero, zero, x * u, y * u, u], axis=-1)
    rows_v = np.stack([zero, zero, zero, -x, -y, -one, x * v, y * v, v], axis=-1)
    rows = np.concatenate([rows_u, rows_v], axis=1)
    m = np.matmul(rows.transpose(0, 2, 1), rows)
    _, vecs = np.linalg.eigh(m)
    hn = vecs[:, :, 0].reshape(-1, 3, 3)
    h = np.linalg.inv(td) @ hn @ ts
    mapped = _apply(h, src)
    dist = np.sqrt(((mapped - dst) ** 2).sum(axis=2)) / scale
    out: np.ndarray = np.percentile(dist, percentile, axis=1)
    return out


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
    pts = pts[:, :: cfg.point_step]
    pct = cfg.point_percentile
    mids = (pts[:-2] + pts[2:]) / 2.0
    jitter = float(np.median(homography_residuals(mids, pts[1:-1], scale, pct)))
    smooth = _smoothed(pts, cfg.smooth)
    keep = np.unique(np.linspace(0, n - 1, min(n, cfg.max_pair_frames)).round().astype(int))
    smooth, t = smooth[keep], t[keep]
    m = len(keep)
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m) if t[j] - t[i] >= cfg.min_gap_s]
    if not pairs:
        return MotionEvidence(jitter, 0.0, 0.0, 0.0, n, None)
    first, second = np.array([i for i, _ in pairs]), np.array([j for _, j in pairs])
    far = homography_residuals(smooth[first], smooth[second], scale, pct)
    nonrigid = float(np.percentile(far, cfg.pair_percentile))
    step = np.sqrt(((smooth[first] - smooth[second]) ** 2).sum(axis=2))
    moved = float(np.percentile(np.median(step, axis=1) / scale, cfg.pair_percentile))
    ratio = nonrigid / max(jitter, cfg.jitter_floor)
    min_ratio = DEFAULT_MIN_RATIO if cfg.min_ratio is None else cfg.min_ratio
    live = True if ratio >= min_ratio else (False if moved >= cfg.min_moved else None)
    return MotionEvidence(jitter, nonrigid, ratio, moved, n, live)
