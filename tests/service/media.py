"""Real test media: an ID card rendered around the face of a real selfie video from shared data, so that the
card and the video show the same person (see service.adapters.cli.demo.sample_card)."""

from __future__ import annotations

import functools
from pathlib import Path

from pipelines.id_card.synthetic import CardFields
from service.adapters.cli.demo import DEMO_ACTIONS, DEMO_VIDEO, sample_card

LIVE_VIDEO = DEMO_VIDEO  # real webcam video: blinks and head turns
SPOOF_VIDEO = "spoof/videos/apfol_fake2.webm"  # the same person replayed on a phone screen
LIVE_ACTIONS = DEMO_ACTIONS


@functools.lru_cache(maxsize=8)
def card_for_video(data_dir: Path, video_rel: str, seed: int = 7) -> tuple[bytes, CardFields]:
    card, fields = sample_card(data_dir, video_rel, seed)
    return card, fields
