"""Capture quality of the selfie video: light on the face, back-light, focus and face size.

The anti-spoofing networks were trained on reasonably lit, sharp faces; on a dim, noisy, blurred or back-lit
face their score says more about the camera than about the person. So when the passive score fails and the
capture is poor, the person is asked to retake in better conditions (a reason code with a Chinese hint) instead
of being told they are a spoof. A poor capture never passes by itself: it only changes the answer from
"spoof" to "retake".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipelines.face_match.quality import QualityConfig
from pipelines.reasons import ReasonCode


@dataclass(frozen=True)
class CaptureConfig:
    # Mean grey level (0–255) of the inner face box: indoor faces under ordinary light sit at about 90–170.
    min_face_luma: float = 55.0
    # Back-light: the surroundings this much brighter than the face, and bright themselves.
    backlight_delta: float = 70.0
    backlight_min_background: float = 170.0
    # Laplacian variance of the aligned 112-px face (FaceQuality.sharpness): the matcher's own blur limit.
    min_sharpness: float = QualityConfig.min_sharpness
    # Face box short side at analysis size (640-px long side): smaller faces leave MiniFASNet's 80-px input
    # filled with upscaled blur.
    min_face_px: float = 80.0
    # A condition counts when it holds on at least this share of the frames the passive score was taken on.
    min_share: float = 0.5
    # Whole-frame grey level under which a video with no usable face was filmed in the dark (not "no one there").
    min_scene_luma: float = 35.0


@dataclass(frozen=True)
class CaptureStats:
    """Capture measurements of one analysed frame."""

    face_luma: float
    background_luma: float
    sharpness: float
    face_px: float


def measure_capture(image_bgr: np.ndarray, bbox: tuple[float, float, float, float], sharpness: float) -> CaptureStats:
    """Face and surround brightness of one frame; ``sharpness`` comes from the matcher's face quality."""
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    x1, y1, x2, y2 = bbox
    bw, bh = x2 - x1, y2 - y1
    # The inner 60% of the box: skin, not hair or background at the box corners.
    ix1, iy1 = int(max(0, x1 + 0.2 * bw)), int(max(0, y1 + 0.2 * bh))
    ix2, iy2 = int(min(w, x2 - 0.2 * bw)), int(min(h, y2 - 0.2 * bh))
    face = gray[iy1:iy2, ix1:ix2]
    face_luma = float(face.mean()) if face.size else 0.0
    # Surround: everything outside the box grown by half its size (shoulders and hair stay out).
    mask = np.ones_like(gray, dtype=bool)
    ox1, oy1 = int(max(0, x1 - 0.5 * bw)), int(max(0, y1 - 0.5 * bh))
    ox2, oy2 = int(min(w, x2 + 0.5 * bw)), int(min(h, y2 + 0.5 * bh))
    mask[oy1:oy2, ox1:ox2] = False
    background_luma = float(gray[mask].mean()) if mask.any() else face_luma
    return CaptureStats(face_luma, background_luma, float(sharpness), float(min(bw, bh)))


def capture_reasons(stats: Sequence[CaptureStats], cfg: CaptureConfig) -> list[ReasonCode]:
    """Retake codes that hold on most of the given frames, most actionable first."""
    if not stats:
        return []

    def share(cond: list[bool]) -> bool:
        return sum(cond) >= cfg.min_share * len(cond)

    reasons: list[ReasonCode] = []
    if share([s.face_luma < cfg.min_face_luma for s in stats]):
        reasons.append(ReasonCode.CAPTURE_TOO_DARK)
    backlit = [
        s.background_luma >= cfg.backlight_min_background and s.background_luma - s.face_luma >= cfg.backlight_delta
        for s in stats
    ]
    if share(backlit):
        reasons.append(ReasonCode.CAPTURE_BACKLIT)
    if share([s.face_px < cfg.min_face_px for s in stats]):
        reasons.append(ReasonCode.CAPTURE_FACE_TOO_SMALL)
    if share([s.sharpness < cfg.min_sharpness for s in stats]):
        reasons.append(ReasonCode.CAPTURE_TOO_BLURRY)
    return reasons


def scene_reasons(frame_luma: Sequence[float], cfg: CaptureConfig) -> list[ReasonCode]:
    """For a video where no face could be analysed: was it simply too dark to see one?"""
    if frame_luma and float(np.median(frame_luma)) < cfg.min_scene_luma:
        return [ReasonCode.CAPTURE_TOO_DARK]
    return []


def summarise(stats: Sequence[CaptureStats]) -> dict[str, Any]:
    """Median of each measurement over the frames (the JSON's ``capture`` block)."""
    if not stats:
        return {}
    keys = ("face_luma", "background_luma", "sharpness", "face_px")
    return {k: round(float(np.median([getattr(s, k) for s in stats])), 1) for k in keys}
