"""Face information for the conditions: the project's detector (face box, eye centres) and glasses drawing."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from bench.liveness_conditions.imaging import Box, Point, resize

REPO = Path(__file__).resolve().parents[2]

EyePair = tuple[Point, Point]
# (frame index, BGR frame) -> (image-left eye centre, image-right eye centre), or None when no face.
EyeFn = Callable[[int, np.ndarray], EyePair | None]


class NoFaceError(ValueError):
    """A condition that needs facial landmarks (glasses) found no face in the clip."""


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
    small = resize(img, round(w * scale), round(h * scale)) if scale < 1 else img
    dets = _matcher().detect(small)
    if not dets:
        return None
    d = dets[0]
    box = tuple(v / scale for v in d.bbox)
    return box, np.asarray(d.kps, dtype=np.float64) / scale


def detector_eyes(index: int, img: np.ndarray) -> EyePair | None:
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


def fill_and_smooth(raw: np.ndarray) -> np.ndarray:
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
class GlassesStyle:
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


def draw_glasses(img: np.ndarray, eyes: np.ndarray, style: GlassesStyle) -> np.ndarray:
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
