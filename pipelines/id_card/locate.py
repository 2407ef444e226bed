"""Locate step of the ID-card reader: find the text lines, turn them upright, read them, and place the card.

Every function returns what it found; the reader (:mod:`pipelines.id_card.reader`) composes them into an
``IdCardResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from pipelines.id_card import geometry, layout, rows
from pipelines.id_card.config import ReaderConfig
from pipelines.id_card.lines import (
    ordered_in,
    partial_number_line,
    quad_height,
    quad_length,
    quad_width,
    read_lines,
)
from pipelines.id_card.ocr import OcrEngine, TextLine, crop_quad


@dataclass(frozen=True)
class Oriented:
    """The recognised lines, in reading direction: ``up`` maps the input photo to the upright frame."""

    up: np.ndarray
    lines: list[TextLine]
    rotation_deg: float


@dataclass(frozen=True)
class Placement:
    """Where the card lies on the input photo (``h_in``: card → input), and whether a corner is cut off."""

    h_in: np.ndarray
    corners: np.ndarray
    cut_off: bool

    @property
    def card_quad(self) -> list[list[float]]:
        return [[round(float(x), 1), round(float(y), 1)] for x, y in self.corners]


def detect_text(ocr: OcrEngine, image: np.ndarray, config: ReaderConfig, levelled: bool = True) -> list[np.ndarray]:
    """Two cheap passes. A ≤480-px pass finds the text cluster and its direction; the cluster is then
    rotated level and scaled so the card's text is ~15 px high, and detected again. Level text at the right
    size is what the detector is best at, whatever the photo's size, rotation or the card's share of it.
    ``levelled=False``: the first pass sees the photo as it is (turned by 45°, then at 960 px, if needed)."""
    cfg = (
        config
        if levelled
        else replace(config, det_level=False, det_crop_to_edges=False, det_relocate_side=0, det_diagonal_deg=45.0)
    )
    first, side = _first_pass(ocr, image, cfg)
    angle = geometry.text_direction(first) if len(first) >= 2 else None
    if angle is None:
        return first
    if _first_pass_suffices(image, first, side, config):
        return first
    return _second_pass(ocr, image, first, angle, cfg)


def _first_pass(ocr: OcrEngine, image: np.ndarray, cfg: ReaderConfig) -> tuple[list[np.ndarray], int]:
    """The small pass's boxes and the side it ran at: levelled, then larger, turned by 45°, then at 960 px."""
    view = geometry.level_view(image, cfg.det_locate_side) if cfg.det_level else None
    turn = view.angle if view is not None else 0.0
    if abs(turn) < cfg.det_level_min_deg:
        turn = 0.0
    side = cfg.det_locate_side
    first = _locate(ocr, image, side, turn, cfg.det_crop_to_edges, view)
    if not _usable(first) and cfg.det_relocate_side:
        # Small or soft cards: the same levelled view, a third larger.
        more = _locate(ocr, image, cfg.det_relocate_side, turn, cfg.det_crop_to_edges, view)
        if _elongated(more) >= _elongated(first):
            first, side = more, cfg.det_relocate_side
    if not _usable(first) and cfg.det_diagonal_deg:
        # The detector is trained on near-horizontal text: at 480 px, lines tilted by 25–65° vanish or
        # shrink to stray glyphs. Turned by 45°, they are within ±20° of an axis.
        turned = ocr.detect_turned(image, cfg.det_locate_side, cfg.det_diagonal_deg)
        if _elongated(turned) > _elongated(first):
            first, side = turned, cfg.det_locate_side
    if not _usable(first):
        more = _locate(ocr, image, cfg.det_fallback_side, turn, cfg.det_crop_to_edges, view)
        if _elongated(more) >= _elongated(first):
            first, side = more, cfg.det_fallback_side
    return first, side


