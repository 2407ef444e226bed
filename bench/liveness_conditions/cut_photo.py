"""A cut-photo attack: a printed photo of the pensioner with the eyes cut out, worn over another face.

The paper moves as one rigid plane (held against the face, it turns and nods with the head), while live eyes
blink and look through the holes. It is the attack a blink challenge alone does not stop, and the one a
motion cue that only asks "is anything non-rigid?" could miss: only the eyes move on their own.

As a proxy it uses the *same* person's live eyes behind the holes, aligned to the printed ones every frame: the
hardest case for a detector that compares the eyes with the face around them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from bench.liveness_conditions.attacks import film_planes, printed, still_index
from bench.liveness_conditions.clip import Clip, Source
from bench.liveness_conditions.faces import NoFaceError
from bench.liveness_conditions.imaging import f32, u8

# Hole size as a share of the distance between the eye centres: an almond a little larger than the eye.
HOLE_AXES = (0.3, 0.16)


def _hole_masks(shape: tuple[int, int], eyes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both holes (1 inside) and the shadow rim of the cut paper around them, in the still's coordinates."""
    h, w = shape
    d = float(np.linalg.norm(eyes[1] - eyes[0]))
    angle = math.degrees(math.atan2(float(eyes[1][1] - eyes[0][1]), float(eyes[1][0] - eyes[0][0])))
    grow = rng.uniform(0.9, 1.15)
    holes = np.zeros((h, w), np.float32)
    for centre in eyes:
        axes = (max(2, round(HOLE_AXES[0] * d * grow)), max(2, round(HOLE_AXES[1] * d * grow)))
        at = (round(float(centre[0])), round(float(centre[1])))
        cv2.ellipse(holes, at, axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA)
    edge = max(1.0, 0.02 * d)
    soft = np.asarray(cv2.GaussianBlur(holes, (0, 0), 0.5), np.float32)
    rim = np.clip(np.asarray(cv2.GaussianBlur(soft, (0, 0), 2 * edge), np.float32) * 2.5 - soft * 2.5, 0, 1)
    return soft[..., None], rim[..., None]


def _eyes_behind(frame: np.ndarray, live: np.ndarray, still: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The live frame moved so that its eyes sit where the printed eyes are (one shift per eye, blended by
    side), as a face pressed behind the photo would show through the holes."""
    h, w = shape
    out = np.empty((h, w, 3), np.float32)
    mid = float(still[:, 0].mean())
    for side, (s, e) in enumerate(zip(still, live, strict=True)):
        m = np.array([[1, 0, s[0] - e[0]], [0, 1, s[1] - e[1]]], np.float32)
        moved = f32(cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
        cols = slice(0, round(mid)) if side == 0 else slice(round(mid), w)
        out[:, cols] = moved[:, cols]
    return out


def cut_photo(src: Source, rng: np.random.Generator) -> Clip:
    """A printed still with eye holes, live eyes behind it, held over the face for 4–6 s."""
    track = src.eye_track()
    k = still_index(src.frames, src.box())
    still_eyes = track[k]
    if not np.isfinite(still_eyes).all():
        raise NoFaceError("no eyes found in the still")
    paper = f32(u8(printed(src.frames[k], rng)))
    h, w = paper.shape[:2]
    holes, rim = _hole_masks((h, w), still_eyes, rng)
    paper = paper * (1 - np.float32(rng.uniform(0.35, 0.6)) * rim)
    n = min(len(src.frames), max(2, round(rng.uniform(4.0, 6.0) * src.fps)))
    planes = []
    for i in range(n):
        live_eyes = track[i] if np.isfinite(track[i]).all() else still_eyes
        behind = _eyes_behind(src.frames[i], live_eyes, still_eyes, (h, w))
        planes.append(u8(paper * (1 - holes) + behind * holes))
    frames = film_planes(planes, src.fps, rng, sigma=0.012)
    return Clip(frames, src.fps, label="spoof", attack_type="cut_photo")
