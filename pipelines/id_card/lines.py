"""Text-line helpers: quad sizes, upright ordering with padding, and finding the number line."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.id_card import geometry as G
from pipelines.id_card import parse as P
from pipelines.id_card.ocr import TextLine, order_quad
from pipelines.id_card.validate import check_number


def quad_height(q: np.ndarray) -> float:
    edges = [float(np.linalg.norm(q[(i + 1) % 4] - q[i])) for i in range(4)]
    return min(edges[0] + edges[2], edges[1] + edges[3]) / 2


def quad_length(q: np.ndarray) -> float:
    edges = [float(np.linalg.norm(q[(i + 1) % 4] - q[i])) for i in range(4)]
    return max(edges[0] + edges[2], edges[1] + edges[3]) / 2


def quad_width(q: np.ndarray) -> float:
    return float(q[:, 0].max() - q[:, 0].min())


def ordered_in(up: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quad in input coords, quad in upright coords), ordered tl, tr, br, bl as seen upright, padded.

    The detector's boxes are minimum-area rectangles: for short, squarish text (男, 汉, a caption) their
    orientation is arbitrary, so those are rebuilt level in the upright frame. Every box gets a margin along
    the line (the recogniser drops edge characters of tight crops).
    """
    dst = order_quad(G.apply(up, quad).astype(np.float32))
    w = float(np.linalg.norm(dst[1] - dst[0]) + np.linalg.norm(dst[2] - dst[3])) / 2
    h = float(np.linalg.norm(dst[3] - dst[0]) + np.linalg.norm(dst[2] - dst[1])) / 2
    if w < 2.0 * h:
        c = dst.mean(axis=0)
        side = float(np.sqrt(max(cv2.contourArea(dst), 1.0)))
        ext_x = max(side, float(np.ptp(dst[:, 0])) * side / max(float(np.ptp(dst[:, 1])), 1.0))
        hw, hh = ext_x / 2, side / 2
        dst = np.array([[c[0] - hw, c[1] - hh], [c[0] + hw, c[1] - hh], [c[0] + hw, c[1] + hh],
                        [c[0] - hw, c[1] + hh]], np.float32)
        h = side
    along = dst[1] - dst[0]
    along = along / max(float(np.linalg.norm(along)), 1e-6)
    pad = along * 0.25 * h
    dst = dst + np.array([-pad, pad, pad, -pad], np.float32)
    src = G.apply(np.linalg.inv(up), dst).astype(np.float32)
    return src, dst


def number_line(texts: list[str]) -> int | None:
    best, best_n = None, 0
    for i, t in enumerate(texts):
        n = sum(ch.isdigit() for ch in t)
        if n >= 14 and n > best_n and n >= 0.75 * len(t):
            best, best_n = i, n
    return best


def partial_number_line(lines: list[TextLine]) -> int | None:
    """The longest mostly-digit line with 6–17 digits: a number the detector only partly boxed."""
    best, best_n = None, 0
    for i, ln in enumerate(lines):
        t = P.normalize(ln.text)
        n = sum(ch.isdigit() for ch in t)
        if 6 <= n < 18 and n >= 0.8 * len(t) and n > best_n:
            best, best_n = i, n
    return best


def pick_number(text: str, scores: list[float]) -> tuple[str | None, float, list[float]]:
    """18 characters from a re-read; with extra characters (a neighbour's glyph), the window whose check digit
    holds, preferring the leftmost."""
    if len(text) == 18:
        return text, min(scores), scores
    for k in range(len(text) - 17):
        cand = text[k : k + 18]
        if "X" not in cand[:17] and check_number(cand).checksum_ok:
            return cand, min(scores[k : k + 18]), scores[k : k + 18]
    return None, 0.0, []


def reading_order(lines: list[TextLine]) -> list[str]:
    ordered = sorted(lines, key=lambda ln: (round(ln.center[1] / max(ln.height, 1.0)), ln.x1))
    return [ln.text for ln in ordered]


def touches_border(lines: list[TextLine], up: np.ndarray, image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    inv = np.linalg.inv(up)
    for ln in lines:
        p = G.apply(inv, ln.quad)
        if p[:, 0].min() < 3 or p[:, 1].min() < 3 or p[:, 0].max() > w - 3 or p[:, 1].max() > h - 3:
            return True
    return False
