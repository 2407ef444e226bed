"""ID-card reader: locate text → fix rotation → recognise lines → place characters on the template → fields.

Cost model (2 cores): one or two text-detection passes on small copies of the photo (≤480 px, then the text
region levelled at ~15-px text), the direction classifier on a few lines, and the recogniser once per text line
at its own width. No full-resolution detection, no classifier on every line, and no 320-px padding of short
fields, which is where a plain RapidOCR call spends its time.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import cv2
import numpy as np

from models.packs import ModelPack, load_pack
from pipelines.face_match import FaceMatcher
from pipelines.id_card import geometry as G
from pipelines.id_card import layout as L
from pipelines.id_card import lines as LN
from pipelines.id_card import parse as P
from pipelines.id_card import regions as RG
from pipelines.id_card import rows as R
from pipelines.id_card.ocr import OcrEngine, TextLine, crop_quad
from pipelines.id_card.portrait import Portrait, PortraitFinder
from pipelines.id_card.quality import glare_fraction, sharpness
from pipelines.id_card.result import FIELDS, IdCardResult
from pipelines.id_card.validate import check_number, correct_address, cross_check
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)

DIGITS = "0123456789X"
EMBLEM_MARKERS = ("签发机关", "有效期限", "居民身份证", "中华人民共和国")


@dataclass(frozen=True)
class ReaderConfig:
    det_locate_side: int = 480
    det_level: bool = True  # turn the photo by its stroke angle before the first pass
    det_level_min_deg: float = 8.0
    det_relocate_side: int = 640
    det_crop_to_edges: bool = True  # first passes only look where the photo has strong edges
    retry_unlevelled: bool = True  # no number from the levelled view: look again without it
    det_diagonal_deg: float = 0.0
    det_fallback_side: int = 960
    det_target_text_px: float = 15.0
    det_pad_x: float = 0.15  # of the first pass's text span: it finds the rows' ends, it may miss whole rows
    det_pad_y: float = 0.3
    # A first pass whose text is as tall as the card's text block (for its width) missed no row: the second
    # pass then needs only a margin around it, a third fewer pixels (same reading on 400 A/B cards, −7 ms).
    det_whole_height: float = 0.9
    det_whole_min_lines: int = 5
    det_whole_pad_x: float = 0.10
    det_whole_pad_y: float = 0.12
    min_first_pass_text_px: float = 8.0
    min_first_pass_lines: int = 10
    min_first_pass_aspect: float = 9.0  # a number-like line: the first pass boxed the 18 digits as one
    det_max_zoom: float = 1.5
    det_max_second: int = 1100
    cls_lines: int = 4
    # Line crops are recognised 40 px high, not at the model's 48: a third less work. Narrow digits suffer most
    # (an X read as 8; now and then a digit of an address dropped): the number line and re-reads keep 48.
    rec_height: int = 40
    rec_squeeze: float = 0.9  # and 10% narrower (not the number): the same reading on 450 A/B cards, −6 ms
    glare_threshold: float = 0.12
    blur_threshold: float = 0.35
    cut_off_margin: float = 0.07  # fraction of the card width a corner may lie outside the photo
    portrait_margin: float = 0.08


class IdCardReader:
    """Main class of the ID-card stage. ``reader.read(bgr) -> IdCardResult``; never raises for bad cards."""

    def __init__(
        self, matcher_or_pack: FaceMatcher | ModelPack | str | None = None, config: ReaderConfig | None = None
    ) -> None:
        if isinstance(matcher_or_pack, FaceMatcher):
            self.matcher = matcher_or_pack
        else:
            pack = matcher_or_pack if isinstance(matcher_or_pack, ModelPack) else load_pack(matcher_or_pack)
            self.matcher = FaceMatcher(pack)
        self.config = config or ReaderConfig()
        self.ocr = OcrEngine()
        self.portraits = PortraitFinder(self.matcher, self.config.portrait_margin)
        self._side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="id-portrait")

    # -- main entry ----------------------------------------------------------------------------------

    def read(self, image_bgr: np.ndarray, today: dt.date | None = None) -> IdCardResult:
        image = _as_bgr(image_bgr)
        t0 = time.perf_counter()
        day = today or dt.date.today()
        res = self._attempt(image, day, levelled=self.config.det_level)
        if self.config.det_level and self.config.retry_unlevelled and res.id_number is None and res.side != "emblem":
            # The levelled view rests on one estimate (the stroke angle, the edge box); when it yields no number,
            # the photo is looked at once more the older, slower way: plain, turned by 45°, then at 960 px.
            alt = self._attempt(image, day, levelled=False)
            if _rank(alt) > _rank(res):
                res = alt
        res.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return res

    def _attempt(self, image: np.ndarray, today: dt.date, levelled: bool) -> IdCardResult:
        res = IdCardResult()
        try:
            self._read(image, res, today, time.perf_counter(), levelled)
        except (np.linalg.LinAlgError, cv2.error, ValueError, IndexError) as exc:
            # Degenerate geometry (a collapsed box, a singular fit) is a photo we cannot use, not a crash.
            log.warning("id card: giving up on degenerate input: %s", exc)
            res.add_error(ReasonCode.ID_NOT_A_CARD)
        return res

    def _read(self, image_bgr: np.ndarray, res: IdCardResult, today: dt.date, t0: float, levelled: bool) -> None:
        quads = self._detect(image_bgr, levelled)
        res.timings_ms["detect"] = (time.perf_counter() - t0) * 1000
        angle = G.text_direction(quads)
        if len(quads) < 2 or angle is None:
            res.add_error(ReasonCode.ID_TOO_BLURRY if RG.too_blurry(image_bgr) else ReasonCode.ID_NOT_A_CARD)
            return
        up, lines = self._orient_and_read(image_bgr, quads, angle, res)
        res.timings_ms["recognize"] = (time.perf_counter() - t0) * 1000 - res.timings_ms["detect"]
        self._interpret(image_bgr, up, lines, res, today)

    def read_emblem(self, image_bgr: np.ndarray, today: dt.date | None = None) -> IdCardResult:
        """Read the emblem side (issuing authority, validity). ID_WRONG_SIDE is not raised for it here."""
        res = self.read(image_bgr, today)
        if res.side == "emblem" and ReasonCode.ID_WRONG_SIDE in res.errors:
            res.errors.remove(ReasonCode.ID_WRONG_SIDE)
        elif res.side == "portrait":
            res.add_error(ReasonCode.ID_WRONG_SIDE)
        return res

    # -- steps ---------------------------------------------------------------------------------------

    def _detect(self, image: np.ndarray, levelled: bool = True) -> list[np.ndarray]:
        """Two cheap passes. A ≤480-px pass finds the text cluster and its direction; the cluster is then
        rotated level and scaled so the card's text is ~15 px high, and detected again. Level text at the right
        size is what the detector is best at, whatever the photo's size, rotation or the card's share of it.
        ``levelled=False``: the first pass sees the photo as it is (turned by 45°, then at 960 px, if needed)."""
        cfg = (
            self.config
            if levelled
            else replace(
                self.config, det_level=False, det_crop_to_edges=False, det_relocate_side=0, det_diagonal_deg=45.0
            )
        )
        view = G.level_view(image, cfg.det_locate_side) if cfg.det_level else None
        turn = view.angle if view is not None else 0.0
        if abs(turn) < cfg.det_level_min_deg:
            turn = 0.0
        side = cfg.det_locate_side
        first = self._locate(image, side, turn, cfg.det_crop_to_edges, view)
        if not _usable(first) and cfg.det_relocate_side:
            # Small or soft cards: the same levelled view, a third larger.
            more = self._locate(image, cfg.det_relocate_side, turn, cfg.det_crop_to_edges, view)
            if _elongated(more) >= _elongated(first):
                first, side = more, cfg.det_relocate_side
        if not _usable(first) and cfg.det_diagonal_deg:
            # The detector is trained on near-horizontal text: at 480 px, lines tilted by 25–65° vanish or
            # shrink to stray glyphs. Turned by 45°, they are within ±20° of an axis.
            turned = self.ocr.detect_turned(image, cfg.det_locate_side, cfg.det_diagonal_deg)
            if _elongated(turned) > _elongated(first):
                first, side = turned, cfg.det_locate_side
        if not _usable(first):
            more = self._locate(image, cfg.det_fallback_side, turn, cfg.det_crop_to_edges, view)
            if _elongated(more) >= _elongated(first):
                first, side = more, cfg.det_fallback_side
        angle = G.text_direction(first) if len(first) >= 2 else None
        if angle is None:
            return first
        if self._first_pass_suffices(image, first, side):
            return first
        up, _ = G.upright_transform(image.shape, angle)
        pts = G.apply(up, np.vstack(first))
        (x1, y1), (x2, y2) = pts.min(axis=0), pts.max(axis=0)
        span = max(x2 - x1, 1.0)
        # Text spans ~82% of the card's width (captions to the end of the number); the card's text is 3.2% of it.
        card_w = span / 0.82
        zoom = min(cfg.det_target_text_px / (0.032 * card_w), cfg.det_max_zoom)
        whole = (y2 - y1) >= cfg.det_whole_height * G.TEXT_BLOCK_RATIO * span and _elongated(
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
        second = self.ocr.detect(level, max(level.shape[:2]))
        if len(second) < 2:
            return first
        back = np.linalg.inv(a)
        return [G.apply(back, q).astype(np.float32) for q in second]

    def _locate(
        self, image: np.ndarray, side: int, turn: float, crop: bool, view: G.LevelView | None = None
    ) -> list[np.ndarray]:
        if crop:
            return self.ocr.detect_turned(image, side, turn, crop=True, view=view)
        return self.ocr.detect_turned(image, side, turn) if turn else self.ocr.detect(image, side)

    def _first_pass_suffices(self, image: np.ndarray, quads: list[np.ndarray], side: int) -> bool:
        """Enough separate lines, text tall enough at the first pass's scale, and a number-like long line."""
        scale = min(1.0, side / max(image.shape[:2]))
        heights = [LN.quad_height(q) * scale for q in quads]
        aspects = [LN.quad_length(q) / max(LN.quad_height(q), 1.0) for q in quads]
        cfg = self.config
        return (
            len(quads) >= cfg.min_first_pass_lines
            and float(np.median(heights)) >= cfg.min_first_pass_text_px
            and max(aspects) >= cfg.min_first_pass_aspect
        )

    def _orient_and_read(
        self, image: np.ndarray, quads: list[np.ndarray], angle: float, res: IdCardResult
    ) -> tuple[np.ndarray, list[TextLine]]:
        """Rotate the text to horizontal, settle 0°/180° with the direction classifier, recognise every line.

        Lines are cropped straight from the input image with corners ordered in the upright frame, so the
        photo itself is never rotated.
        """
        up, _ = G.upright_transform(image.shape, angle)
        heights = np.array([LN.quad_height(q) for q in quads])
        med = float(np.median(heights))
        keep = [q for q, h in zip(quads, heights, strict=True) if 0.45 * med <= h <= 2.2 * med and h >= 6]
        ordered = [LN.ordered_in(up, q) for q in keep]
        widest = sorted(range(len(ordered)), key=lambda i: -LN.quad_width(ordered[i][1]))[: self.config.cls_lines]
        votes = self.ocr.upside_down_votes([crop_quad(image, ordered[i][0]) for i in widest])
        if votes > 0:
            angle = (angle + 180.0) % 360.0
            up, _ = G.upright_transform(image.shape, angle)
            ordered = [LN.ordered_in(up, q) for q in keep]
        res.rotation_deg = angle
        lines = LN.read_lines(self.ocr, image, ordered, self.config.rec_height, self.config.rec_squeeze)
        return up, lines

    def _interpret(
        self, image: np.ndarray, up: np.ndarray, lines: list[TextLine], res: IdCardResult, today: dt.date
    ) -> None:
        texts = [P.normalize(ln.text) for ln in lines]
        number_idx = LN.number_line(texts)
        emblem = any(m in t for t in texts for m in EMBLEM_MARKERS)
        h_card = self._card_homography(lines, texts, number_idx)
        portrait_side = number_idx is not None or (
            h_card is not None and sum(t.startswith(k) for t in texts for k in G.CAPTION_LEFT_CORNERS) >= 2
        )
        if emblem:
            auth, start, until, long_term = P.emblem_fields(LN.reading_order(lines))
            res.issuing_authority, res.valid_from, res.valid_until, res.valid_long_term = auth, start, until, long_term
            if until is not None:
                res.expired = until < today
            elif long_term:
                res.expired = False
            if res.expired:
                res.add_error(ReasonCode.ID_EXPIRED)
        if not portrait_side:
            res.side = "emblem" if emblem else None
            if emblem:
                res.add_error(ReasonCode.ID_WRONG_SIDE)
            else:
                res.add_error(ReasonCode.ID_TOO_BLURRY if RG.too_blurry(image) else ReasonCode.ID_NOT_A_CARD)
            return
        res.side = "portrait"
        to_input = np.linalg.inv(up)
        portrait: Future[Portrait] | None = None
        if h_card is not None:
            h_in = to_input @ h_card
            # The face check needs only the card's place: it runs beside the field reading on the other core.
            portrait = self._side.submit(self.portraits.find, image, h_in)
            corners = G.apply(h_in, np.array([[0, 0], [L.CARD_W, 0], [L.CARD_W, L.CARD_H], [0, L.CARD_H]], float))
            res.card_quad = [[round(float(x), 1), round(float(y), 1)] for x, y in corners]
            self._check_cut_off(image, corners, res)
            self._fields(image, up, lines, h_card, number_idx, res)
        else:
            res.add_error(ReasonCode.ID_CUT_OFF if LN.touches_border(lines, up, image) else ReasonCode.ID_NOT_A_CARD)
        self._number(image, lines, number_idx, h_card, up, res, today)
        if portrait is not None:
            found = portrait.result()
            res.portrait_bbox, res.portrait_verified = found.bbox, found.face is not None
            res.checks["portrait_faces"] = found.faces
            if found.face is not None:
                res.portrait = found.crop
                res.portrait_face = found.face if found.aligned_by_matcher else None
            else:
                # The card's own code: FACE_NOT_FOUND would tell the citizen to face the camera.
                res.add_error(ReasonCode.ID_PORTRAIT_NO_FACE)

    def _card_homography(self, lines: list[TextLine], texts: list[str], number_idx: int | None) -> np.ndarray | None:
        """Card → upright-frame homography. Preferred: rows by reading order (see ``rows``), solved by DLT with
        one round of outlier rejection; else the printed captions alone."""
        anchor_idx = number_idx if number_idx is not None else LN.partial_number_line(lines)
        if anchor_idx is not None:
            # A partly boxed number still fixes the number row and its left end.
            row_of = R.assign_rows(lines, texts, anchor_idx)
            points, y_only = R.anchors(lines, texts, row_of, anchor_idx)
            h = G.solve_robust(points, y_only)
            if h is not None:
                return h
        src: list[tuple[float, float]] = []
        dst: list[tuple[float, float]] = []
        for ln, t in zip(lines, texts, strict=True):
            for caption, (tl, bl) in G.CAPTION_LEFT_CORNERS.items():
                if t.startswith(caption):
                    src += [tl, bl]
                    dst += [(float(ln.quad[0][0]), float(ln.quad[0][1])), (float(ln.quad[3][0]), float(ln.quad[3][1]))]
        if number_idx is not None:
            full = sum(ch.isdigit() or ch in "Xx" for ch in texts[number_idx]) == 18
            for k in (0, 1, 2, 3) if full else (0, 3):
                src.append(G.NUMBER_BOX[k])
                dst.append((float(lines[number_idx].quad[k][0]), float(lines[number_idx].quad[k][1])))
        fallback = G.fit_card_homography(src, dst)
        return fallback if fallback is not None and G.sane(fallback) else None

    def _fields(
        self,
        image: np.ndarray,
        up: np.ndarray,
        lines: list[TextLine],
        h_card: np.ndarray,
        number_idx: int | None,
        res: IdCardResult,
    ) -> None:
        to_card = np.linalg.inv(h_card)
        chars: list[P.Char] = []
        for i, ln in enumerate(lines):
            if i == number_idx:
                continue
            centre = G.apply(to_card, np.array([ln.center]))[0]
            allowed = RG.BIRTH_CHARS if P.BIRTH_BAND[0] <= centre[1] < P.BIRTH_BAND[1] else None
            text, scores, read_pos = self.ocr.decode_positions(ln.probs, allowed)
            if not text:
                continue
            pos = ln.along(read_pos)
            q = ln.quad
            top = q[0][None, :] + np.outer(pos, q[1] - q[0])
            bottom = q[3][None, :] + np.outer(pos, q[2] - q[3])
            card_pts = G.apply(to_card, (top + bottom) / 2)
            ends = G.apply(to_card, np.array([(q[0] + q[3]) / 2, (q[1] + q[2]) / 2]))
            pad = 0.25 * ln.height * float(np.linalg.norm(ends[1] - ends[0])) / max(LN.quad_length(q), 1.0)
            lo, hi = float(ends[:, 0].min()) + pad, float(ends[:, 0].max()) - pad
            chars += [
                P.Char(c, s, float(p[0]), float(p[1]), i, min(float(p[0]) - lo, hi - float(p[0])))
                for c, s, p in zip(text, scores, card_pts, strict=True)
            ]
        chars = self._fill_gaps(image, np.linalg.inv(up) @ h_card, chars, res)
        res.name, res.confidence["name"] = P.name_field(chars)
        res.sex, res.confidence["sex"] = P.sex_field(chars)
        res.ethnicity, res.confidence["ethnicity"] = P.ethnicity_field(chars)
        if res.ethnicity not in P.ETHNICITY_NAMES:
            self._snap_ethnicity(image, np.linalg.inv(up) @ h_card, res)
        res.birth_date, res.confidence["birth_date"], raw = P.birth_field(chars)
        res.address, res.confidence["address"] = P.address_field(chars)
        res.checks["birth_text"] = raw
        missing = [f for f in ("name", "sex", "birth_date", "address") if getattr(res, f) is None]
        if missing:
            res.checks["missing_fields"] = missing

    def _snap_ethnicity(self, image: np.ndarray, h_in: np.ndarray, res: IdCardResult) -> None:
        """An ethnicity outside the closed list is a misread: read its region again, constrained to the list's
        characters, and keep the result only if it is a listed name."""
        name, box, _, _, allowed = next(r for r in RG.FIELD_REGIONS if r[0] == "ethnicity")
        region = RG.warp_region(image, h_in, box, RG.REC_SCALE_FOR[name])
        # The recogniser often returns nothing for a lone blurred glyph followed by blank card; a crop trimmed to
        # the ink is read far more reliably, so that is tried first.
        for crop in (RG.trim_to_ink(region), region):
            if crop is None:
                continue
            text, scores, _ = self.ocr.decode_positions(self.ocr.recognize([crop])[0][3], allowed)
            text = text[1:] if text.startswith("族") and len(text) > 1 else text
            if text in P.ETHNICITY_NAMES:
                res.checks["ethnicity_snapped"] = f"{res.ethnicity}→{text}"
                res.ethnicity, res.confidence["ethnicity"] = text, min(scores)
                return

    def _fill_gaps(self, image: np.ndarray, h_in: np.ndarray, chars: list[P.Char], res: IdCardResult) -> list[P.Char]:
        """Re-read, from the rectified card, any field region the line detector missed or clipped.

        Single characters (男, 汉) and faint line starts are what the detector loses; the card homography says
        exactly where they are printed, so the recogniser reads that region directly at 48 px.
        """
        rereads: list[str] = []
        for name, box, start, width, allowed in RG.FIELD_REGIONS:
            x1, y1, x2, y2 = box
            inside = [c for c in chars if x1 <= c.x < x2 and y1 - 20 <= c.y < y2 + 20]
            if name.startswith("address") and not inside:
                prev_line = int(name[-1]) - 1
                if prev_line >= 0:
                    py1 = y1 - L.ADDRESS_LINE_STEP
                    prev = [c for c in chars if x1 <= c.x < x2 and py1 <= c.y < py1 + (y2 - y1)]
                    if len(prev) < L.ADDRESS_CHARS_PER_LINE - 1:
                        continue  # the address ended on the line before
            # CTC puts a character's spike late within its glyph: allow 1.6 widths before calling it clipped.
            ok = bool(inside) and min(c.x for c in inside) <= start + 1.6 * width
            if name == "birth" and ok:
                ok = len(re.findall(r"\d+", "".join(c.ch for c in sorted(inside, key=lambda c: c.x)))) >= 3
            if ok:
                continue
            region = RG.warp_region(image, h_in, box, RG.REC_SCALE_FOR[name])
            if not RG.has_ink(region):
                continue
            recs = self.ocr.recognize([cv2.resize(region, (max(8, round(region.shape[1] * 48 / region.shape[0])), 48))])
            text, scores, pos = self.ocr.decode_positions(recs[0][3], allowed)
            if not text:
                continue
            rereads.append(name)
            chars = [c for c in chars if not (x1 <= c.x < x2 and y1 - 20 <= c.y < y2 + 20)]
            cy = (y1 + y2) / 2
            chars += [
                P.Char(ch, sc, x1 + ps * (x2 - x1), cy, 10_000 + len(rereads))
                for ch, sc, ps in zip(text, scores, pos, strict=True)
            ]
        if rereads:
            res.checks["reread_regions"] = rereads
        return chars

    def _number(
        self,
        image: np.ndarray,
        lines: list[TextLine],
        number_idx: int | None,
        h_card: np.ndarray | None,
        up: np.ndarray,
        res: IdCardResult,
        today: dt.date,
    ) -> None:
        number = None
        conf = 0.0
        if number_idx is not None:
            text, scores, _ = self.ocr.decode_positions(lines[number_idx].probs, DIGITS)
            if len(text) == 18:
                number, conf = text, min(scores)
            res.checks["number_raw"] = text
        else:
            scores = []
        if number is None:
            partial = LN.partial_number_line(lines)
            if partial is not None:
                # A line cut short (glare, the edge of the level region): extend it to 18 characters' length.
                q = lines[partial].quad
                along = (q[1] - q[0]) / max(float(np.linalg.norm(q[1] - q[0])), 1e-6)
                far = q[0] + along * 16.5 * lines[partial].height
                ext = np.array([q[0], far, far + (q[3] - q[0]), q[3]], np.float32)
                src = G.apply(np.linalg.inv(up), ext).astype(np.float32)
                text, scores, _ = self.ocr.decode_positions(self.ocr.recognize([crop_quad(image, src)])[0][3], DIGITS)
                res.checks["number_extended"] = text
                number, conf, scores = LN.pick_number(text, scores)
        if number is None and h_card is not None:
            # The detector lost the number line altogether: read its printed place directly.
            scale = 48.0 / (RG.NUMBER_REGION[3] - RG.NUMBER_REGION[1])
            region = RG.warp_region(image, np.linalg.inv(up) @ h_card, RG.NUMBER_REGION, scale)
            text, scores, _ = self.ocr.decode_positions(self.ocr.recognize([region])[0][3], DIGITS)
            res.checks["number_reread"] = text
            number, conf, scores = LN.pick_number(text, scores)
        check = check_number(number, today)
        res.id_number = number
        res.id_number_valid = check.valid
        res.checks["number"] = {
            "format": check.format_ok,
            "checksum": check.checksum_ok,
            "region": check.region_ok,
            "date": check.date_ok,
            "region_name": check.region,
        }
        sure = number is not None and float(np.mean(scores)) >= 0.85 and conf >= 0.45
        res.checks["number_conf"] = {"mean": round(float(np.mean(scores)), 4) if scores else 0.0, "min": round(conf, 4)}
        if number is None or (not check.checksum_ok and not sure):
            # Unsure characters and a failing check digit: a misread, not a wrong number.
            res.add_error(self._unreadable_reason(image, lines, number_idx, h_card, up))
        elif not check.valid:
            res.add_error(ReasonCode.ID_CHECKSUM_FAILED)
        if not check.checksum_ok and number is not None:
            conf *= 0.5  # a failing check digit means at least one digit is probably wrong
        res.confidence["id_number"] = conf
        if check.checksum_ok and check.region_ok and number is not None and res.address:
            res.address, fixes = correct_address(res.address, number)
            if fixes:
                res.checks["address_corrected"] = fixes
        issues = cross_check(check, res.birth_date, res.sex)
        if issues:
            res.checks["inconsistent"] = issues
            res.add_error(ReasonCode.ID_FIELDS_INCONSISTENT)

    def _unreadable_reason(
        self,
        image: np.ndarray,
        lines: list[TextLine],
        number_idx: int | None,
        h_card: np.ndarray | None,
        up: np.ndarray,
    ) -> ReasonCode:
        """Why the number could not be read: glare over it, blur, or just unreadable."""
        region = None
        if h_card is not None:
            h_in = np.linalg.inv(up) @ h_card
            region = RG.warp_region(image, h_in, (600, 940, L.CARD_W - 60, 1100), 0.5)
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
        outside = (corners[:, 0] < -tol) | (corners[:, 0] > w + tol)
        outside |= (corners[:, 1] < -tol) | (corners[:, 1] > h + tol)
        if outside.any():
            res.add_error(ReasonCode.ID_CUT_OFF)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey or BGRA arrays (from other decoders) become the BGR uint8 the models expect."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _rank(res: IdCardResult) -> tuple[bool, bool, int, int]:
    """Which of two readings of one photo is better: a valid number, any number, more fields, fewer errors."""
    fields = sum(getattr(res, f) is not None for f in FIELDS)
    return res.id_number_valid, res.id_number is not None, fields, -len(res.errors)


def _elongated(quads: list[np.ndarray]) -> int:
    return sum(LN.quad_length(q) >= 2.5 * LN.quad_height(q) for q in quads)


def _usable(quads: list[np.ndarray]) -> bool:
    """Enough line-like boxes to tell the text direction and where the card's text lies."""
    return len(quads) >= 4 and _elongated(quads) >= 3
