"""Card pose from text-line geometry: dominant text direction, upright frame, and the card → image homography.

The text lines of the portrait side are all parallel, so their direction (mod 180°) gives the in-plane rotation
for any angle; the direction classifier then settles 0° vs 180°. The printed captions (姓名, 性别, 民族, 出生,
住址, 公民身份号码) sit at fixed places on every card, so recognised captions and the number line are point
correspondences to the template: a homography from them rectifies perspective, locates the portrait and tells
whether the card runs off the photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.id_card import layout

# Left corners (top, bottom) of each caption's text box, as the PP-OCR detector draws them on a card of the
# template's size; measured on rendered cards. The number box's four corners follow.
CAPTION_LEFT_CORNERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "姓名": ((132, 186), (133, 286)),
    "性别": ((144, 340), (144, 420)),
    "民族": ((557, 340), (557, 420)),
    "出生": ((144, 478), (145, 553)),
    "住址": ((136, 618), (136, 696)),
    "公民身份号码": ((147, 986), (147, 1055)),
}
NUMBER_CAPTION_RIGHT = ((510, 986), (510, 1055))
NUMBER_BOX = ((669, 976), (1667, 976), (1667, 1050), (669, 1050))
# Top and bottom (template y) of the detector's boxes on each printed row: name, sex/ethnicity, birth,
# address lines 1–3, number.
ROW_EDGES = ((186, 286), (340, 420), (478, 553), (618, 696), (718, 796), (818, 896), (976, 1050))
# Height over width of the block of printed text (captions' left edge to the number's right end).
TEXT_BLOCK_RATIO = (ROW_EDGES[-1][1] - ROW_EDGES[0][0]) / (NUMBER_BOX[1][0] - CAPTION_LEFT_CORNERS["姓名"][0][0])


def text_direction(quads: list[np.ndarray]) -> float | None:
    """Dominant direction (degrees, mod 180) of elongated text boxes, length-weighted; None without any."""
    acc = np.zeros(2)
    for q in quads:
        edges = [q[(i + 1) % 4] - q[i] for i in range(4)]
        lengths = [float(np.hypot(*e)) for e in edges]
        k = int(np.argmax(lengths))
        short = min(lengths)
        if short <= 0 or lengths[k] / short < 1.8:
            continue
        ang = math.atan2(float(edges[k][1]), float(edges[k][0]))
        acc += lengths[k] * np.array([math.cos(2 * ang), math.sin(2 * ang)])
    if not acc.any():
        return None
    # In (-90, 90]: the first hypothesis is the smaller rotation; the classifier only has to catch flips.
    angle = math.degrees(math.atan2(acc[1], acc[0]) / 2)
    return angle - 180.0 if angle > 90.0 else angle


def upright_transform(shape: tuple[int, ...], angle_deg: float) -> tuple[np.ndarray, tuple[int, int]]:
    """3×3 matrix rotating the image by ``angle_deg`` (text direction → +x) onto an expanded canvas."""
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return np.vstack([m, [0, 0, 1]]), (nw, nh)


def apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = cv2.perspectiveTransform(np.asarray(pts, np.float64).reshape(-1, 1, 2), matrix)
    return p.reshape(-1, 2)


def fit_card_homography(src_card: list[tuple[float, float]], dst_img: list[tuple[float, float]]) -> np.ndarray | None:
    """Card → image homography from point pairs; falls back to a similarity transform with few points."""
    if len(src_card) < 2:
        return None
    src = np.asarray(src_card, np.float64)
    dst = np.asarray(dst_img, np.float64)
    spread = np.ptp(src, axis=0)
    # The anchors (left caption column, 民族, the number line) leave the card's upper right unconstrained, so a
    # free homography tends to invent keystone there; an affine fit is the stable choice for these points.
    if len(src) >= 3 and spread[0] > 300 and spread[1] > 300:
        a, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=_px(dst, src, 25.0))
        # RANSAC on a dozen points can settle on a sheared pick (one stray caption box); a similarity fit
        # cannot shear, so it is the fallback for an affine result that does not look like a card.
        if a is not None and sane(np.vstack([a, [0, 0, 1]])):
            return np.vstack([a, [0, 0, 1]])
    a, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if a is None:
        return None
    return np.vstack([a, [0, 0, 1]])


def _px(dst: np.ndarray, src: np.ndarray, card_px: float) -> float:
    """A tolerance of ``card_px`` template pixels, in image pixels (rough scale from the point spreads)."""
    s = float(np.linalg.norm(np.ptp(dst, axis=0))) / max(float(np.linalg.norm(np.ptp(src, axis=0))), 1.0)
    return max(2.0, card_px * s)


def sane(h: np.ndarray) -> bool:
    """Reject homographies that fold or wildly stretch the card (a bad RANSAC pick)."""
    corners = apply(
        h, np.array([[0, 0], [layout.CARD_W, 0], [layout.CARD_W, layout.CARD_H], [0, layout.CARD_H]], float)
    )
    area = cv2.contourArea(corners.astype(np.float32))
    if area <= 0 or not cv2.isContourConvex(corners.astype(np.float32)):
        return False
    sides = [float(np.linalg.norm(corners[(i + 1) % 4] - corners[i])) for i in range(4)]
    # The card is 1.59:1; under ≤~35° of tilt its outline stays between about 1:1 and 2.6:1.
    aspect = (sides[0] + sides[2]) / max(sides[1] + sides[3], 1e-6)
    return (
        0.9 < aspect < 2.8
        and max(sides[0], sides[2]) / max(min(sides[0], sides[2]), 1e-6) < 2.5
        and (max(sides[1], sides[3]) / max(min(sides[1], sides[3]), 1e-6) < 2.5)
    )


def _normalizer(pts: np.ndarray) -> np.ndarray:
    c = pts.mean(axis=0)
    s = math.sqrt(2) / max(float(np.mean(np.linalg.norm(pts - c, axis=1))), 1e-9)
    return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]])


def solve_image_to_card(
    points: list[tuple[tuple[float, float], tuple[float, float]]],
    y_only: list[tuple[tuple[float, float], float]],
) -> np.ndarray | None:
    """Image → card homography by linear least squares (DLT) from full point pairs and "this image point lies
    on template row y" constraints. Text-line ends give many of the latter, which pins down perspective that
    the few fixed caption corners alone cannot."""
    if len(points) < 3 or len(points) * 2 + len(y_only) < 10:
        return None
    img = np.array([p for p, _ in points] + [p for p, _ in y_only], float)
    crd = np.array([c for _, c in points] + [(0.0, y) for _, y in y_only], float)
    ti = _normalizer(img)
    tc = _normalizer(np.array([c for _, c in points], float))
    ih = (ti @ np.hstack([img, np.ones((len(img), 1))]).T).T
    ch = (tc @ np.hstack([crd, np.ones((len(crd), 1))]).T).T
    rows: list[np.ndarray] = []
    z = np.zeros(3)
    for k, (p, c) in enumerate(zip(ih, ch, strict=True)):
        if k < len(points):
            rows.append(np.concatenate([p, z, -c[0] * p]))
        rows.append(np.concatenate([z, p, -c[1] * p]))
    _, _, vt = np.linalg.svd(np.asarray(rows))
    g = vt[-1].reshape(3, 3)
    g = np.linalg.inv(tc) @ g @ ti
    if abs(g[2, 2]) < 1e-12:
        return None
    out: np.ndarray = g / g[2, 2]
    return out


def row_of(y: float, tol: float = 45.0) -> int | None:
    """Index of the printed row whose box centre is nearest to template ``y``, if within ``tol``."""
    centres = [(a + b) / 2 for a, b in ROW_EDGES]
    k = int(np.argmin([abs(y - c) for c in centres]))
    return k if abs(y - centres[k]) <= tol else None


def solve_affine_to_card(
    points: list[tuple[tuple[float, float], tuple[float, float]]],
    y_only: list[tuple[tuple[float, float], float]],
) -> np.ndarray | None:
    """Image → card affine map by least squares from the same constraints as ``solve_image_to_card``."""
    if len(points) < 3:
        return None
    ax = np.array([[p[0], p[1], 1.0] for p, _ in points])
    bx = np.array([c[0] for _, c in points])
    ay = np.array([[p[0], p[1], 1.0] for p, _ in points] + [[p[0], p[1], 1.0] for p, _ in y_only])
    by = np.array([c[1] for _, c in points] + [y for _, y in y_only])
    row_x = np.linalg.lstsq(ax, bx, rcond=None)[0]
    row_y = np.linalg.lstsq(ay, by, rcond=None)[0]
    return np.array([row_x, row_y, [0.0, 0.0, 1.0]])


def _rms(
    g: np.ndarray,
    points: list[tuple[tuple[float, float], tuple[float, float]]],
    y_only: list[tuple[tuple[float, float], float]],
) -> float:
    errs = [float(np.hypot(*(apply(g, np.array([p]))[0] - np.array(c)))) for p, c in points]
    errs += [float(abs(apply(g, np.array([p]))[0][1] - y)) for p, y in y_only]
    return float(np.sqrt(np.mean(np.square(errs)))) if errs else 0.0


def solve_robust(
    points: list[tuple[tuple[float, float], tuple[float, float]]],
    y_only: list[tuple[tuple[float, float], float]],
) -> np.ndarray | None:
    """Card → image homography: DLT, then again without constraints it misses by > 45 template px (a
    misassigned line). The anchors constrain the card's right side weakly, so the projective solution is only
    taken when it explains the points clearly better than an affine one (real perspective, not noise)."""
    g = solve_image_to_card(points, y_only)
    if g is None:
        return None
    for _ in range(2):
        kept_p = [(p, c) for p, c in points if _rms(g, [(p, c)], []) < 45]
        kept_y = [(p, y) for p, y in y_only if _rms(g, [], [(p, y)]) < 45]
        if len(kept_p) == len(points) and len(kept_y) == len(y_only):
            break
        g2 = solve_image_to_card(kept_p, kept_y)
        if g2 is None:
            break
        g, points, y_only = g2, kept_p, kept_y
    a = solve_affine_to_card(points, y_only)
    if a is not None and _rms(a, points, y_only) < 1.4 * _rms(g, points, y_only) + 3.0:
        g = a
    h = np.linalg.inv(g)
    return h if sane(h) else None


def shrunk_size(shape: tuple[int, ...], side: int) -> tuple[int, int]:
    """(w, h) of a copy whose longer side is at most ``side``: the one rule for every shrunk copy of a photo."""
    h, w = shape[:2]
    s = min(1.0, side / max(h, w))
    return max(1, round(w * s)), max(1, round(h * s))


def _small_grey(image: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy whose longer side is at most ``side``, and its grey version."""
    size = shrunk_size(image.shape, side)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if size != image.shape[1::-1] else image
    return small, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def _strong_edges(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient magnitude, direction (degrees) and the mask of the strongest 10% of a grey image."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    sample = mag[::2, ::2].ravel()  # the 90th percentile of every 4th pixel: a quarter of the sorting work
    k = int(sample.size * 0.9)
    return mag, ang, mag > np.partition(sample, k)[k]


def edge_extent(
    small: np.ndarray,
    turn: np.ndarray,
    size: tuple[int, int],
    tail: float = 0.5,
    margin: float = 0.06,
    strong: np.ndarray | None = None,
) -> tuple[int, int, int, int]:
    """Box (x1, y1, x2, y2) of ``size``'s canvas that holds the strong edges of ``small`` once moved by ``turn``.

    The extremes (``tail`` percent each side) are ignored so a few edges in the background do not stretch it;
    ``margin`` (of the box's size) keeps the card's outer text lines inside. ``strong``: the strong-edge mask of
    ``small`` when it is already known (``LevelView.strong``).
    """
    if strong is None:
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        strong = _strong_edges(gray)[2]
    return _extent(strong, turn, size, tail, margin)


def _extent(
    strong: np.ndarray, turn: np.ndarray, size: tuple[int, int], tail: float, margin: float
) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(strong)
    nw, nh = size
    if xs.size < 50:
        return 0, 0, nw, nh
    pts = apply(turn, np.stack([xs, ys], axis=1)[::3].astype(np.float64))
    lo, hi = np.percentile(pts, tail, axis=0), np.percentile(pts, 100 - tail, axis=0)
    pad = margin * (hi - lo)
    x1, y1 = (max(0, int(v)) for v in lo - pad)
    x2, y2 = int(min(nw, hi[0] + pad[0] + 1)), int(min(nh, hi[1] + pad[1] + 1))
    if x2 - x1 < 32 or y2 - y1 < 32:
        return 0, 0, nw, nh
    return x1, y1, x2, y2


def stroke_angle(image: np.ndarray, side: int = 480) -> tuple[float, float]:
    """In-plane rotation of the card mod 90° in (-45, 45], from the strongest image gradients, and a peak score.

    Hanzi strokes and the card's edges run along the card's two axes, so the magnitude-weighted histogram of
    gradient directions (mod 90°) peaks at the card's rotation: a few milliseconds on a small grey copy, where
    finding tilted text with the detector means several passes. The score is peak / mean of the histogram.
    """
    return _stroke_angle(*_strong_edges(_small_grey(image, side)[1]))


def _stroke_angle(mag: np.ndarray, ang: np.ndarray, strong: np.ndarray) -> tuple[float, float]:
    hist, _ = np.histogram(np.mod(ang[strong], 90.0), bins=90, range=(0.0, 90.0), weights=mag[strong])
    smooth = np.convolve(np.r_[hist[-2:], hist, hist[:2]], [1.0, 2.0, 3.0, 2.0, 1.0], "valid")
    i = int(np.argmax(smooth))
    left, mid, right = smooth[(i - 1) % 90], smooth[i], smooth[(i + 1) % 90]
    curve = left - 2 * mid + right
    peak = (i + 0.5 + (0.5 * (left - right) / curve if curve else 0.0)) % 90.0
    score = float(mid / max(float(smooth.mean()), 1e-6))
    return (peak - 90.0 if peak > 45.0 else float(peak)), score


@dataclass(frozen=True)
class LevelView:
    """How to lay a photo level (``angle``, degrees), with the shrunk copy and strong-edge mask it was judged on:
    the first detection pass reuses both instead of shrinking the photo and taking its gradients again."""

    angle: float
    small: np.ndarray
    strong: np.ndarray


def level_turn(image: np.ndarray, side: int = 480) -> float:
    """Degrees to turn the photo so the card lies level and landscape (see ``level_view``)."""
    return level_view(image, side).angle


def level_view(image: np.ndarray, side: int = 480) -> LevelView:
    """The turn that lays the card level and landscape (text horizontal or upside down), and what it rests on.

    ``stroke_angle`` levels the card's axes; the box of strong edges then tells whether the card stands upright
    (text running vertically), in which case a further quarter turn lays it down. A box filling most of the
    canvas (a card filling the photo, or a busy background) says nothing about that, and is not used.
    """
    small, gray = _small_grey(image, side)
    edges = _strong_edges(gray)  # one gradient pass serves both the angle and the box
    angle, _ = _stroke_angle(*edges)
    turn, size = upright_transform(small.shape, angle)
    # The central 80% of the strong edges: the card's print, hardly stretched by lines in the background.
    x1, y1, x2, y2 = _extent(edges[2], turn, size, tail=10.0, margin=0.06)
    bw, bh = x2 - x1, y2 - y1
    if bh > 1.15 * bw and bw * bh < 0.85 * size[0] * size[1]:
        angle += 90.0
    return LevelView(angle, small, edges[2])
