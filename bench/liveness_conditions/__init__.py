"""Seeded capture conditions and synthetic attacks for liveness evaluation.

The dev set has two real and two replay videos: far too few to say how the liveness stage behaves in a dim
living room, against a bright window, on a cheap phone's low bit rate, or against a photo waved in front of
the camera. This module turns one real clip (BGR frames + fps) into

* degraded **real** clips (``CONDITIONS``): low light, backlight, low resolution / heavy compression, VP8 WebM,
  a sideways-stored portrait phone clip, mirroring, soft focus, hand shake, glasses; and
* synthetic **attacks** (``ATTACKS``): a hand-held photo, a phone screen replay (still or video), a print, a
  monitor replay of the video and a cut photo worn over the face with live eyes behind it,

deterministically from a seed, and writes them as video files with PyAV. The synthetic attacks are *proxies*:
they test that the pipeline reacts to the cues real attacks carry (rigid planar motion, moiré, halftone, paper
texture, screen white point), not that it catches every real attack.

    python -m bench.liveness_conditions demo ../shared/data/spoof/videos/lestari15_real.mp4 --out /tmp/conds
    python -m bench.liveness_conditions generate --index presentations.csv --out DIR --seed 0 [--per-source 4]

The package: ``clip`` (the Source/Clip types, video files), ``imaging`` (small image helpers, noise), ``faces``
(detector, eye track, glasses drawing), ``capture`` (real-capture conditions), ``attacks`` (synthetic attacks),
``cut_photo`` (the cut-photo attack), ``registry`` (the named conditions, ``apply``), ``batch`` (``generate``),
``preview`` (``demo``), ``cli``.
"""

from bench.liveness_conditions.attacks import (
    hand_motion,
    monitor_screen_video,
    phone_screen,
    phone_screen_video,
    photo_hand,
    printed_photo,
    still_index,
)
from bench.liveness_conditions.batch import generate
from bench.liveness_conditions.capture import (
    backlight,
    glasses,
    hand_shake,
    low_light,
    lowres_360p,
    lowres_480p,
    mirrored,
    portrait_phone,
    soft_focus,
    vp8_webm,
)
from bench.liveness_conditions.cli import main
from bench.liveness_conditions.clip import (
    CSV_COLUMNS,
    GENERATED_CSV,
    MAX_SECONDS,
    MIN_SECONDS,
    WORK_SIDE,
    Clip,
    Generator,
    Source,
    displayed_frame,
    read_video,
    write,
)
from bench.liveness_conditions.cut_photo import cut_photo
from bench.liveness_conditions.faces import REPO, EyeFn, EyePair, NoFaceError, detect_face_box
from bench.liveness_conditions.imaging import Box, Point
from bench.liveness_conditions.preview import contact_sheet, demo
from bench.liveness_conditions.registry import ATTACKS, CONDITIONS, DEFAULT_SET, apply, condition_rng

__all__ = [
    "ATTACKS",
    "CONDITIONS",
    "CSV_COLUMNS",
    "DEFAULT_SET",
    "GENERATED_CSV",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "REPO",
    "WORK_SIDE",
    "Box",
    "Clip",
    "EyeFn",
    "EyePair",
    "Generator",
    "NoFaceError",
    "Point",
    "Source",
    "apply",
    "backlight",
    "condition_rng",
    "contact_sheet",
    "cut_photo",
    "demo",
    "detect_face_box",
    "displayed_frame",
    "generate",
    "glasses",
    "hand_motion",
    "hand_shake",
    "low_light",
    "lowres_360p",
    "lowres_480p",
    "main",
    "mirrored",
    "monitor_screen_video",
    "phone_screen",
    "phone_screen_video",
    "photo_hand",
    "portrait_phone",
    "printed_photo",
    "read_video",
    "soft_focus",
    "still_index",
    "vp8_webm",
    "write",
]
