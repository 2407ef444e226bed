"""A synthetic screen-light reflection, injected into real frames, to measure the screen-light analysis.

Used by bench/liveness_light.py and the tests alike (one helper, so the tests check what the bench measures).
These clips are SYNTHETIC: how much a real phone screen lights a real face is for a pilot on real phones to
measure (docs/liveness.md, "The screen-light challenge").

The model: the screen adds light of its colour to the scene. A face at ~30 cm gets ``amplitude`` of it (each
channel multiplied by ``1 + amplitude * S``, S the colour's linear RGB, white = 1, so the face's log R/G or
log B/G moves by about ``amplitude`` for the saturated colours), inside a soft ellipse on the detected face box; the
room behind gets ``background_share`` of that. The camera then answers as cameras do: its white balance follows
the frame's mean colour part of the way (``awb_follow``), drifts slowly on its own (``awb_drift``), and the
sensor adds noise; the caller re-encodes the frames (H.264 by default). ``whole_frame`` tints face and
background alike: a flat screen replaying a video under the phone's light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random

import av
import cv2
import numpy as np

from pipelines.liveness.light import COLOURS, LightSequence, issue_light_sequence

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class Injection:
    amplitude: float
    background_share: float = 0.1
    awb_follow: float = 0.5
    awb_drift: float = 0.02
    awb_period_s: float = 7.0
    noise_sigma: float = 2.0
    # When the colours really showed, relative to the sequence's own start_s (the recorder's start latency).
    lag_s: float = 0.0
    whole_frame: bool = False
    seed: int = 0


def _linear_rgb(colour: str) -> np.ndarray:
    """The colour's linear light in BGR order (white = 1)."""
    c = np.array(COLOURS[colour][::-1], dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def colour_at(seq: LightSequence, t: float, lag_s: float = 0.0) -> str | None:
    """The colour on screen at clip time ``t`` (None before the first or after the last)."""
    i = int(np.floor((t - seq.start_s - lag_s) / seq.step_s))
    return seq.colours[i] if 0 <= i < len(seq.colours) else None


def face_masks(
    frames: Sequence[np.ndarray], detect: Callable[[np.ndarray], Box | None], every: int = 5
) -> list[np.ndarray]:
    """A soft elliptical face mask (float32, 0..1) per frame; the detector runs on every ``every``-th frame and
    its box is held in between (a frame before the first detection gets the first box)."""
    boxes: list[Box | None] = []
    last: Box | None = None
    for i, f in enumerate(frames):
        if i % every == 0:
            last = detect(f) or last
        boxes.append(last)
    first = next((b for b in boxes if b is not None), None)
    out = []
    for f, b in zip(frames, boxes, strict=True):
        out.append(_ellipse(f.shape[:2], b or first))
    return out


def _ellipse(shape: tuple[int, ...], box: Box | None) -> np.ndarray:
    h, w = shape[0], shape[1]
    small: np.ndarray = np.zeros((max(h // 4, 1), max(w // 4, 1)), np.float32)
    if box is not None:
        x0, y0, x1, y1 = (v / 4 for v in box)
        centre = (round((x0 + x1) / 2), round((y0 + y1) / 2))
        axes = (max(round((x1 - x0) * 0.5), 1), max(round((y1 - y0) * 0.62), 1))
        cv2.ellipse(small, centre, axes, 0, 0, 360, 1.0, -1)
        k = max(3, (round((x1 - x0) * 0.25) // 2) * 2 + 1)
        small = cv2.GaussianBlur(small, (k, k), 0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def inject(
    frames: Sequence[np.ndarray],
    times: Sequence[float],
    masks: Sequence[np.ndarray],
    seq: LightSequence,
    spec: Injection,
) -> list[np.ndarray]:
    """The frames as the camera would have seen them with the screen showing ``seq`` (BGR uint8)."""
    rng = np.random.default_rng(spec.seed)
    phases = rng.uniform(0, 2 * np.pi, 3)
    out = []
    for img, t, mask in zip(frames, times, masks, strict=True):
        colour = colour_at(seq, t, spec.lag_s)
        light = (_linear_rgb(colour) * spec.amplitude if colour else np.zeros(3)).astype(np.float32)
        weight = np.ones_like(mask) if spec.whole_frame else mask + spec.background_share * (1.0 - mask)
        # The white balance: a slow drift of its own, and a partial answer to the frame's mean change.
        awb = 1.0 + spec.awb_drift * np.sin(2 * np.pi * t / spec.awb_period_s + phases)
        awb = (awb / (1.0 + spec.awb_follow * float(weight.mean()) * light)).astype(np.float32)
        x = img.astype(np.float32) * (1.0 + weight[..., None] * light) * awb
        x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(spec.noise_sigma)
        out.append(np.clip(x, 0, 255).astype(np.uint8))
    return out


def read_clip(path: Path, seconds: float, fps: int = 30, side: int = 640) -> list[np.ndarray]:
    """The clip's first ``seconds`` at a constant ``fps`` (frame ``k`` shows time ``k / fps``: the latest frame
    decoded at or before it), BGR, the long side at most ``side``. Webcam clips often run slower than their stated
    rate; a reflection injected at the wrong times would not be the sequence's."""
    decoded: list[tuple[float, np.ndarray]] = []
    first: float | None = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is None:
                continue
            first = frame.time if first is None else first
            t = frame.time - first
            if t > seconds:
                break
            img: np.ndarray = frame.to_ndarray(format="bgr24")
            scale = min(1.0, side / max(img.shape[:2]))
            if scale < 1.0:
                size = (round(img.shape[1] * scale / 2) * 2, round(img.shape[0] * scale / 2) * 2)
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            decoded.append((t, img))
    if not decoded:
        return []
    times = np.array([t for t, _ in decoded])
    n = int(np.floor(times[-1] * fps)) + 1
    picks = np.searchsorted(times, np.arange(n) / fps + 1e-6, side="right") - 1
    return [decoded[int(i)][1] for i in picks]


def random_sequences(k: int, seed: int) -> list[LightSequence]:
    """``k`` sequences drawn as the service draws them, from a seeded generator."""
    rng = Random(seed)
    return [issue_light_sequence(rng) for _ in range(k)]
