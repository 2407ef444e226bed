"""Cheap image-quality measures used to explain an unreadable number (glare vs blur)."""

from __future__ import annotations

import cv2
import numpy as np


def glare_fraction(region_bgr: np.ndarray) -> float:
    """Share of near-white, unsaturated pixels: a specular highlight washes out the print and the guilloche."""
    hsv = cv2.cvtColor(region_bgr, cv2.COLOR_BGR2HSV)
    washed = (hsv[:, :, 2] >= 245) & (hsv[:, :, 1] <= 25)
    return float(washed.mean())


def sharpness(region_bgr: np.ndarray) -> float:
    """Edge energy relative to contrast (scale-free): Laplacian std over the grey-level std.

    Printed characters have sharp strokes; blur lowers the ratio while contrast alone does not change it.
    """
    gray = cv2.cvtColor(region_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    contrast = float(gray.std())
    if contrast < 1.0:
        return 0.0
    return float(cv2.Laplacian(gray, cv2.CV_32F).std() / contrast)
