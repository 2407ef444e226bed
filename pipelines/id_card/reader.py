"""ID-card reader: locate text → fix rotation → recognise lines → place characters on the template → fields.

Cost model (2 cores): one text-detection pass on a ≤640-px copy of the photo, the direction classifier on a few
lines, and the recogniser once per text line at its own width. No full-resolution detection, no classifier on
every line, and no 320-px padding of short fields, which is where a plain RapidOCR call spends its time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from models.packs import ModelPack, load_pack
from pipelines.face_match import FaceMatcher
from pipelines.id_card import geometry as G
from pipelines.id_card import layout as L
from pipelines.id_card import parse as P
from pipelines.id_card.ocr import OcrEngine, TextLine, crop_quad, order_quad
from pipelines.id_card.quality import glare_fraction, sharpness
from pipelines.id_card.result import IdCardResult
from pipelines.id_card.validate import check_number, cross_check
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)

DIGITS = "0123456789X"
BIRTH_CHARS = "0123456789年月日出生"
EMBLEM_MARKERS = ("签发机关", "有效期限", "居民身份证", "中华人民共和国")


@dataclass(frozen=True)
class ReaderConfig:
    det_max_side: int = 640
    cls_lines: int = 4
    min_number_conf: float = 0.80
    glare_threshold: float = 0.12
    blur_threshold: float = 0.35
    cut_off_margin: float = 0.04  # fraction of the card width a corner may lie outside the photo
    portrait_margin: float = 0.08


class IdCardReader:
    """Main class of the ID-card stage. ``reader.read(bgr) -> IdCardResult``; never raises for bad cards."""

    def __init__(self, matcher_or_pack: FaceMatcher | ModelPack | str | None = None,
                 config: ReaderConfig | None = None) -> None:
        if isinstance(matcher_or_pack, FaceMatcher):
            self.matcher = matcher_or_pack
        else:
            pack = matcher_or_pack if isinstance(matcher_or_pack, ModelPack) else load_pack(matcher_or_pack)
            self.matcher = FaceMatcher(pack)
        self.config = config or ReaderConfig()
        self.ocr = OcrEngine()

    # -- main entry ----------------------------------------------------------------------------------

    def read(self, image_bgr: np.ndarray, today: dt.date | None = None) -> IdCardResult:
        res = IdCardResult()
        t0 = time.perf_counter()
        quads = self.ocr.detect(image_bgr, self.config.det_max_side)
        res.timings_ms["detect"] = (time.perf_counter() - t0) * 1000
        angle = G.text_direction(quads)
        if len(quads) < 2 or angle is None:
            res.add_error(ReasonCode.ID_NOT_A_CARD)
            res.timings_ms["total"] = (time.perf_counter() - t0) * 1000
            return res
        up, lines = self._orient_and_read(image_bgr, quads, angle, res)
        res.timings_ms["recognize"] = (time.perf_counter() - t0) * 1000 - sum(res.timings_ms.values())
        self._interpret(image_bgr, up, lines, res, today or dt.date.today())
        res.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return res

    def read_emblem(self, image_bgr: np.ndarray, today: dt.date | None = None) -> IdCardResult:
        """Read the emblem side (issuing authority, validity). ID_WRONG_SIDE is not raised for it here."""
        res = self.read(image_bgr, today)
        if res.side == "emblem" and ReasonCode.ID_WRONG_SIDE in res.errors:
            res.errors.remove(ReasonCode.ID_WRONG_SIDE)
        elif res.side == "portrait":
            res.add_error(ReasonCode.ID_WRONG_SIDE)
        return res

    # -- steps ---------------------------------------------------------------------------------------

    def _orient_and_read(
        self, image: np.ndarray, quads: list[np.ndarray], angle: float, res: IdCardResult
    ) -> tuple[np.ndarray, list[TextLine]]:
        """Rotate the text to horizontal, settle 0°/180° with the direction classifier, recognise every line.

        Lines are cropped straight from the input image with corners ordered in the upright frame, so the
        photo itself is never rotated.
        """
        up, _ = G.upright_transform(image.shape, angle)
        heights = np.array([_quad_height(q) for q in quads])
        med = float(np.median(heights))
        keep = [q for q, h in zip(quads, heights, strict=True) if 0.45 * med <= h <= 2.2 * med and h >= 6]
        ordered = [_ordered_in(up, q) for q in keep]
        widest = sorted(range(len(ordered)), key=lambda i: -_quad_width(ordered[i][1]))[: self.config.cls_lines]
        votes = self.ocr.upside_down_votes([crop_quad(image, ordered[i][0]) for i in widest])
        if votes > 0:
            angle = (angle + 180.0) % 360.0
            up, _ = G.upright_transform(image.shape, angle)
            ordered = [_ordered_in(up, q) for q in keep]
        res.rotation_deg = angle
        crops = [crop_quad(image, src) for src, _ in ordered]
        recs = self.ocr.recognize(crops)
        lines = [TextLine(text, score, chars, dst, probs)
                 for (text, score, chars, probs), (_, dst) in zip(recs, ordered, strict=True)]
        return up, lines

    def _interpret(
        self, image: np.ndarray, up: np.ndarray, lines: list[TextLine], res: IdCardResult, today: dt.date
    ) -> None:
        texts = [P.normalize(ln.text) for ln in lines]
        number_idx = _number_line(texts)
        emblem = any(m in t for t in texts for m in EMBLEM_MARKERS)
        h_card = self._card_homography(lines, texts, number_idx)
        portrait_side = number_idx is not None or (h_card is not None and sum(
            t.startswith(k) for t in texts for k in G.CAPTION_LEFT_CORNERS) >= 2)
        if emblem:
            auth, start, until, long_term = P.emblem_fields(_reading_order(lines))
            res.issuing_authority, res.valid_from, res.valid_until, res.valid_long_term = auth, start, until, long_term
            if until is not None:
                res.expired = until < today
            elif long_term:
                res.expired = False
            if res.expired:
                res.add_error(ReasonCode.ID_EXPIRED)
        if not portrait_side:
            res.side = "emblem" if emblem else None
            res.add_error(ReasonCode.ID_WRONG_SIDE if emblem else ReasonCode.ID_NOT_A_CARD)
            return
        res.side = "portrait"
        to_input = np.linalg.inv(up)
        if h_card is not None:
            h_in = to_input @ h_card
            corners = G.apply(h_in, np.array([[0, 0], [L.CARD_W, 0], [L.CARD_W, L.CARD_H], [0, L.CARD_H]], float))
            res.card_quad = [[round(float(x), 1), round(float(y), 1)] for x, y in corners]
            self._check_cut_off(image, corners, res)
            self._fields(lines, h_card, number_idx, res)
            self._portrait(image, h_in, res)
        else:
            res.add_error(ReasonCode.ID_CUT_OFF if _touches_border(lines, up, image) else ReasonCode.ID_NOT_A_CARD)
        self._number(image, lines, number_idx, h_card, up, res, today)

    def _card_homography(
        self, lines: list[TextLine], texts: list[str], number_idx: int | None
    ) -> np.ndarray | None:
        src: list[tuple[float, float]] = []
        dst: list[tuple[float, float]] = []
        for ln, t in zip(lines, texts, strict=True):
            for caption, (tl, bl) in G.CAPTION_LEFT_CORNERS.items():
                if t.startswith(caption):
                    src += [tl, bl]
                    dst += [tuple(ln.quad[0]), tuple(ln.quad[3])]  # type: ignore[list-item]
                    if caption == "公民身份号码" and len(t) <= 7:
                        src += list(G.NUMBER_CAPTION_RIGHT)
                        dst += [tuple(ln.quad[1]), tuple(ln.quad[2])]  # type: ignore[list-item]
        if number_idx is not None:
            src += list(G.NUMBER_BOX)
            dst += [tuple(p) for p in lines[number_idx].quad]  # type: ignore[misc]
        return G.fit_card_homography(src, dst)

    def _fields(self, lines: list[TextLine], h_card: np.ndarray, number_idx: int | None,
                res: IdCardResult) -> None:
        to_card = np.linalg.inv(h_card)
        chars: list[P.Char] = []
        for i, ln in enumerate(lines):
            if i == number_idx:
                continue
            centre = G.apply(to_card, np.array([ln.center]))[0]
            allowed = BIRTH_CHARS if P.BIRTH_BAND[0] <= centre[1] < P.BIRTH_BAND[1] else None
            text, scores, pos = self.ocr.decode_positions(ln.probs, allowed)
            if not text:
                continue
            q = ln.quad
            top = q[0][None, :] + np.outer(pos, q[1] - q[0])
            bottom = q[3][None, :] + np.outer(pos, q[2] - q[3])
            card_pts = G.apply(to_card, (top + bottom) / 2)
            chars += [P.Char(c, s, float(p[0]), float(p[1])) for c, s, p in zip(text, scores, card_pts, strict=True)]
        res.name, res.confidence["name"] = P.name_field(chars)
        res.sex, res.confidence["sex"] = P.sex_field(chars)
        res.ethnicity, res.confidence["ethnicity"] = P.ethnicity_field(chars)
        res.birth_date, res.confidence["birth_date"], raw = P.birth_field(chars)
        res.address, res.confidence["address"] = P.address_field(chars)
        res.checks["birth_text"] = raw
        missing = [f for f in ("name", "sex", "birth_date", "address") if getattr(res, f) is None]
        if missing:
            res.checks["missing_fields"] = missing

    def _number(self, image: np.ndarray, lines: list[TextLine], number_idx: int | None,
                h_card: np.ndarray | None, up: np.ndarray, res: IdCardResult, today: dt.date) -> None:
        number = None
        conf = 0.0
        if number_idx is not None:
            text, scores, _ = self.ocr.decode_positions(lines[number_idx].probs, DIGITS)
            if len(text) == 18:
                number, conf = text, min(scores)
            res.checks["number_raw"] = text
        check = check_number(number, today)
        res.id_number = number
        res.id_number_valid = check.valid
        res.checks["number"] = {"format": check.format_ok, "checksum": check.checksum_ok,
                                "region": check.region_ok, "date": check.date_ok, "region_name": check.region}
        if number is None or conf < self.config.min_number_conf:
            res.add_error(self._unreadable_reason(image, lines, number_idx, h_card, up))
        elif not check.checksum_ok:
            res.add_error(ReasonCode.ID_CHECKSUM_FAILED)
        elif not check.valid:
            res.add_error(ReasonCode.ID_CHECKSUM_FAILED)
        if not check.checksum_ok and number is not None:
            conf *= 0.5  # a failing check digit means at least one digit is probably wrong
        res.confidence["id_number"] = conf
        issues = cross_check(check, res.birth_date, res.sex)
        if issues:
            res.checks["inconsistent"] = issues
            res.add_error(ReasonCode.ID_FIELDS_INCONSISTENT)

    def _unreadable_reason(self, image: np.ndarray, lines: list[TextLine], number_idx: int | None,
                           h_card: np.ndarray | None, up: np.ndarray) -> ReasonCode:
        """Why the number could not be read: glare over it, blur, or just unreadable."""
        region = None
        if h_card is not None:
            h_in = np.linalg.inv(up) @ h_card
            region = _warp_region(image, h_in, (600, 940, L.CARD_W - 60, 1100), 0.5)
        elif number_idx is not None:
            region = crop_quad(image, G.apply(np.linalg.inv(up), lines[number_idx].quad), 48)
        if region is not None and region.size:
            glare = glare_fraction(region)
            sharp = sharpness(region)
            if glare > self.config.glare_threshold:
                return ReasonCode.ID_GLARE
            if sharp < self.config.blur_threshold:
                return ReasonCode.ID_TOO_BLURRY
        return ReasonCode.ID_NUMBER_UNREADABLE

    def _check_cut_off(self, image: np.ndarray, corners: np.ndarray, res: IdCardResult) -> None:
        h, w = image.shape[:2]
        card_w = float(np.linalg.norm(corners[1] - corners[0]))
        tol = self.config.cut_off_margin * card_w
        outside = (corners[:, 0] < -tol) | (corners[:, 0] > w + tol) | (corners[:, 1] < -tol) | (corners[:, 1] > h + tol)
        if outside.any():
            res.add_error(ReasonCode.ID_CUT_OFF)

    def _portrait(self, image: np.ndarray, h_in: np.ndarray, res: IdCardResult) -> None:
        """Rectified crop of the portrait photo, kept only if the face detector finds a face in it."""
        m = self.config.portrait_margin
        x1, y1, x2, y2 = L.PORTRAIT_BOX
        dx, dy = (x2 - x1) * m, (y2 - y1) * m
        box = (x1 - dx, y1 - dy, x2 + dx, y2 + dy)
        crop = _warp_region(image, h_in, box, 0.5)
        quad = G.apply(h_in, np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], float))
        h, w = image.shape[:2]
        bx1, by1 = np.clip(quad.min(axis=0), 0, [w, h])
        bx2, by2 = np.clip(quad.max(axis=0), 0, [w, h])
        res.portrait_bbox = (int(bx1), int(by1), int(bx2), int(by2))
        faces = self.matcher.detect(crop)
        ch, cw = crop.shape[:2]
        central = [f for f in faces if 0.15 * cw < (f.bbox[0] + f.bbox[2]) / 2 < 0.85 * cw and f.width > 0.2 * cw]
        res.portrait_verified = bool(central)
        res.checks["portrait_faces"] = len(faces)
        if central:
            res.portrait = crop
        else:
            res.add_error(ReasonCode.FACE_NOT_FOUND)


# -- helpers ---------------------------------------------------------------------------------------------


def _quad_height(q: np.ndarray) -> float:
    edges = [float(np.linalg.norm(q[(i + 1) % 4] - q[i])) for i in range(4)]
    return min(edges[0] + edges[2], edges[1] + edges[3]) / 2


def _quad_width(q: np.ndarray) -> float:
    return float(q[:, 0].max() - q[:, 0].min())


def _ordered_in(up: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quad in input coords, quad in upright coords), both ordered tl, tr, br, bl as seen upright."""
    dst = G.apply(up, quad).astype(np.float32)
    ordered = order_quad(dst)
    idx = [int(np.argmin(np.linalg.norm(dst - p, axis=1))) for p in ordered]
    return quad[idx].astype(np.float32), ordered