def _second_pass(
    ocr: OcrEngine, image: np.ndarray, first: list[np.ndarray], angle: float, cfg: ReaderConfig
) -> list[np.ndarray]:
    """Detect again on the first pass's text region, levelled and scaled to ~15-px text; boxes in input coords."""
    up, _ = geometry.upright_transform(image.shape, angle)
    pts = geometry.apply(up, np.vstack(first))
    (x1, y1), (x2, y2) = pts.min(axis=0), pts.max(axis=0)
    span = max(x2 - x1, 1.0)
    # Text spans ~82% of the card's width (captions to the end of the number); the card's text is 3.2% of it.
    card_w = span / 0.82
    zoom = min(cfg.det_target_text_px / (0.032 * card_w), cfg.det_max_zoom)
    whole = (y2 - y1) >= cfg.det_whole_height * geometry.TEXT_BLOCK_RATIO * span and _elongated(
        first
    ) >= cfg.det_whole_min_lines
    pad_x = (cfg.det_whole_pad_x if whole else cfg.det_pad_x) * span
    pad_y = (cfg.det_whole_pad_y if whole else cfg.det_pad_y) * span
    x1, y1, x2, y2 = x1 - pad_x, y1 - pad_y, x2 + pad_x, y2 + pad_y
    out_w, out_h = int((x2 - x1) * zoom), int((y2 - y1) * zoom)
    if max(out_w, out_h) > cfg.det_max_second:
        f = cfg.det_max_second / max(out_w, out_h)
        zoom, out_w, out_h = zoom * f, int(out_w * f), int(out_h * f)
    a = np.array([[zoom, 0, -x1 * zoom], [0, zoom, -y1 * zoom], [0, 0, 1]]) @ up
    level = cv2.warpAffine(
        image, a[:2], (max(out_w, 32), max(out_h, 32)), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    second = ocr.detect(level, max(level.shape[:2]))
    if len(second) < 2:
        return first
    back = np.linalg.inv(a)
    return [geometry.apply(back, q).astype(np.float32) for q in second]


def _locate(
    ocr: OcrEngine, image: np.ndarray, side: int, turn: float, crop: bool, view: geometry.LevelView | None = None
) -> list[np.ndarray]:
    if crop:
        return ocr.detect_turned(image, side, turn, crop=True, view=view)
    return ocr.detect_turned(image, side, turn) if turn else ocr.detect(image, side)


def _first_pass_suffices(image: np.ndarray, quads: list[np.ndarray], side: int, cfg: ReaderConfig) -> bool:
    """Enough separate lines, text tall enough at the first pass's scale, and a number-like long line."""
    scale = min(1.0, side / max(image.shape[:2]))
    heights = [quad_height(q) * scale for q in quads]
    aspects = [quad_length(q) / max(quad_height(q), 1.0) for q in quads]
    return (
        len(quads) >= cfg.min_first_pass_lines
        and float(np.median(heights)) >= cfg.min_first_pass_text_px
        and max(aspects) >= cfg.min_first_pass_aspect
    )


def _elongated(quads: list[np.ndarray]) -> int:
    return sum(quad_length(q) >= 2.5 * quad_height(q) for q in quads)


def _usable(quads: list[np.ndarray]) -> bool:
    """Enough line-like boxes to tell the text direction and where the card's text lies."""
    return len(quads) >= 4 and _elongated(quads) >= 3


def orient_and_read(
    ocr: OcrEngine, image: np.ndarray, quads: list[np.ndarray], angle: float, config: ReaderConfig
) -> Oriented:
    """Rotate the text to horizontal, settle 0°/180° with the direction classifier, recognise every line.

    Lines are cropped straight from the input image with corners ordered in the upright frame, so the
    photo itself is never rotated.
    """
    up, _ = geometry.upright_transform(image.shape, angle)
    heights = np.array([quad_height(q) for q in quads])
    med = float(np.median(heights))
    keep = [q for q, h in zip(quads, heights, strict=True) if 0.45 * med <= h <= 2.2 * med and h >= 6]
    ordered = [ordered_in(up, q) for q in keep]
    widest = sorted(range(len(ordered)), key=lambda i: -quad_width(ordered[i][1]))[: config.cls_lines]
    votes = ocr.upside_down_votes([crop_quad(image, ordered[i][0]) for i in widest])
    if votes > 0:
        angle = (angle + 180.0) % 360.0
        up, _ = geometry.upright_transform(image.shape, angle)
        ordered = [ordered_in(up, q) for q in keep]
    lines = read_lines(ocr, image, ordered, config.rec_height, config.rec_squeeze)
    return Oriented(up, lines, angle)


def card_homography(lines: list[TextLine], texts: list[str], number_idx: int | None) -> np.ndarray | None:
    """Card → upright-frame homography. Preferred: rows by reading order (see ``rows``), solved by DLT with
    one round of outlier rejection; else the printed captions alone."""
    anchor_idx = number_idx if number_idx is not None else partial_number_line(lines)
    if anchor_idx is not None:
        # A partly boxed number still fixes the number row and its left end.
        row_of = rows.assign_rows(lines, texts, anchor_idx)
        points, y_only = rows.anchors(lines, texts, row_of, anchor_idx)
        h = geometry.solve_robust(points, y_only)
        if h is not None:
            return h
    src: list[tuple[float, float]] = []
    dst: list[tuple[float, float]] = []
    for ln, t in zip(lines, texts, strict=True):
        for caption, (tl, bl) in geometry.CAPTION_LEFT_CORNERS.items():
            if t.startswith(caption):
                src += [tl, bl]
                dst += [(float(ln.quad[0][0]), float(ln.quad[0][1])), (float(ln.quad[3][0]), float(ln.quad[3][1]))]
    if number_idx is not None:
        full = sum(ch.isdigit() or ch in "Xx" for ch in texts[number_idx]) == 18
        for k in (0, 1, 2, 3) if full else (0, 3):
            src.append(geometry.NUMBER_BOX[k])
            dst.append((float(lines[number_idx].quad[k][0]), float(lines[number_idx].quad[k][1])))
    fallback = geometry.fit_card_homography(src, dst)
    return fallback if fallback is not None and geometry.sane(fallback) else None


def place_card(image: np.ndarray, up: np.ndarray, h_card: np.ndarray, cut_off_margin: float) -> Placement:
    """The card's corners on the input photo; cut off when one lies beyond the photo by more than the margin
    (a fraction of the card's width)."""
    h_in = np.linalg.inv(up) @ h_card
    corners = geometry.apply(
        h_in, np.array([[0, 0], [layout.CARD_W, 0], [layout.CARD_W, layout.CARD_H], [0, layout.CARD_H]], float)
    )
    h, w = image.shape[:2]
    card_w = float(np.linalg.norm(corners[1] - corners[0]))
    tol = cut_off_margin * card_w
    outside = (corners[:, 0] < -tol) | (corners[:, 0] > w + tol)
    outside |= (corners[:, 1] < -tol) | (corners[:, 1] > h + tol)
    return Placement(h_in, corners, bool(outside.any()))
