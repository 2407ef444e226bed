"""Small image helpers shared by the conditions and attacks: 8-bit/float conversion, resizing, gamma, noise."""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np

Box = tuple[float, float, float, float]
Point = tuple[float, float]


def f32(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) * np.float32(1 / 255)


def u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_LINEAR
    return cast(np.ndarray, cv2.resize(img, (w, h), interpolation=interp))


def limit_side(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = min(1.0, side / max(w, h))
    return resize(img, even(w * scale), even(h * scale)) if scale < 1 or w % 2 or h % 2 else img


# Gamma 2.2 tables: a lookup is several times faster than np.power on every pixel of every frame.
_TO_LINEAR = np.power(np.arange(256, dtype=np.float32) / 255, np.float32(2.2))
_GAMMA_STEPS = 4096
_TO_GAMMA = u8(np.power(np.arange(_GAMMA_STEPS) / (_GAMMA_STEPS - 1), 1 / 2.2))


def linear(img: np.ndarray) -> np.ndarray:
    """sRGB-ish 8-bit to linear light: exposure and noise act on photons, not on gamma-encoded values."""
    return cast(np.ndarray, _TO_LINEAR[img])


def encode_gamma(lin: np.ndarray) -> np.ndarray:
    idx = np.clip(lin * np.float32(_GAMMA_STEPS - 1) + np.float32(0.5), 0, _GAMMA_STEPS - 1).astype(np.int32)
    return cast(np.ndarray, _TO_GAMMA[idx])


def blur_small(img: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur computed at quarter resolution (bloom, out-of-focus rooms): same look, 16× less work."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(w // 4, 1), max(h // 4, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    return cast(np.ndarray, cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def smooth_wave(n: int, fps: float, rng: np.random.Generator, amplitude: float, hz: tuple[float, float]) -> np.ndarray:
    """A smooth random signal in [-amplitude, amplitude]: a few sinusoids, like a hand's slow drift."""
    t = np.arange(n) / fps
    k = 3
    freqs = rng.uniform(hz[0], hz[1], k)
    phases = rng.uniform(0, 2 * np.pi, k)
    weights = rng.uniform(0.3, 1.0, k)
    wave = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    return cast(np.ndarray, wave / max(float(np.abs(wave).max()), 1e-6) * amplitude)


def ellipse_mask(shape: tuple[int, int], centre: Point, axes: Point) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((xx - centre[0]) / max(axes[0], 1)) ** 2 + ((yy - centre[1]) / max(axes[1], 1)) ** 2
    return cast(np.ndarray, (d <= 1).astype(np.float32))


def gauss(shape: tuple[int, ...], rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    """Gaussian noise, float32: OpenCV's generator seeded from ``rng`` is about 3× faster than numpy's per frame."""
    out = np.empty(shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(1 << 31)))
    # As one channel: with a scalar mean and sigma cv2.randn fills only the first of several channels.
    cv2.randn(out.reshape(shape[0], -1), np.zeros(1), np.full(1, sigma))
    return out


def camera_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Mild sensor noise for attacks: a re-captured photo passes through a real camera too."""
    return u8(f32(img) + gauss(img.shape, rng, sigma))
