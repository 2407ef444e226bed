"""Text-line helpers: quad sizes, upright ordering with padding, reading the lines, finding the number line."""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipelines.id_card import captions, geometry, parse
from pipelines.id_card.ocr import REC_HEIGHT, OcrEngine, TextLine, crop_quad, order_quad
from pipelines.idnumber import NUMBER_RE, check_number


def _edges(q: np.ndarray) -> tuple[float, float, float, float]:
    # Plain floats: numpy's per-call overhead on 2-vectors made these a few ms per card (called ~100 times).
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = np.asarray(q, np.float64).reshape(4, 2).tolist()
    return (
        math.hypot(x1 - x0, y1 - y0),
        math.hypot(x2 - x1, y2 - y1),
        math.hypot(x3 - x2, y3 - y2),
        math.hypot(x0 - x3, y0 - y3),
    )


def quad_height(q: np.ndarray) -> float:
    e = _edges(q)
    return min(e[0] + e[2], e[1] + e[3]) / 2


def quad_length(q: np.ndarray) -> float:
    e = _edges(q)
    return max(e[0] + e[2], e[1] + e[3]) / 2


def quad_width(q: np.ndarray) -> float:
    return float(q[:, 0].max() - q[:, 0].min())


def ordered_in(up: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quad in input coords, quad in upright coords), ordered tl, tr, br, bl as seen upright, padded.

    The detector's boxes are minimum-area rectangles: for short, squarish text (男, 汉, a caption) their
    orientation is arbitrary, so those are rebuilt level in the upright frame. Every box gets a margin along
    the line (the recogniser drops edge characters of tight crops).
    """
    dst = order_quad(geometry.apply(up, quad).astype(np.float32))
    w = float(np.linalg.norm(dst[1] - dst[0]) + np.linalg.norm(dst[2] - dst[3])) / 2
    h = float(np.linalg.norm(dst[3] - dst[0]) + np.linalg.norm(dst[2] - dst[1])) / 2
    if w < 2.0 * h:
        c = dst.mean(axis=0)
        side = float(np.sqrt(max(cv2.contourArea(dst), 1.0)))
        ext_x = max(side, float(np.ptp(dst[:, 0])) * side / max(float(np.ptp(dst[:, 1])), 1.0))
        hw, hh = ext_x / 2, side / 2
        dst = np.array(
            [[c[0] - hw, c[1] - hh], [c[0] + hw, c[1] - hh], [c[0] + hw, c[1] + hh], [c[0] - hw, c[1] + hh]], np.float32
        )
        h = side
    along = dst[1] - dst[0]
    along = along / max(float(np.linalg.norm(along)), 1e-6)
    pad = along * 0.25 * h
    dst = dst + np.array([-pad, pad, pad, -pad], np.float32)
    src = geometry.apply(np.linalg.inv(up), dst).astype(np.float32)
    return src, dst


NUMBER_CAPTION = "公民身份号码"
Ordered = list[tuple[np.ndarray, np.ndarray]]  # (quad in the input, quad in the upright frame) per line


def likely_number(ordered: Ordered) -> int | None:
    """Index of the lowest long line in the upright frame: where the number is printed (or, on the emblem side,
    the validity dates), known before anything is read."""
    long_lines = [i for i, (_, dst) in enumerate(ordered) if quad_length(dst) >= 8.0 * quad_height(dst)]
    return max(long_lines, key=lambda i: float(ordered[i][1][:, 1].mean()), default=None)


def beside_number(ordered: Ordered, number: int) -> list[int]:
    """Boxes on the number's row and left of it (upright frame): where the caption 公民身份号码 is printed."""
    nq = ordered[number][1]
    a, b = (nq[0] + nq[3]) / 2, (nq[1] + nq[2]) / 2
    nh = quad_height(nq)
    out = []
    for i, (_, dst) in enumerate(ordered):
        cx, cy = dst.mean(axis=0)
        row_y = a[1] + (cx - a[0]) / max(float(b[0] - a[0]), 1e-6) * (b[1] - a[1])
        if i != number and abs(cy - row_y) < 0.5 * nh and dst[:, 0].max() < nq[:, 0].min() + 0.5 * nh:
            out.append(i)
    return out


def caption_shaped(dst: np.ndarray, number_dst: np.ndarray) -> bool:
    """A box as long as the printed 公民身份号码 and as far left of the number: ≈ 5 and ≈ 2 number heights
    (363 and 159 template px at 74 px), with room for the boxes' padding and perspective."""
    nh = quad_height(number_dst)
    gap = float(number_dst[:, 0].min() - dst[:, 0].max())
    return 3.5 * nh <= quad_length(dst) <= 7.0 * nh and -0.5 * nh <= gap <= 3.5 * nh


def read_lines(
    ocr: OcrEngine, image: np.ndarray, ordered: Ordered, height: int, squeeze: float, cut_captions: bool = True
) -> list[TextLine]:
    """Recognise every line, cropped from the input image; the likely number line at the model's own 48 px, the
    others at ``height`` and narrowed by ``squeeze`` (Chinese glyphs keep 4–5 of the recogniser's time steps).

    Fixed print is not read when the number reads as a whole ID number: the caption box beside the number, and
    the row captions in front of entries (``captions``); their place (a homography anchor) is all they add.
    Without a whole number (the emblem side, a card the reading must fall back on captions for) they are read.
    """
    number = likely_number(ordered)
    beside = beside_number(ordered, number) if number is not None else []
    first = [i for i in range(len(ordered)) if i not in beside]

    def crop(i: int) -> np.ndarray:
        if i == number:
            return crop_quad(image, ordered[i][0], REC_HEIGHT)  # narrowed, the 韦小宝 specimen's X reads as 8
        return crop_quad(image, ordered[i][0], height, squeeze)

    crops = {i: crop(i) for i in first}
    cuts: dict[int, int] = {}
    if number is not None and cut_captions:
        for i in first:
            at = None if i == number else captions.entry_start(crops[i])
            if at is not None:
                cuts[i] = at
    recs = dict(zip(first, ocr.recognize([crops[i][:, cuts.get(i, 0) :] for i in first]), strict=True))
    whole = number is not None and NUMBER_RE.match(parse.normalize(recs[number][0]).upper()) is not None
    if cuts and not whole:
        recs.update(zip(cuts, ocr.recognize([crops[i] for i in cuts]), strict=True))
        cuts = {}
    if number is not None and beside:
        known = [i for i in beside if whole and caption_shaped(ordered[i][1], ordered[number][1])]
        for i in known:
            recs[i] = (NUMBER_CAPTION, 0.0, [], np.zeros((0, len(ocr.characters)), np.float32))
        rest = [i for i in beside if i not in known]
        if rest:
            recs.update(zip(rest, ocr.recognize([crop(i) for i in rest]), strict=True))
    return [
        TextLine(text, score, chars, ordered[i][1], probs, cuts[i] / crops[i].shape[1] if i in cuts else 0.0)
        for i, (text, score, chars, probs) in sorted(recs.items())
    ]


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
        t = parse.normalize(ln.text)
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
        p = geometry.apply(inv, ln.quad)
        if p[:, 0].min() < 3 or p[:, 1].min() < 3 or p[:, 0].max() > w - 3 or p[:, 1].max() > h - 3:
            return True
    return False
