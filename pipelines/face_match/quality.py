"""Per-face quality measures: size, sharpness, pose (from the 5 landmarks) and brightness.

Low quality is reported as flags (and the FACE_LOW_QUALITY reason), never silently passed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import cv2
import numpy as np

# Template proportions of the ArcFace 112×112 layout, used as the frontal reference for pitch.
_FRONTAL_NOSE_RATIO = (71.7366 - 51.6) / (92.28 - 51.6)
# Depth of the nose tip in front of the eye plane, in inter-ocular distances (average adult head).
_NOSE_DEPTH = 0.55


class QualityFlag(enum.StrEnum):
    TOO_SMALL = "too_small"
    BLURRY = "blurry"
    POSE = "pose"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"


@dataclass(frozen=True)
class QualityConfig:
    min_interocular_px: float = 20.0
    min_sharpness: float = 25.0
    max_abs_yaw_deg: float = 35.0
    max_abs_pitch_deg: float = 30.0
    max_abs_roll_deg: float = 45.0
    min_brightness: float = 40.0
    max_brightness: float = 220.0


@dataclass(frozen=True)
class FaceQuality:
    interocular_px: float
    face_px: float
    sharpness: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    brightness: float
    flags: tuple[QualityFlag, ...]

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def frontalness(self) -> float:
        """1 for a frontal face, falling towards 0 as the head turns or tilts."""
        return math.cos(math.radians(min(abs(self.yaw_deg), 89.0))) * math.cos(
            math.radians(min(abs(self.pitch_deg), 89.0))
        )


def pose_from_landmarks(kps: np.ndarray) -> tuple[float, float, float]:
    """Approximate (yaw, pitch, roll) in degrees from the 5 ArcFace-order landmarks."""
    left_eye, right_eye, nose, left_mouth, right_mouth = (kps[i].astype(np.float64) for i in range(5))
    eye_vec = right_eye - left_eye
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # Measure in the face's own frame so that roll does not leak into yaw and pitch.
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rot = np.array([[c, -s], [s, c]])
    eye_mid = (left_eye + right_eye) / 2
    mouth_mid = (left_mouth + right_mouth) / 2
    nose_r = rot @ (nose - eye_mid)
    mouth_r = rot @ (mouth_mid - eye_mid)
    iod = float(np.linalg.norm(eye_vec)) or 1.0
    yaw = math.degrees(math.atan((nose_r[0] / iod) / _NOSE_DEPTH))
    mouth_drop = float(mouth_r[1]) or 1.0
    pitch = math.degrees(math.atan((nose_r[1] / mouth_drop - _FRONTAL_NOSE_RATIO) / _NOSE_DEPTH))
    return yaw, pitch, roll


def measure_quality(
    aligned_bgr: np.ndarray, kps: np.ndarray, bbox: tuple[float, float, float, float], config: QualityConfig
) -> FaceQuality:
    gray = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY)
    # Sharpness on the central face region of the aligned crop, so background texture does not count.
    centre = gray[20:100, 24:88]
    sharpness = float(cv2.Laplacian(centre, cv2.CV_64F).var())
    brightness = float(centre.mean())
    iod = float(np.linalg.norm(kps[1] - kps[0]))
    face_px = float(min(bbox[2] - bbox[0], bbox[3] - bbox[1]))
    yaw, pitch, roll = pose_from_landmarks(kps)
    flags: list[QualityFlag] = []
    if iod < config.min_interocular_px:
        flags.append(QualityFlag.TOO_SMALL)
    if sharpness < config.min_sharpness:
        flags.append(QualityFlag.BLURRY)
    if (
        abs(yaw) > config.max_abs_yaw_deg
        or abs(pitch) > config.max_abs_pitch_deg
        or abs(roll) > config.max_abs_roll_deg
    ):
        flags.append(QualityFlag.POSE)
    if brightness < config.min_brightness:
        flags.append(QualityFlag.TOO_DARK)
    if brightness > config.max_brightness:
        flags.append(QualityFlag.TOO_BRIGHT)
    return FaceQuality(iod, face_px, sharpness, yaw, pitch, roll, brightness, tuple(flags))