def _number_line(texts: list[str]) -> int | None:
    best, best_n = None, 0
    for i, t in enumerate(texts):
        n = sum(ch.isdigit() for ch in t)
        if n >= 14 and n > best_n and n >= 0.75 * len(t):
            best, best_n = i, n
    return best


def _reading_order(lines: list[TextLine]) -> list[str]:
    ordered = sorted(lines, key=lambda ln: (round(ln.center[1] / max(ln.height, 1.0)), ln.x1))
    return [ln.text for ln in ordered]


def _touches_border(lines: list[TextLine], up: np.ndarray, image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    inv = np.linalg.inv(up)
    for ln in lines:
        p = G.apply(inv, ln.quad)
        if p[:, 0].min() < 3 or p[:, 1].min() < 3 or p[:, 0].max() > w - 3 or p[:, 1].max() > h - 3:
            return True
    return False


def _warp_region(image: np.ndarray, h_in: np.ndarray, box: tuple[float, float, float, float],
                 scale: float) -> np.ndarray:
    """Rectify a template-coordinate box of the card from the input image at ``scale`` template px."""
    x1, y1, x2, y2 = box
    out_w, out_h = max(8, int((x2 - x1) * scale)), max(8, int((y2 - y1) * scale))
    to_out = np.array([[scale, 0, -x1 * scale], [0, scale, -y1 * scale], [0, 0, 1]], float)
    m = to_out @ np.linalg.inv(h_in)
    warped: np.ndarray = cv2.warpPerspective(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return warped


def describe(res: IdCardResult) -> dict[str, Any]:
    return res.to_dict()
