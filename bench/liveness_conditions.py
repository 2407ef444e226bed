"""Seeded capture conditions and synthetic attacks for liveness evaluation.

The dev set has two real and two replay videos: far too few to say how the liveness stage behaves in a dim
living room, against a bright window, on a cheap phone's low bit rate, or against a photo waved in front of
the camera. This module turns one real clip (BGR frames + fps) into

* degraded **real** clips (``CONDITIONS``): low light, backlight, low resolution / heavy compression, VP8 WebM,
  a sideways-stored portrait phone clip, mirroring, soft focus, hand shake, glasses; and
* synthetic **attacks** (``ATTACKS``): a hand-held photo, a phone screen replay (still or video) and a print,

deterministically from a seed, and writes them as video files with PyAV. The synthetic attacks are *proxies*:
they test that the pipeline reacts to the cues real attacks carry (rigid planar motion, moiré, halftone, paper
texture, screen white point), not that it catches every real attack.

    python -m bench.liveness_conditions demo ../shared/data/spoof/videos/lestari15_real.mp4 --out /tmp/conds
    python -m bench.liveness_conditions generate --index presentations.csv --out DIR --seed 0 [--per-source 4]
"""

from __future__ import annotations

import argparse
import csv
import functools
import logging
import math
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
from av.video.stream import VideoStream

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
# The checker refuses < 1.5 s and > 20 s; keep well inside.
MIN_SECONDS = 2.0
MAX_SECONDS = 10.0
# Frames are processed at this long side at most: enough for 540x960 portrait output, and a 10 s clip stays
# under 400 MB in memory on a 2-core development machine.
WORK_SIDE = 960
CSV_COLUMNS = (
    "path",
    "label",
    "attack_type",
    "subject",
    "condition",
    "source",
    "light",
    "support",
    "split",
    "n_frames",
    "fps",
)
GENERATED_CSV = "presentations.generated.csv"

Box = tuple[float, float, float, float]
Point = tuple[float, float]
EyePair = tuple[Point, Point]
# (frame index, BGR frame) -> (image-left eye centre, image-right eye centre), or None when no face.
EyeFn = Callable[[int, np.ndarray], EyePair | None]


class NoFaceError(ValueError):
    """A condition that needs facial landmarks (glasses) found no face in the clip."""


@dataclass
class Clip:
    """A derived clip and how to encode it; ``rotation`` is the display rotation (counter-clockwise degrees)."""

    frames: list[np.ndarray]
    fps: float
    codec: str = "libx264"
    container: str = "mp4"
    options: dict[str, str] = field(default_factory=lambda: {"preset": "veryfast", "crf": "23"})
    rotation: int = 0
    label: str = "real"
    attack_type: str = "none"
    condition: str = "clean"

    @property
    def extension(self) -> str:
        return "webm" if self.container == "webm" else "mp4"


@dataclass
class Source:
    """The input clip plus optional face information; detections are computed at most once and cached."""

    frames: list[np.ndarray]
    fps: float
    face_box: Box | None = None
    eyes: EyeFn | None = None
    _eye_track: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.frames[0].shape[:2]
        return w, h

    def box(self) -> Box:
        """The caller's face box, or where a selfie's face usually is: centred, a little above the middle."""
        if self.face_box is not None:
            return self.face_box
        w, h = self.size
        s = min(w, h)
        cx, cy, bw, bh = w / 2, 0.45 * h, 0.45 * s, 0.6 * s
        return cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2

    def eye_track(self) -> np.ndarray:
        """Eye centres per frame, shape (n, 2, 2), gaps interpolated and jitter smoothed (cached)."""
        if self._eye_track is None:
            fn = self.eyes or _detector_eyes
            raw = np.full((len(self.frames), 2, 2), np.nan)
            for i, img in enumerate(self.frames):
                found = fn(i, img)
                if found is not None:
                    raw[i] = np.asarray(found, dtype=np.float64)
            self._eye_track = _fill_and_smooth(raw)
        return self._eye_track


Generator = Callable[[Source, np.random.Generator], Clip]


# -- small image helpers --------------------------------------------------------------------------------------


def _f32(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) * np.float32(1 / 255)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_LINEAR
    return cast(np.ndarray, cv2.resize(img, (w, h), interpolation=interp))


