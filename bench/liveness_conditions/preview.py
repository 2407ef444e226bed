"""The ``demo`` command: one clip per condition from one video, and a contact sheet to look them over."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from bench.liveness_conditions.clip import displayed_frame, read_video, write
from bench.liveness_conditions.faces import NoFaceError, detect_face_box
from bench.liveness_conditions.imaging import resize
from bench.liveness_conditions.registry import ATTACKS, CONDITIONS, apply

log = logging.getLogger("bench.liveness_conditions")


def contact_sheet(tiles: Sequence[tuple[str, np.ndarray]], cell: int = 300, columns: int = 5) -> np.ndarray:
    """One labelled, letterboxed thumbnail per condition, for a person to look over."""
    rows = math.ceil(len(tiles) / columns)
    label_h = 22
    sheet = np.full((rows * (cell + label_h), columns * cell, 3), 255, np.uint8)
    for i, (name, img) in enumerate(tiles):
        r, c = divmod(i, columns)
        h, w = img.shape[:2]
        s = min((cell - 4) / w, (cell - 4) / h)
        thumb = resize(img, max(1, round(w * s)), max(1, round(h * s)))
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
