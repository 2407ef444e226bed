"""Synthetic presentation attacks: a hand-held photo, a phone screen replay (still or video), a monitor replay of
the video, and a print (the cut photo worn over the face is in ``cut_photo.py``).

They are *proxies*: they carry the cues real attacks carry (rigid planar motion, moiré, halftone, paper texture,
screen white point), not every detail of a real attack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from bench.liveness_conditions.clip import Clip, Source
from bench.liveness_conditions.imaging import Box, blur_small, camera_noise, f32, smooth_wave, u8


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


def hand_motion(
    n: int, fps: float, w: int, h: int, rng: np.random.Generator, base_scale: float, amount: float = 1.0
) -> list[np.ndarray]:
    """Homographies of a rigid plane held in a hand: slow drift, zoom 0.95–1.05, roll ±4°, slight tilt, tremor.

    ``amount`` scales every excursion (0.25: a phone propped on a desk in front of a monitor)."""
    dx = smooth_wave(n, fps, rng, rng.uniform(0.01, 0.025) * w * amount, (0.1, 0.6))
    dy = smooth_wave(n, fps, rng, rng.uniform(0.01, 0.025) * h * amount, (0.1, 0.6))
    tremor_x = smooth_wave(n, fps, rng, 0.003 * w * amount, (4.0, 9.0))
    tremor_y = smooth_wave(n, fps, rng, 0.003 * w * amount, (4.0, 9.0))
    zoom = 1 + smooth_wave(n, fps, rng, rng.uniform(0.02, 0.05) * amount, (0.1, 0.4))
    roll = smooth_wave(n, fps, rng, rng.uniform(1.5, 4.0) * amount, (0.1, 0.5))
    yaw = smooth_wave(n, fps, rng, rng.uniform(1.5, 4.0) * amount, (0.1, 0.4))
    pitch = smooth_wave(n, fps, rng, rng.uniform(1.5, 4.0) * amount, (0.1, 0.4))
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
    return film_planes([plane] * n, fps, rng, sigma)


def film_planes(planes: Sequence[np.ndarray], fps: float, rng: np.random.Generator, sigma: float) -> list[np.ndarray]:
    """``_film_plane`` for a picture that changes from frame to frame (a cut photo with live eyes behind it)."""
    n = len(planes)
    h, w = planes[0].shape[:2]
    hs = hand_motion(n, fps, w, h, rng, base_scale=1.0)
    zoom = _cover_scale(hs, w, h)
    hs = [zoom @ hm for hm in hs]
    flicker = 1 + smooth_wave(n, fps, rng, rng.uniform(0.01, 0.04), (0.5, 3.0))
    out = []
    for i, hm in enumerate(hs):
        warped = cv2.warpPerspective(planes[i], hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped = cv2.GaussianBlur(warped, (0, 0), 0.6)
        out.append(camera_noise(u8(f32(warped) * np.float32(flicker[i])), rng, sigma))
    return out


def photo_hand(src: Source, rng: np.random.Generator) -> Clip:
    """One sharp frontal still held up in a hand for 3–5 s: the whole picture moves as one rigid plane."""
    still, n = _still_plane(src, rng)
    frames = _film_plane(still, n, src.fps, rng, sigma=0.01)
    return Clip(frames, src.fps, label="spoof", attack_type="photo_hand")


def _gratings(
    h: int, w: int, rng: np.random.Generator, amp_range: tuple[float, float] = (0.25, 0.4)
) -> Callable[[float], np.ndarray]:
    """Moiré: the product of two fine, slightly rotated sinusoidal gratings (screen pixels × camera sensor).

    Their product holds the difference frequency, the coarse interference bands a camera sees on a screen;
    ``phase`` drifts them between frames as the hand moves.
    """
    f1 = rng.uniform(0.28, 0.42)
    f2 = f1 * (1 + rng.uniform(0.03, 0.08))
    a1 = rng.uniform(0, np.pi)
    a2 = a1 + math.radians(rng.uniform(1.5, 5.0))
    amp = np.float32(rng.uniform(*amp_range))
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
    x = np.power(f32(content), np.float32(screen.gamma))
    x = np.float32(screen.black) + np.float32(screen.contrast) * x * screen.white
    x = x * moire + reflection
    h, w = content.shape[:2]
    b = max(4, round(screen.bezel * w))
    canvas = np.full((h + 2 * b, w + 2 * b, 3), 0.04, np.float32)
    cv2.rectangle(canvas, (1, 1), (w + 2 * b - 2, h + 2 * b - 2), (0.16, 0.16, 0.17), 2, cv2.LINE_AA)
    canvas[b : b + h, b : b + w] = x
    return canvas


def _phone(rng: np.random.Generator) -> _Screen:
    """A phone held in front of the camera: cool white, visible bezel, strong glare."""
    return _Screen(
        gamma=rng.uniform(0.8, 1.25),
        contrast=rng.uniform(0.75, 0.92),
        black=rng.uniform(0.03, 0.08),
        white=np.array([1.0, rng.uniform(0.9, 0.97), rng.uniform(0.78, 0.88)], np.float32),
        scale=rng.uniform(0.8, 0.9),
        bezel=rng.uniform(0.03, 0.06),
        glare=rng.uniform(0.06, 0.14),
    )


def _monitor(rng: np.random.Generator) -> _Screen:
    """A desktop monitor filling the view (its thin bezel at the edges or beyond them): a warmer white point
    (6,500 K), a matte anti-glare surface, coarser pixels than a phone."""
    return _Screen(
        gamma=rng.uniform(0.9, 1.15),
        contrast=rng.uniform(0.8, 0.95),
        black=rng.uniform(0.02, 0.06),
        white=np.array([1.0, rng.uniform(0.95, 0.99), rng.uniform(0.88, 0.96)], np.float32),
        scale=rng.uniform(0.98, 1.12),
        bezel=rng.uniform(0.01, 0.02),
        glare=rng.uniform(0.02, 0.06),
    )


@dataclass(frozen=True)
class _Rig:
    """How the replay is filmed: the screen, the moiré strength and how much the filming camera moves."""

    screen: Callable[[np.random.Generator], _Screen]
    moire: tuple[float, float] = (0.25, 0.4)
    motion: float = 1.0


PHONE = _Rig(_phone)
MONITOR = _Rig(_monitor, moire=(0.12, 0.28), motion=0.25)


def _phone_replay(
    src: Source, rng: np.random.Generator, contents: Sequence[np.ndarray], attack_type: str, rig: _Rig = PHONE
) -> Clip:
    """Show ``contents`` on a screen (a phone by default) filmed by another camera."""
    w, h = src.size
    screen = rig.screen(rng)
    pattern = _gratings(h, w, rng, rig.moire)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang, pos = rng.uniform(0, np.pi), rng.uniform(0.3, 0.7)
    band = (xx * math.cos(ang) + yy * math.sin(ang)) / max(w, h) - pos
    reflection = (np.exp(-((band / 0.12) ** 2)) * np.float32(screen.glare))[..., None]
    # The room behind the screen: the same scene far out of focus and dimmer.
    room = blur_small(f32(contents[0]), 0.05 * max(w, h)) * np.float32(0.5)
    n = len(contents)
    hs = hand_motion(n, src.fps, w, h, rng, base_scale=1.0, amount=rig.motion)
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
        out.append(camera_noise(u8(frame), rng, 0.012))
    return Clip(out, src.fps, label="spoof", attack_type=attack_type)


def phone_screen(src: Source, rng: np.random.Generator) -> Clip:
    """The sharp frontal still shown on a phone screen in front of the camera for 3–5 s."""
    still, n = _still_plane(src, rng)
    return _phone_replay(src, rng, [still] * n, "replay_phone")


def phone_screen_video(src: Source, rng: np.random.Generator) -> Clip:
    """The clip itself replayed on a phone screen (a recorded video of the pensioner)."""
    return _phone_replay(src, rng, src.frames, "replay_phone_video")


def monitor_screen_video(src: Source, rng: np.random.Generator) -> Clip:
    """The clip replayed full-screen on a desktop monitor, filmed by a phone propped in front of it."""
    return _phone_replay(src, rng, src.frames, "replay_monitor_video", MONITOR)


def printed(still: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo printed on paper: compressed range, desaturated, halftone dots, paper noise and fibres."""
    h, w = still.shape[:2]
    x = f32(still)
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
    paper = u8(printed(still, rng))
    w, h = src.size
    gx, gy = rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = (1 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5))[..., None].astype(np.float32)
    frames = [u8(f32(f) * shade) for f in _film_plane(paper, n, src.fps, rng, sigma=0.012)]
    return Clip(frames, src.fps, label="spoof", attack_type="print")
