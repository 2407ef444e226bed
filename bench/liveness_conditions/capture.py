"""Degraded *real* captures: low light, backlight, low resolution, VP8, portrait phone, mirror, blur, shake, glasses."""

from __future__ import annotations

import math
from typing import cast

import cv2
import numpy as np

from bench.liveness_conditions.clip import Clip, Source
from bench.liveness_conditions.faces import GlassesStyle, draw_glasses
from bench.liveness_conditions.imaging import (
    Box,
    blur_small,
    ellipse_mask,
    encode_gamma,
    even,
    f32,
    gauss,
    linear,
    resize,
    u8,
)


def low_light(src: Source, rng: np.random.Generator) -> Clip:
    """A dim living room: exposure ×0.15–0.3 in linear light, shot + read noise, chroma blotches, warm cast."""
    exposure = rng.uniform(0.15, 0.3)
    full_well = rng.uniform(150, 400)  # photo-electrons at white: few photons -> visible shot noise
    read_sigma = rng.uniform(0.002, 0.004)
    chroma_sigma = rng.uniform(0.008, 0.015)
    tint = np.array([rng.uniform(0.8, 0.9), 1.0, rng.uniform(1.05, 1.12)], dtype=np.float32)  # BGR: tungsten
    out = []
    for img in src.frames:
        lin = linear(img) * np.float32(exposure) * tint
        shot = np.sqrt(np.maximum(lin, 0) / np.float32(full_well))
        lin = lin + gauss(lin.shape, rng) * (shot + np.float32(read_sigma))
        h, w = img.shape[:2]
        small = gauss((max(h // 6, 1), max(w // 6, 1), 3), rng)
        chroma = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * np.float32(chroma_sigma)
        out.append(u8(f32(encode_gamma(lin)) + chroma))
    return Clip(out, src.fps)


def _subject_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """Soft mask of head + shoulders: a window behind a person leaves the whole silhouette dark, not only the face."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    # A little tighter than the head: the window's glare eats the hair's edge anyway, and a mask that spills
    # onto the wall would draw a dark halo.
    head = ellipse_mask(shape, (cx, cy - 0.08 * bh), (0.56 * bw, 0.66 * bh))
    shoulders = ellipse_mask(shape, (cx, y2 + 0.95 * bh), (1.7 * bw, 1.2 * bh))
    neck = ellipse_mask(shape, (cx, y2 + 0.1 * bh), (0.4 * bw, 0.4 * bh))
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
    core = ellipse_mask((sh, sw), ((x1 + x2) / 2, (y1 + y2) / 2), (0.3 * (x2 - x1), 0.35 * (y2 - y1)))
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
        lin = linear(img)
        window = 1 - (1 - lin) * bg_keep
        mixed = mask * lin * face_gain + (1 - mask) * window
        glow = blur_small(np.maximum(mixed - np.float32(0.6), 0), sigma)
        out.append(encode_gamma(mixed + bloom * glow + glare))
    return Clip(out, src.fps)


def _lowres(src: Source, short: int, crf: int) -> Clip:
    """Downscale to ``short`` px on the short side (never up) and compress hard, as cheap phones and networks do."""
    w, h = src.size
    scale = min(1.0, short / min(w, h))
    size = (even(w * scale), even(h * scale))
    frames = [resize(f, *size) for f in src.frames]
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
        upright = resize(img[top : top + int(crop_h), left : left + int(crop_w)], out_w, out_h)
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


def glasses(src: Source, rng: np.random.Generator) -> Clip:
    """Dark-rimmed glasses over the eyes (older pensioners mostly wear them; rims hide the eye corners)."""
    track = src.eye_track()
    grey = int(rng.integers(5, 30))
    style = GlassesStyle(
        lens_w=rng.uniform(0.74, 0.84),
        lens_h=rng.uniform(0.46, 0.58),
        rim=rng.uniform(0.045, 0.07),
        radius=rng.uniform(0.25, 0.5),
        tint=rng.uniform(0.05, 0.15),
        drop=rng.uniform(0.02, 0.08),
        color=(grey, grey, grey + int(rng.integers(0, 6))),
    )
    return Clip([draw_glasses(f, track[i], style) for i, f in enumerate(src.frames)], src.fps)
