"""The printed portrait photo: rectified crop from the card homography, verified by a face detector.

The check only needs to know that a face sits in the middle of the photo area, so it runs a small detector with
a dynamic input (``yunet_n_dynamic``) on a ~256-px copy: ~3 ms, where the default pack's fixed 640×640 YuNet
takes ~8 ms for the same answer (60/60 hard cards both). That face is not handed on for alignment: face matching
finds it again with its own, calibrated detector. Without that model file the pack's detector does the check
and its detection is handed on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import cv2
import numpy as np

from models.detectors import Detection
from models.errors import ModelError
from models.packs import load_model
from pipelines.face_match import FaceMatcher
from pipelines.face_match.matcher import prominence
from pipelines.id_card import geometry, layout, regions

log = logging.getLogger(__name__)

CHECK_MODEL = "yunet_n_dynamic"


@dataclass(frozen=True)
class Portrait:
    bbox: tuple[int, int, int, int]  # the printed photo's box on the input image
    crop: np.ndarray
    face: Detection | None  # the central face found in ``crop``, if any
    faces: int
    aligned_by_matcher: bool  # ``face`` came from the matcher's own detector (usable for its alignment)


class PortraitFinder:
    def __init__(self, matcher: FaceMatcher, margin: float = 0.08, check_side: int = 256) -> None:
        self.matcher = matcher
        self.margin = margin
        self.check_side = check_side

    @cached_property
    def checker(self) -> Any:
        """The check's own detector, loaded on first use; None: the matcher's detector checks."""
        store = self.matcher.pack.store
        try:
            if store.is_available(CHECK_MODEL):
                return load_model(store, CHECK_MODEL)
        except ModelError as exc:
            log.warning("portrait check: %s unusable (%s); the pack's detector does it", CHECK_MODEL, exc)
        return None

    def find(self, image: np.ndarray, h_in: np.ndarray) -> Portrait:
        """Rectified crop of the portrait photo (card → input homography ``h_in``) and its central face."""
        x1, y1, x2, y2 = layout.PORTRAIT_BOX
        dx, dy = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        crop = regions.warp_region(image, h_in, (x1 - dx, y1 - dy, x2 + dx, y2 + dy), 0.5)
        quad = geometry.apply(h_in, np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], float))
        h, w = image.shape[:2]
        bx1, by1 = np.clip(quad.min(axis=0), 0, [w, h])
        bx2, by2 = np.clip(quad.max(axis=0), 0, [w, h])
        faces, by_matcher = self._faces(crop)
        cw = crop.shape[1]
        central = [f for f in faces if 0.15 * cw < (f.bbox[0] + f.bbox[2]) / 2 < 0.85 * cw and f.width > 0.2 * cw]
        return Portrait(
            (int(bx1), int(by1), int(bx2), int(by2)), crop, central[0] if central else None, len(faces), by_matcher
        )

    def _faces(self, crop: np.ndarray) -> tuple[list[Detection], bool]:
        checker = self.checker
        if checker is None:
            return self.matcher.detect(crop), True
        f = min(1.0, self.check_side / max(crop.shape[:2]))
        small = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else crop
        found = [
            replace(d, bbox=(d.bbox[0] / f, d.bbox[1] / f, d.bbox[2] / f, d.bbox[3] / f), kps=d.kps / f)
            for d in checker.detect(small)
        ]
        return sorted(found, key=lambda d: -prominence(d, crop.shape)), False
