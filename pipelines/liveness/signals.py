"""Per-frame measurements from the 468-point face mesh: eye and mouth openness, head yaw and pitch.

Indices follow the MediaPipe canonical face mesh. "Subject's right" is image-left in a non-mirrored video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# (corner, upper, upper, corner, lower, lower): the six-point eye aspect ratio of Soukupová & Čech.
_RIGHT_EYE = (33, 160, 158, 133, 153, 144)
_LEFT_EYE = (362, 385, 387, 263, 373, 380)
_MOUTH_INNER_TOP, _MOUTH_INNER_BOTTOM = 13, 14
_MOUTH_LEFT, _MOUTH_RIGHT = 61, 291
# Cheek contour points level with the eyes (yaw) and forehead top / chin (pitch): long baselines are steady.
_CHEEK_RIGHT, _CHEEK_LEFT = 234, 454
_FOREHEAD, _CHIN = 10, 152
_NOSE_TIP = 1


@dataclass(frozen=True)
class FaceSignals:
    """Measurements of one frame. Angles in degrees: yaw > 0 when the nose moves towards image-right
    (the subject turns to their own left in a non-mirrored video), pitch > 0 when the head tilts down."""

    t: float
    ear: float
    mar: float
    yaw: float
    pitch: float
    presence: float


def _dist(p: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(p[a, :2] - p[b, :2]))


def eye_aspect_ratio(points: np.ndarray, idx: tuple[int, int, int, int, int, int]) -> float:
    c1, u1, u2, c2, l2, l1 = idx
    width = _dist(points, c1, c2)
    return (_dist(points, u1, l1) + _dist(points, u2, l2)) / (2.0 * width) if width > 0 else 0.0


def measure(points: np.ndarray, t: float, presence: float) -> FaceSignals:
    """Signals from mesh points (468×3, image pixels, z on the x scale)."""
    ear = (eye_aspect_ratio(points, _RIGHT_EYE) + eye_aspect_ratio(points, _LEFT_EYE)) / 2.0
    mouth_w = _dist(points, _MOUTH_LEFT, _MOUTH_RIGHT)
    mar = _dist(points, _MOUTH_INNER_TOP, _MOUTH_INNER_BOTTOM) / mouth_w if mouth_w > 0 else 0.0
    across = points[_CHEEK_LEFT] - points[_CHEEK_RIGHT]
    # The head's left-right axis: its depth component against its in-plane length gives the yaw, with
    # the roll removed by using the in-plane length rather than x alone.
    yaw = math.degrees(math.atan2(float(across[2]), float(np.hypot(across[0], across[1]))))
    down = points[_CHIN] - points[_FOREHEAD]
    pitch = math.degrees(math.atan2(float(down[2]), float(np.hypot(down[0], down[1]))))
    return FaceSignals(t, ear, mar, yaw, pitch, presence)
