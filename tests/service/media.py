"""Real test media: ID cards rendered (with the ID-card stage's generator) around a face taken from a real
video in shared data, so that a card and a selfie video show the same person."""

from __future__ import annotations

import functools
from pathlib import Path

import av
import cv2
import numpy as np

from pipelines.id_card.synthetic import (
    CardFields,
    PhotoConfig,
    photograph,
    portrait_from_face,
    random_fields,
    render_card,
)

LIVE_VIDEO = "spoof/videos/apfol_real2.webm"  # real webcam video: blinks and head turns
SPOOF_VIDEO = "spoof/videos/apfol_fake2.webm"  # the same person replayed on a phone screen
LIVE_ACTIONS = ["blink", "turn_left"]


def video_frame(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= t:
                return np.ascontiguousarray(frame.to_ndarray(format="bgr24"))
    raise ValueError(f"{path} has no frame at {t}s")


@functools.lru_cache(maxsize=8)
def card_for_video(data_dir: Path, video_rel: str, seed: int = 7, t: float = 0.5) -> tuple[bytes, CardFields]:
    """A photographed ID card whose portrait is the face in `video_rel` at time `t` (JPEG bytes, fields)."""
    frame = video_frame(data_dir / video_rel, t)
    h, w = frame.shape[:2]
    # The face sits in the middle of these selfie videos: a centred crop frames it like an ID photo.
    crop = frame[int(h * 0.05) : int(h * 0.95), int(w * 0.2) : int(w * 0.8)]
    rng = np.random.default_rng(seed)
    fields = random_fields(rng)
    flat = render_card(fields, portrait_from_face(crop), data_dir)
    mild = PhotoConfig(any_rotation=False, max_blur_sigma=0.5, glare_prob=0.0, shadow_prob=0.0)
    image, _, _ = photograph(flat, rng, mild, rotation=2.0)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes(), fields