def _limit_side(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = min(1.0, side / max(w, h))
    return _resize(img, _even(w * scale), _even(h * scale)) if scale < 1 or w % 2 or h % 2 else img


# Gamma 2.2 tables: a lookup is several times faster than np.power on every pixel of every frame.
_TO_LINEAR = np.power(np.arange(256, dtype=np.float32) / 255, np.float32(2.2))
_GAMMA_STEPS = 4096
_TO_GAMMA = _u8(np.power(np.arange(_GAMMA_STEPS) / (_GAMMA_STEPS - 1), 1 / 2.2))


def _linear(img: np.ndarray) -> np.ndarray:
    """sRGB-ish 8-bit to linear light: exposure and noise act on photons, not on gamma-encoded values."""
    return cast(np.ndarray, _TO_LINEAR[img])


def _encode_gamma(lin: np.ndarray) -> np.ndarray:
    idx = np.clip(lin * np.float32(_GAMMA_STEPS - 1) + np.float32(0.5), 0, _GAMMA_STEPS - 1).astype(np.int32)
    return cast(np.ndarray, _TO_GAMMA[idx])


def _blur_small(img: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur computed at quarter resolution (bloom, out-of-focus rooms): same look, 16× less work."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(w // 4, 1), max(h // 4, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    return cast(np.ndarray, cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def _smooth_wave(n: int, fps: float, rng: np.random.Generator, amplitude: float, hz: tuple[float, float]) -> np.ndarray:
    """A smooth random signal in [-amplitude, amplitude]: a few sinusoids, like a hand's slow drift."""
    t = np.arange(n) / fps
    k = 3
    freqs = rng.uniform(hz[0], hz[1], k)
    phases = rng.uniform(0, 2 * np.pi, k)
    weights = rng.uniform(0.3, 1.0, k)
    wave = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    return cast(np.ndarray, wave / max(float(np.abs(wave).max()), 1e-6) * amplitude)


def _ellipse_mask(shape: tuple[int, int], centre: Point, axes: Point) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((xx - centre[0]) / max(axes[0], 1)) ** 2 + ((yy - centre[1]) / max(axes[1], 1)) ** 2
    return cast(np.ndarray, (d <= 1).astype(np.float32))


def _gauss(shape: tuple[int, ...], rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    """Gaussian noise, float32: OpenCV's generator seeded from ``rng`` is about 3× faster than numpy's per frame."""
    out = np.empty(shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(1 << 31)))
    # As one channel: with a scalar mean and sigma cv2.randn fills only the first of several channels.
    cv2.randn(out.reshape(shape[0], -1), np.zeros(1), np.full(1, sigma))
    return out


def _camera_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Mild sensor noise for attacks: a re-captured photo passes through a real camera too."""
    return _u8(_f32(img) + _gauss(img.shape, rng, sigma))


# -- real-capture conditions ----------------------------------------------------------------------------------


def low_light(src: Source, rng: np.random.Generator) -> Clip:
    """A dim living room: exposure ×0.15–0.3 in linear light, shot + read noise, chroma blotches, warm cast."""
    exposure = rng.uniform(0.15, 0.3)
    full_well = rng.uniform(150, 400)  # photo-electrons at white: few photons -> visible shot noise
    read_sigma = rng.uniform(0.002, 0.004)
    chroma_sigma = rng.uniform(0.008, 0.015)
    tint = np.array([rng.uniform(0.8, 0.9), 1.0, rng.uniform(1.05, 1.12)], dtype=np.float32)  # BGR: tungsten
    out = []
    for img in src.frames:
        lin = _linear(img) * np.float32(exposure) * tint
        shot = np.sqrt(np.maximum(lin, 0) / np.float32(full_well))
        lin = lin + _gauss(lin.shape, rng) * (shot + np.float32(read_sigma))
        h, w = img.shape[:2]
        small = _gauss((max(h // 6, 1), max(w // 6, 1), 3), rng)
        chroma = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * np.float32(chroma_sigma)
        out.append(_u8(_f32(_encode_gamma(lin)) + chroma))
    return Clip(out, src.fps)


def _subject_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """Soft mask of head + shoulders: a window behind a person leaves the whole silhouette dark, not only the face."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    # A little tighter than the head: the window's glare eats the hair's edge anyway, and a mask that spills
    # onto the wall would draw a dark halo.
    head = _ellipse_mask(shape, (cx, cy - 0.08 * bh), (0.56 * bw, 0.66 * bh))
    shoulders = _ellipse_mask(shape, (cx, y2 + 0.95 * bh), (1.7 * bw, 1.2 * bh))
    neck = _ellipse_mask(shape, (cx, y2 + 0.1 * bh), (0.4 * bw, 0.4 * bh))
    return cast(np.ndarray, np.maximum(np.maximum(head, shoulders), neck))


def _fill_holes(fg: np.ndarray) -> np.ndarray:
    """Background islands inside the person (a white print on a shirt) become foreground."""
    _, labels = cv2.connectedComponents((fg == 0).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    holes = (fg == 0) & ~np.isin(labels, border)
    return np.where(holes, 1, fg).astype(np.uint8)


def _silhouette(img: np.ndarray, box: Box, seed: int) -> np.ndarray:
    """Soft person mask: the head-and-shoulders prior, refined by GrabCut on one frame when that looks sane.

    GrabCut follows the real hair and shoulder outline; a failed cut (far smaller or larger than the prior)
    falls back to the prior. The face core is always kept.
    """
    h, w = img.shape[:2]
    prior = _subject_mask((h, w), box)
    scale = min(1.0, 320 / max(w, h))
    sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
    small_prior = cv2.resize(prior, (sw, sh), interpolation=cv2.INTER_NEAREST)
    near = cv2.dilate(small_prior, np.ones((max(3, sw // 10),) * 2, np.uint8))
    x1, y1, x2, y2 = (v * scale for v in box)
    core = _ellipse_mask((sh, sw), ((x1 + x2) / 2, (y1 + y2) / 2), (0.3 * (x2 - x1), 0.35 * (y2 - y1)))
    gc = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    gc[near == 0] = cv2.GC_BGD
    gc[small_prior > 0] = cv2.GC_PR_FGD
    gc[core > 0] = cv2.GC_FGD
    cv2.setRNGSeed(seed)  # GrabCut's k-means draws from OpenCV's global RNG
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    cv2.grabCut(small, gc, (0, 0, sw, sh), bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    cut = _fill_holes(((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)).astype(np.float32)
    ratio = float(cut.sum()) / max(float(small_prior.sum()), 1.0)
    mask = cv2.resize(cut, (w, h), interpolation=cv2.INTER_LINEAR) if 0.5 < ratio < 1.6 else prior
    return cast(np.ndarray, cv2.GaussianBlur(mask, (0, 0), 0.008 * max(w, h))[..., None])


def backlight(src: Source, rng: np.random.Generator) -> Clip:
    """A bright window behind the person: near-white background, face ×0.35–0.5, bloom over the silhouette edge."""
    face_gain = np.float32(rng.uniform(0.35, 0.5))
    bg_keep = np.float32(rng.uniform(0.06, 0.15))  # how much background detail survives the blow-out
    bloom = np.float32(rng.uniform(0.3, 0.6))
    glare = np.float32(rng.uniform(0.01, 0.03))
    w, h = src.size
    mask = _silhouette(src.frames[len(src.frames) // 2], src.box(), int(rng.integers(1 << 30)))
    sigma = 0.03 * max(w, h)
    out = []
    for img in src.frames:
        lin = _linear(img)
        window = 1 - (1 - lin) * bg_keep
        mixed = mask * lin * face_gain + (1 - mask) * window
        glow = _blur_small(np.maximum(mixed - np.float32(0.6), 0), sigma)
        out.append(_encode_gamma(mixed + bloom * glow + glare))
    return Clip(out, src.fps)


def _lowres(src: Source, short: int, crf: int) -> Clip:
    """Downscale to ``short`` px on the short side (never up) and compress hard, as cheap phones and networks do."""
    w, h = src.size
    scale = min(1.0, short / min(w, h))
    size = (_even(w * scale), _even(h * scale))
    frames = [_resize(f, *size) for f in src.frames]
    return Clip(frames, src.fps, options={"preset": "veryfast", "crf": str(crf)})


def lowres_360p(src: Source, rng: np.random.Generator) -> Clip:
    """360 p, H.264 crf 35–38: blocky, smeared texture (what a 2G/3G upload or an old phone gives)."""
    return _lowres(src, 360, int(rng.integers(35, 39)))


def lowres_480p(src: Source, rng: np.random.Generator) -> Clip:
    """480 p, H.264 crf 32."""
    return _lowres(src, 480, 32)


def vp8_webm(src: Source, rng: np.random.Generator) -> Clip:
    """VP8 in WebM at ~500 kbit/s: what browsers' MediaRecorder produces on the H5 pages."""
    options = {"b": "500k", "deadline": "good", "cpu-used": "4", "lag-in-frames": "0"}
    return Clip(list(src.frames), src.fps, codec="libvpx", container="webm", options=options)


def portrait_phone(src: Source, rng: np.random.Generator) -> Clip:
    """A phone's portrait recording: 9:16 around the face, stored sideways with a 90° display rotation.

    The reader applies ``np.rot90(image, k=rotation // 90)`` (counter-clockwise) to what is stored, so the
    stored frames are the upright ones turned clockwise.
    """
    w, h = src.size
    x1, _, x2, _ = src.box()
    crop_h = float(h)
    crop_w = crop_h * 9 / 16
    if crop_w > w:  # already narrower than 9:16
        crop_w, crop_h = float(w), w * 16 / 9
    left = int(np.clip((x1 + x2) / 2 - crop_w / 2, 0, w - crop_w))
    top = int((h - crop_h) / 2)
    out_w, out_h = (720, 1280) if crop_h >= 1000 else (540, 960)
    frames = []
    for img in src.frames:
        upright = _resize(img[top : top + int(crop_h), left : left + int(crop_w)], out_w, out_h)
        frames.append(np.ascontiguousarray(np.rot90(upright, k=-1)))
    return Clip(frames, src.fps, rotation=90)


def mirrored(src: Source, rng: np.random.Generator) -> Clip:
    """Horizontal flip: front cameras and some browsers deliver the mirror image."""
    return Clip([np.ascontiguousarray(f[:, ::-1]) for f in src.frames], src.fps)


def soft_focus(src: Source, rng: np.random.Generator) -> Clip:
    """Gaussian blur of sigma 1.5–2.5 px at 640 px (a smudged lens or a missed focus)."""
    w, h = src.size
    sigma = rng.uniform(1.5, 2.5) * max(w, h) / 640
    return Clip([cv2.GaussianBlur(f, (0, 0), sigma) for f in src.frames], src.fps)


def _random_walk(n: int, rng: np.random.Generator, amplitude: float, smooth_frames: float) -> np.ndarray:
    """A smoothed random walk (hand tremor and drift), zero-mean, scaled to ±``amplitude``."""
    steps = np.cumsum(rng.standard_normal(n + 40)).reshape(1, -1)
    smooth = np.asarray(cv2.GaussianBlur(steps, (0, 0), smooth_frames), dtype=np.float64).ravel()[20 : 20 + n]
    walk = smooth - smooth.mean()
    return cast(np.ndarray, walk / max(float(np.abs(walk).max()), 1e-6) * amplitude)


def _motion_blur(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Blur along the frame's motion (the exposure is about half the frame interval)."""
    length = math.hypot(dx, dy)
    if length < 1.0:
        return img
    k = math.ceil(length) | 1
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    ex, ey = dx / length * length / 2, dy / length * length / 2
    cv2.line(kernel, (round(c - ex), round(c - ey)), (round(c + ex), round(c + ey)), 1.0, 1, cv2.LINE_AA)
    kernel /= kernel.sum()
    return cast(np.ndarray, cv2.filter2D(img, -1, kernel))


def hand_shake(src: Source, rng: np.random.Generator) -> Clip:
    """A phone held at arm's length: smoothed random-walk shift (±2–4 % of width) and roll (±2°), motion blur.

    The frame is zoomed in just enough that the shifted image never shows an empty border, as the phone's
    own crop for stabilisation does.
    """
    w, h = src.size
    n = len(src.frames)
    amp = rng.uniform(0.02, 0.04) * w
    dx = _random_walk(n, rng, amp, 3.0)
    dy = _random_walk(n, rng, amp * 0.8, 3.0)
    rot = _random_walk(n, rng, rng.uniform(1.0, 2.0), 4.0)
    zoom = 1 + 2 * amp / w + 0.05
    out = []
    for i, img in enumerate(src.frames):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rot[i]), zoom)
        m[:, 2] += (dx[i], dy[i])
        warped = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        vx = dx[i] - dx[i - 1] if i else 0.0
        vy = dy[i] - dy[i - 1] if i else 0.0
        out.append(_motion_blur(warped, 0.5 * vx, 0.5 * vy))
    return Clip(out, src.fps)


# -- glasses (needs eye positions) -----------------------------------------------------------------------------


@functools.cache
def _matcher() -> Any:
    """The project's face detector, loaded once (only the glasses condition and the CLI need it)."""
    os.environ.setdefault("PENSION_CERT_ORT_THREADS", "1")
    if (REPO.parent / "shared/models").is_dir():  # the development layout, as bench/liveness.py
        os.environ.setdefault("PENSION_CERT_MODELS_DIR", str(REPO.parent / "shared/models"))
    from models.packs import load_pack
    from pipelines.face_match import FaceMatcher

    return FaceMatcher(load_pack())


def _detect(img: np.ndarray) -> Any:
    """The most prominent face (a models.detectors.Detection) in input coordinates, or None."""
    h, w = img.shape[:2]
    scale = min(1.0, 640 / max(w, h))
    small = _resize(img, round(w * scale), round(h * scale)) if scale < 1 else img
    dets = _matcher().detect(small)
    if not dets:
        return None
    d = dets[0]
    box = tuple(v / scale for v in d.bbox)
    return box, np.asarray(d.kps, dtype=np.float64) / scale


def _detector_eyes(index: int, img: np.ndarray) -> EyePair | None:
    found = _detect(img)
    if found is None:
        return None
    kps = found[1]
    return (float(kps[0, 0]), float(kps[0, 1])), (float(kps[1, 0]), float(kps[1, 1]))


def detect_face_box(frames: Sequence[np.ndarray], samples: int = 5) -> Box | None:
    """Median face box over a few evenly spaced frames with the project's detector; None when no face."""
    idx = np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int)
    boxes = [found[0] for i in idx if (found := _detect(frames[i])) is not None]
    if not boxes:
        return None
    med = np.median(np.asarray(boxes), axis=0)
    return float(med[0]), float(med[1]), float(med[2]), float(med[3])


def _fill_and_smooth(raw: np.ndarray) -> np.ndarray:
    """Interpolate frames without a face and smooth detector jitter (glasses must not wobble on the nose)."""
    ok = ~np.isnan(raw[:, 0, 0])
    if ok.mean() < 0.5:
        raise NoFaceError(f"eyes found in only {int(ok.sum())} of {len(raw)} frames")
    t = np.arange(len(raw))
    flat = raw.reshape(len(raw), -1)
    filled = np.stack([np.interp(t, t[ok], flat[ok, j]) for j in range(flat.shape[1])], axis=1)
    kernel = np.exp(-0.5 * (np.arange(-3, 4) / 1.2) ** 2)
    padded = np.pad(filled, ((3, 3), (0, 0)), mode="edge")
    smooth = np.stack(
        [np.convolve(padded[:, j], kernel / kernel.sum(), mode="valid") for j in range(filled.shape[1])], 1
    )
    return cast(np.ndarray, smooth.reshape(raw.shape))


@dataclass(frozen=True)
class _GlassesStyle:
    lens_w: float  # × inter-ocular distance
    lens_h: float
    rim: float
    radius: float  # corner radius, × lens height
    tint: float
    drop: float  # lens centre below the eye centre, × IOD
    color: tuple[int, int, int]


def _rounded_rect(w: float, h: float, r: float, steps: int = 6) -> np.ndarray:
    """Outline of a rounded rectangle centred on 0, as (k, 2) points."""
    r = min(r, w / 2, h / 2)
    corners = [
        (w / 2 - r, h / 2 - r, 0.0),
        (-w / 2 + r, h / 2 - r, 90.0),
        (-w / 2 + r, -h / 2 + r, 180.0),
        (w / 2 - r, -h / 2 + r, 270.0),
    ]
    pts = [
        (cx + r * math.cos(math.radians(a0 + 90 * s / steps)), cy + r * math.sin(math.radians(a0 + 90 * s / steps)))
        for cx, cy, a0 in corners
        for s in range(steps + 1)
    ]
    return np.asarray(pts, dtype=np.float64)


def _draw_glasses(img: np.ndarray, eyes: np.ndarray, style: _GlassesStyle) -> np.ndarray:
    (lx, ly), (rx, ry) = eyes
    iod = math.hypot(rx - lx, ry - ly)
    if iod < 8:
        return img
    ang = math.atan2(ry - ly, rx - lx)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    mid = np.array([(lx + rx) / 2, (ly + ry) / 2])
    lens = _rounded_rect(style.lens_w * iod, style.lens_h * iod, style.radius * style.lens_h * iod)
    # Local frame: x along the eye line (image-left to image-right), y downwards; lens centres at ±IOD/2.
    lenses = [lens + np.array([sx * iod / 2, style.drop * iod]) for sx in (-1, 1)]
    inner = style.lens_w * iod / 2
    bridge = np.array([(-iod / 2 + inner, -0.1 * iod), (0, -0.16 * iod), (iod / 2 - inner, -0.1 * iod)])
    outer = iod / 2 + inner
    temples = [np.array([(s * outer, -0.12 * iod), (s * (outer + 0.12 * iod), -0.14 * iod)]) for s in (-1, 1)]

    def to_img(p: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, np.round((p @ rot.T + mid) * 16).astype(np.int32))

    out = img.copy()
    fill = np.zeros(img.shape[:2], np.uint8)
    for poly in lenses:
        cv2.fillPoly(fill, [to_img(poly)], 255, cv2.LINE_AA, shift=4)
    tint = (fill.astype(np.float32) / 255 * style.tint)[..., None]
    out = (out.astype(np.float32) * (1 - tint) + 200 * tint * 0.25).astype(np.uint8)  # darker, slight glare
    thick = max(2, round(style.rim * iod))
    for poly in lenses:
        cv2.polylines(out, [to_img(poly)], True, style.color, thick, cv2.LINE_AA, shift=4)
    for line in [bridge, *temples]:
        cv2.polylines(out, [to_img(line)], False, style.color, max(2, thick - 1), cv2.LINE_AA, shift=4)
    return out


def glasses(src: Source, rng: np.random.Generator) -> Clip:
    """Dark-rimmed glasses over the eyes (older pensioners mostly wear them; rims hide the eye corners)."""
    track = src.eye_track()
    grey = int(rng.integers(5, 30))
    style = _GlassesStyle(
        lens_w=rng.uniform(0.74, 0.84),
        lens_h=rng.uniform(0.46, 0.58),
        rim=rng.uniform(0.045, 0.07),
        radius=rng.uniform(0.25, 0.5),
        tint=rng.uniform(0.05, 0.15),
        drop=rng.uniform(0.02, 0.08),
        color=(grey, grey, grey + int(rng.integers(0, 6))),
    )
    return Clip([_draw_glasses(f, track[i], style) for i, f in enumerate(src.frames)], src.fps)


# -- attacks -------------------------------------------------------------------------------------------------


def still_index(frames: Sequence[np.ndarray], box: Box) -> int:
    """The frame an attacker would print: sharp (Laplacian variance) and frontal (left-right symmetric face)."""
    x1, y1, x2, y2 = (round(v) for v in box)
    h, w = frames[0].shape[:2]
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    best, best_score = 0, -math.inf
    for i in range(0, len(frames), max(1, len(frames) // 40)):
        face = cv2.cvtColor(frames[i][y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(np.float32)
        if face.size == 0:
            return len(frames) // 2
        sharp = float(cv2.Laplacian(face, cv2.CV_32F).var())
        asym = float(np.abs(face - face[:, ::-1]).mean()) / (float(face.mean()) + 1.0)
        score = math.log(sharp + 1e-3) - 4.0 * asym
        if score > best_score:
            best, best_score = i, score
    return best


def _tilt(w: int, h: int, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Homography of a plane turned by yaw/pitch about its centre, seen by a camera with ~60° field of view."""
    f = 0.9 * max(w, h)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    ya, pa = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(ya), 0, math.sin(ya)], [0, 1, 0], [-math.sin(ya), 0, math.cos(ya)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pa), -math.sin(pa)], [0, math.sin(pa), math.cos(pa)]])
    return cast(np.ndarray, k @ ry @ rx @ np.linalg.inv(k))


def hand_motion(n: int, fps: float, w: int, h: int, rng: np.random.Generator, base_scale: float) -> list[np.ndarray]:
    """Homographies of a rigid plane held in a hand: slow drift, zoom 0.95–1.05, roll ±4°, slight tilt, tremor."""
    dx = _smooth_wave(n, fps, rng, rng.uniform(0.01, 0.025) * w, (0.1, 0.6))
    dy = _smooth_wave(n, fps, rng, rng.uniform(0.01, 0.025) * h, (0.1, 0.6))
    tremor_x = _smooth_wave(n, fps, rng, 0.003 * w, (4.0, 9.0))
    tremor_y = _smooth_wave(n, fps, rng, 0.003 * w, (4.0, 9.0))
    zoom = 1 + _smooth_wave(n, fps, rng, rng.uniform(0.02, 0.05), (0.1, 0.4))
    roll = _smooth_wave(n, fps, rng, rng.uniform(1.5, 4.0), (0.1, 0.5))
    yaw = _smooth_wave(n, fps, rng, rng.uniform(1.5, 4.0), (0.1, 0.4))
    pitch = _smooth_wave(n, fps, rng, rng.uniform(1.5, 4.0), (0.1, 0.4))
    out = []
    for i in range(n):
        a = cv2.getRotationMatrix2D((w / 2, h / 2), float(roll[i]), float(zoom[i] * base_scale))
        m = np.vstack([a, [0, 0, 1]])
        m[0, 2] += dx[i] + tremor_x[i]
        m[1, 2] += dy[i] + tremor_y[i]
        out.append(m @ _tilt(w, h, float(yaw[i]), float(pitch[i])))
    return out


def _still_plane(src: Source, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """The chosen still and the attack length: 3–5 s."""
    still = src.frames[still_index(src.frames, src.box())]
    return still, max(2, round(rng.uniform(3.0, 5.0) * src.fps))


def _cover_scale(hs: Sequence[np.ndarray], w: int, h: int) -> np.ndarray:
    """The smallest zoom about the frame centre after which every warped frame is covered by the picture."""
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64).T
    for s in np.arange(1.0, 1.6, 0.01):
        z = np.array([[s, 0, (1 - s) * w / 2], [0, s, (1 - s) * h / 2], [0, 0, 1]])
        inv_z = np.linalg.inv(z)
        ok = True
        for hm in hs:
            p = np.linalg.inv(hm) @ inv_z @ corners
            x, y = p[0] / p[2], p[1] / p[2]
            if x.min() < 0 or y.min() < 0 or x.max() > w - 1 or y.max() > h - 1:
                ok = False
                break
        if ok:
            return z
    return z


def _film_plane(plane: np.ndarray, n: int, fps: float, rng: np.random.Generator, sigma: float) -> list[np.ndarray]:
    """Film a flat picture that fills the view, held by hand: warp, exposure flicker, camera blur and noise.

    The picture is scaled up just enough that its edges stay out of view all along (a photo held close to the
    lens).
    """
    h, w = plane.shape[:2]
    hs = hand_motion(n, fps, w, h, rng, base_scale=1.0)
    zoom = _cover_scale(hs, w, h)
    hs = [zoom @ hm for hm in hs]
    flicker = 1 + _smooth_wave(n, fps, rng, rng.uniform(0.01, 0.04), (0.5, 3.0))
    out = []
    for i, hm in enumerate(hs):
        warped = cv2.warpPerspective(plane, hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped = cv2.GaussianBlur(warped, (0, 0), 0.6)
        out.append(_camera_noise(_u8(_f32(warped) * np.float32(flicker[i])), rng, sigma))
    return out


def photo_hand(src: Source, rng: np.random.Generator) -> Clip:
    """One sharp frontal still held up in a hand for 3–5 s: the whole picture moves as one rigid plane."""
    still, n = _still_plane(src, rng)
    frames = _film_plane(still, n, src.fps, rng, sigma=0.01)
    return Clip(frames, src.fps, label="spoof", attack_type="photo_hand")


def _gratings(h: int, w: int, rng: np.random.Generator) -> Callable[[float], np.ndarray]:
    """Moiré: the product of two fine, slightly rotated sinusoidal gratings (screen pixels × camera sensor).

    Their product holds the difference frequency, the coarse interference bands a camera sees on a screen;
    ``phase`` drifts them between frames as the hand moves.
    """
    f1 = rng.uniform(0.28, 0.42)
    f2 = f1 * (1 + rng.uniform(0.03, 0.08))
    a1 = rng.uniform(0, np.pi)
    a2 = a1 + math.radians(rng.uniform(1.5, 5.0))
    amp = np.float32(rng.uniform(0.25, 0.4))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u1 = (xx * math.cos(a1) + yy * math.sin(a1)) * np.float32(2 * np.pi * f1)
    # The B, G, R sub-pixels sit a third of a pixel apart: each channel's grating is shifted, so the bands are
    # coloured, as on real re-captures.
    g1 = np.stack([0.5 + 0.5 * np.cos(u1 + np.float32(2 * np.pi * c / 3)) for c in range(3)], axis=2)
    u2 = (xx * math.cos(a2) + yy * math.sin(a2)) * np.float32(2 * np.pi * f2)
    cos2, sin2 = np.cos(u2)[..., None], np.sin(u2)[..., None]

    def pattern(phase: float) -> np.ndarray:
        g2 = 0.5 + 0.5 * (cos2 * np.float32(math.cos(phase)) - sin2 * np.float32(math.sin(phase)))
        return cast(np.ndarray, 1 - amp + amp * 2 * g1 * g2)

    return pattern


@dataclass(frozen=True)
class _Screen:
    gamma: float
    contrast: float
    black: float
    white: np.ndarray  # BGR gains: a cool 7000–9000 K white point
    scale: float  # screen size in the camera view
    bezel: float  # × screen width
    glare: float


def _screen_canvas(content: np.ndarray, screen: _Screen, moire: np.ndarray, reflection: np.ndarray) -> np.ndarray:
    """The picture as a screen shows it (gamma, contrast, raised black, cool white, moiré, reflection), in a bezel."""
    x = np.power(_f32(content), np.float32(screen.gamma))
    x = np.float32(screen.black) + np.float32(screen.contrast) * x * screen.white
    x = x * moire + reflection
    h, w = content.shape[:2]
    b = max(4, round(screen.bezel * w))
    canvas = np.full((h + 2 * b, w + 2 * b, 3), 0.04, np.float32)
    cv2.rectangle(canvas, (1, 1), (w + 2 * b - 2, h + 2 * b - 2), (0.16, 0.16, 0.17), 2, cv2.LINE_AA)
    canvas[b : b + h, b : b + w] = x
    return canvas


def _phone_replay(src: Source, rng: np.random.Generator, contents: Sequence[np.ndarray], attack_type: str) -> Clip:
    """Show ``contents`` on a phone screen filmed by another camera held in a hand."""
    w, h = src.size
    screen = _Screen(
        gamma=rng.uniform(0.8, 1.25),
        contrast=rng.uniform(0.75, 0.92),
        black=rng.uniform(0.03, 0.08),
        white=np.array([1.0, rng.uniform(0.9, 0.97), rng.uniform(0.78, 0.88)], np.float32),
        scale=rng.uniform(0.8, 0.9),
        bezel=rng.uniform(0.03, 0.06),
        glare=rng.uniform(0.06, 0.14),
    )
    pattern = _gratings(h, w, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang, pos = rng.uniform(0, np.pi), rng.uniform(0.3, 0.7)
    band = (xx * math.cos(ang) + yy * math.sin(ang)) / max(w, h) - pos
    reflection = (np.exp(-((band / 0.12) ** 2)) * np.float32(screen.glare))[..., None]
    # The room behind the phone: the same scene far out of focus and dimmer.
    room = _blur_small(_f32(contents[0]), 0.05 * max(w, h)) * np.float32(0.5)
    n = len(contents)
    hs = hand_motion(n, src.fps, w, h, rng, base_scale=1.0)
    phase = np.cumsum(rng.uniform(0.05, 0.3, n))
    out = []
    for i, content in enumerate(contents):
        canvas = _screen_canvas(content, screen, pattern(float(phase[i])), reflection)
        ch, cw = canvas.shape[:2]
        s = screen.scale * min(w / cw, h / ch)
        place = np.array([[s, 0, (w - s * cw) / 2], [0, s, (h - s * ch) / 2], [0, 0, 1]])
        m = hs[i] @ place
        warped = cv2.warpPerspective(canvas, m, (w, h), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpPerspective(np.ones((ch, cw), np.float32), m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        frame = cv2.GaussianBlur(alpha * warped + (1 - alpha) * room, (0, 0), 0.7)
        out.append(_camera_noise(_u8(frame), rng, 0.012))
    return Clip(out, src.fps, label="spoof", attack_type=attack_type)


def phone_screen(src: Source, rng: np.random.Generator) -> Clip:
    """The sharp frontal still shown on a phone screen in front of the camera for 3–5 s."""
    still, n = _still_plane(src, rng)
    return _phone_replay(src, rng, [still] * n, "replay_phone")


def phone_screen_video(src: Source, rng: np.random.Generator) -> Clip:
    """The clip itself replayed on a phone screen (a recorded video of the pensioner)."""
    return _phone_replay(src, rng, src.frames, "replay_phone_video")


def _printed(still: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo printed on paper: compressed range, desaturated, halftone dots, paper noise and fibres."""
    h, w = still.shape[:2]
    x = _f32(still)
    grey = x.mean(axis=2, keepdims=True)
    x = x + np.float32(rng.uniform(0.15, 0.35)) * (grey - x)
    x = np.float32(rng.uniform(0.06, 0.12)) + np.float32(rng.uniform(0.72, 0.85)) * x
    period = rng.uniform(2.6, 4.0)
    ang = rng.uniform(math.radians(15), math.radians(75))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx * math.cos(ang) + yy * math.sin(ang)) * np.float32(2 * np.pi / period)
    v = (-xx * math.sin(ang) + yy * math.cos(ang)) * np.float32(2 * np.pi / period)
    dots = (np.cos(u) * np.cos(v))[..., None]
    ink = 1 - x
    x = x + np.float32(rng.uniform(0.25, 0.4)) * ink * x * dots
    fine = rng.standard_normal((h, w), dtype=np.float32) * np.float32(0.02)
    fibre = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), sigmaX=6.0, sigmaY=1.0)
    fibre = cv2.warpAffine(
        fibre, cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(0, 180), 1.0), (w, h), borderMode=cv2.BORDER_REFLECT
    )
    texture = fine + fibre / np.float32(max(float(fibre.std()), 1e-6)) * np.float32(0.02)
    return cast(np.ndarray, x * (1 + texture[..., None]))


def printed_photo(src: Source, rng: np.random.Generator) -> Clip:
    """A printed photo held by hand for 3–5 s, lit by a room light that falls off across the sheet."""
    still, n = _still_plane(src, rng)
    paper = _u8(_printed(still, rng))
    w, h = src.size
    gx, gy = rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = (1 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5))[..., None].astype(np.float32)
    frames = [_u8(_f32(f) * shade) for f in _film_plane(paper, n, src.fps, rng, sigma=0.012)]
    return Clip(frames, src.fps, label="spoof", attack_type="print")


CONDITIONS: dict[str, Generator] = {
    "low_light": low_light,
    "backlight": backlight,
    "lowres_360p": lowres_360p,
    "lowres_480p": lowres_480p,
    "vp8_webm": vp8_webm,
    "portrait_phone": portrait_phone,
    "mirrored": mirrored,
    "soft_focus": soft_focus,
    "hand_shake": hand_shake,
    "glasses": glasses,
}
ATTACKS: dict[str, Generator] = {
    "photo_hand": photo_hand,
    "phone_screen": phone_screen,
    "phone_screen_video": phone_screen_video,
    "print": printed_photo,
}


# -- API ---------------------------------------------------------------------------------------------------------


def condition_rng(condition: str, seed: int, key: str = "") -> np.random.Generator:
    """One independent stream per (seed, condition, source): adding a condition never changes the others."""
    return np.random.default_rng([seed, zlib.crc32(condition.encode()), zlib.crc32(key.encode())])


def apply(
    condition: str,
    frames: list[np.ndarray],
    fps: float,
    seed: int,
    face_box: Box | None = None,
    eyes: EyeFn | None = None,
    key: str = "",
) -> Clip:
    """Derive one clip from a real clip (at most ``MAX_SECONDS`` of it is used); same inputs + seed, same clip.

    ``face_box`` (x1, y1, x2, y2) places the backlight silhouette, the portrait crop and the still's face; without
    it a centred selfie framing is assumed. ``eyes`` gives eye centres per frame for ``glasses``; without it the
    project's face detector is run. ``key`` (e.g. the source path) varies the draw between sources.
    """
    fn = CONDITIONS.get(condition) or ATTACKS.get(condition)
    if fn is None:
        raise ValueError(f"unknown condition {condition!r}; known: {sorted(CONDITIONS) + sorted(ATTACKS)}")
    if not frames:
        raise ValueError("no frames")
    frames = [_limit_side(f, WORK_SIDE) for f in frames[: max(1, int(MAX_SECONDS * fps))]]
    clip = fn(Source(frames, fps, face_box, eyes), condition_rng(condition, seed, key))
    clip.condition = condition
    return clip


def write(clip: Clip, path: Path) -> Path:
    """Encode with PyAV, bit-exact (no random WebM segment id, fixed thread count) so a seed gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=clip.container, options={"fflags": "+bitexact"}) as out:
        stream = cast(VideoStream, out.add_stream(clip.codec, rate=Fraction(clip.fps).limit_denominator(1001)))
        h, w = clip.frames[0].shape[:2]
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.options = dict(clip.options)
        stream.codec_context.thread_count = 2 if clip.codec == "libx264" else 1
        if clip.rotation:
            stream.set_display_rotation(clip.rotation)
        for img in clip.frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: h - h % 2, : w - w % 2]), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def read_video(path: Path, max_seconds: float = MAX_SECONDS, side: int = WORK_SIDE) -> tuple[list[np.ndarray], float]:
    """BGR frames as displayed (display rotation applied), long side ≤ ``side``, and the frame rate."""
    from pipelines.liveness.video import rotation_degrees

    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        t0: float | None = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t0 = frame.time if t0 is None else t0
            if frame.time - t0 >= max_seconds:
                break
            img = _limit_side(frame.to_ndarray(format="bgr24"), side)
            k = rotation_degrees(frame.rotation) // 90
            frames.append(np.ascontiguousarray(np.rot90(img, k=k)) if k else img)
    return frames, fps


# -- batch generation -------------------------------------------------------------------------------------------


def _derived_row(row: dict[str, str], clip: Clip, rel: str, seed: int) -> dict[str, str]:
    """The CSV row of a derived clip: the source's subject and split (folds stay subject-disjoint)."""
    out = {c: row.get(c, "") for c in CSV_COLUMNS}
    light = {"low_light": "low", "backlight": "backlit"}.get(clip.condition)
    out.update(
        path=rel,
        label=clip.label,
        condition=clip.condition,
        n_frames=str(len(clip.frames)),
        fps=f"{clip.fps:g}",
        source=f"generated:{clip.condition}:seed{seed}:{row['path']}",
        attack_type=clip.attack_type if clip.label == "spoof" else row.get("attack_type", "none"),
        light=light or row.get("light", ""),
    )
    return out


def _merge_csv(path: Path, new_rows: list[dict[str, str]]) -> None:
    """Append rows, replacing earlier rows for the same file (a re-run with the same seed rewrites them)."""
    rows: list[dict[str, str]] = []
    if path.exists():
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    replaced = {r["path"] for r in new_rows}
    rows = [r for r in rows if r.get("path") not in replaced] + new_rows
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _chosen(names: Sequence[str], per_source: int | None, rng: np.random.Generator) -> list[str]:
    if per_source is None or per_source >= len(names):
        return list(names)
    picked = rng.choice(len(names), size=per_source, replace=False)
    return [names[i] for i in sorted(picked)]


def _generate_source(
    row: dict[str, str], root: Path, out_dir: Path, seed: int, names: list[str]
) -> list[dict[str, str]]:
    frames, fps = read_video(root / row["path"])
    if len(frames) < MIN_SECONDS * fps:
        log.warning("skipping %s: shorter than %.1f s", row["path"], MIN_SECONDS)
        return []
    box = detect_face_box(frames)
    stem = Path(row["path"]).with_suffix("").as_posix().replace("/", "__")
    rows = []
    for name in names:
        try:
            clip = apply(name, frames, fps, seed, face_box=box, key=row["path"])
        except NoFaceError as exc:
            log.warning("skipping %s for %s: %s", name, row["path"], exc)
            continue
        rel = f"{name}/{stem}.seed{seed}.{clip.extension}"
        write(clip, out_dir / rel)
        rows.append(_derived_row(row, clip, rel, seed))
    return rows


def generate(index_csv: Path, out_dir: Path, seed: int, conditions: Sequence[str], per_source: int | None) -> Path:
    """Derive clips from every real, clean row of a presentations CSV; rows go to ``out_dir/GENERATED_CSV``.

    Paths in the index are relative to its folder; the generated paths are relative to ``out_dir``. With
    ``per_source`` each source gets that many conditions, drawn from the seed and the source path.
    """
    unknown = [c for c in conditions if c not in CONDITIONS and c not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown conditions: {unknown}")
    with index_csv.open(newline="") as f:
        sources = [r for r in csv.DictReader(f) if r.get("label") == "real" and r.get("condition") == "clean"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / GENERATED_CSV
    for row in sources:
        names = _chosen(list(conditions), per_source, condition_rng("choose", seed, row["path"]))
        rows = _generate_source(row, index_csv.parent, out_dir, seed, names)
        _merge_csv(target, rows)  # after every source: an interrupted run keeps what it wrote
        log.info("%s: %d clips", row["path"], len(rows))
    return target


# -- demo and contact sheet -----------------------------------------------------------------------------------------


def displayed_frame(path: Path, at: float = 0.5) -> np.ndarray:
    """The frame at ``at`` of a written video, decoded and turned upright as the liveness reader shows it."""
    from pipelines.liveness.video import rotation_degrees

    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    frame = frames[min(len(frames) - 1, int(at * len(frames)))]
    img: np.ndarray = frame.to_ndarray(format="bgr24")
    k = rotation_degrees(frame.rotation) // 90
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img


def contact_sheet(tiles: Sequence[tuple[str, np.ndarray]], cell: int = 300, columns: int = 5) -> np.ndarray:
    """One labelled, letterboxed thumbnail per condition, for a person to look over."""
    rows = math.ceil(len(tiles) / columns)
    label_h = 22
    sheet = np.full((rows * (cell + label_h), columns * cell, 3), 255, np.uint8)
    for i, (name, img) in enumerate(tiles):
        r, c = divmod(i, columns)
        h, w = img.shape[:2]
        s = min((cell - 4) / w, (cell - 4) / h)
        thumb = _resize(img, max(1, round(w * s)), max(1, round(h * s)))
        y0 = r * (cell + label_h) + label_h + (cell - thumb.shape[0]) // 2
        x0 = c * cell + (cell - thumb.shape[1]) // 2
        sheet[y0 : y0 + thumb.shape[0], x0 : x0 + thumb.shape[1]] = thumb
        cv2.putText(
            sheet,
            name,
            (c * cell + 6, r * (cell + label_h) + 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return sheet


def demo(video: Path, out_dir: Path, seed: int = 0, names: Sequence[str] | None = None) -> Path:
    """One clip per condition from ``video`` plus ``contact_sheet.png`` (the middle frame of each, as decoded)."""
    frames, fps = read_video(video)
    box = detect_face_box(frames)
    tiles = [("clean", frames[len(frames) // 2])]
    for name in list(names or [*CONDITIONS, *ATTACKS]):
        try:
            clip = apply(name, frames, fps, seed, face_box=box, key=str(video.name))
        except NoFaceError as exc:
            log.warning("skipping %s: %s", name, exc)
            continue
        path = write(clip, out_dir / f"{name}.{clip.extension}")
        tiles.append((name, displayed_frame(path)))
    sheet_path = out_dir / "contact_sheet.png"
    cv2.imwrite(str(sheet_path), contact_sheet(tiles))
    return sheet_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.liveness_conditions", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="derive clips from the real, clean rows of a presentations CSV")
    gen.add_argument("--index", type=Path, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--conditions", default=",".join([*CONDITIONS, *ATTACKS]))
    gen.add_argument("--per-source", type=int, default=None)
    dem = sub.add_parser("demo", help="one clip per condition from one video, plus a contact sheet")
    dem.add_argument("video", type=Path)
    dem.add_argument("--out", type=Path, required=True)
    dem.add_argument("--seed", type=int, default=0)
    dem.add_argument("--conditions", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "generate":
        names = [c for c in args.conditions.split(",") if c]
        print(generate(args.index, args.out, args.seed, names, args.per_source))
    else:
        chosen = [c for c in args.conditions.split(",") if c] if args.conditions else None
        print(demo(args.video, args.out, args.seed, chosen))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
