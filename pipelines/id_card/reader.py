"""ID-card reader: locate text → fix rotation → recognise lines → place characters on the template → fields.

The steps live in their own modules and return values: :mod:`~pipelines.id_card.locate` (text boxes, upright
lines, the card's place), :mod:`~pipelines.id_card.fields` (the printed fields, the emblem side) and
:mod:`~pipelines.id_card.number` (the citizen number and what it says about the fields). The reader composes
them into one ``IdCardResult``.

Cost model (2 cores): one or two text-detection passes on small copies of the photo (≤480 px, then the text
region levelled at ~15-px text), the direction classifier on a few lines, and the recogniser once per text line
at its own width. No full-resolution detection, no classifier on every line, and no 320-px padding of short
fields, which is where a plain RapidOCR call spends its time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from models.packs import ModelPack, load_pack
from pipelines.face_match import FaceMatcher
from pipelines.id_card import geometry, parse, regions
from pipelines.id_card.config import ReaderConfig
from pipelines.id_card.fields import CardFields, emblem_fields, read_fields, shows_emblem
from pipelines.id_card.lines import number_line, touches_border
from pipelines.id_card.locate import Oriented, card_homography, detect_text, orient_and_read, place_card
from pipelines.id_card.number import CardGeometry, read_number, reconcile
from pipelines.id_card.ocr import OcrEngine, TextLine
from pipelines.id_card.portrait import Portrait, PortraitFinder
from pipelines.id_card.result import FIELDS, IdCardResult
from pipelines.reasons import ReasonCode

__all__ = ["IdCardReader", "ReaderConfig"]

log = logging.getLogger(__name__)


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

    def read_emblem(self, image_bgr: np.ndarray, today: dt.date | None = None) -> IdCardResult:
        """Read the emblem side (issuing authority, validity). ID_WRONG_SIDE is not raised for it here."""
        res = self.read(image_bgr, today)
        if res.side == "emblem" and ReasonCode.ID_WRONG_SIDE in res.errors:
            res.errors.remove(ReasonCode.ID_WRONG_SIDE)
        elif res.side == "portrait":
            res.add_error(ReasonCode.ID_WRONG_SIDE)
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

    # -- composition of the steps ---------------------------------------------------------------------

    def _read(self, image_bgr: np.ndarray, res: IdCardResult, today: dt.date, t0: float, levelled: bool) -> None:
        quads = self._detect(image_bgr, levelled)
        res.timings_ms["detect"] = (time.perf_counter() - t0) * 1000
        angle = geometry.text_direction(quads)
        if len(quads) < 2 or angle is None:
            res.add_error(ReasonCode.ID_TOO_BLURRY if regions.too_blurry(image_bgr) else ReasonCode.ID_NOT_A_CARD)
            return
        up, lines = self._orient_and_read(image_bgr, quads, angle, res)
        res.timings_ms["recognize"] = (time.perf_counter() - t0) * 1000 - res.timings_ms["detect"]
        self._interpret(image_bgr, up, lines, res, today)

    def _detect(self, image: np.ndarray, levelled: bool = True) -> list[np.ndarray]:
        return detect_text(self.ocr, image, self.config, levelled)

    def _orient_and_read(
        self, image: np.ndarray, quads: list[np.ndarray], angle: float, res: IdCardResult
    ) -> tuple[np.ndarray, list[TextLine]]:
        oriented: Oriented = orient_and_read(self.ocr, image, quads, angle, self.config)
        res.rotation_deg = oriented.rotation_deg
        return oriented.up, oriented.lines

    def _interpret(
        self, image: np.ndarray, up: np.ndarray, lines: list[TextLine], res: IdCardResult, today: dt.date
    ) -> None:
        texts = [parse.normalize(ln.text) for ln in lines]
        number_idx = number_line(texts)
        emblem = shows_emblem(texts)
        h_card = card_homography(lines, texts, number_idx)
        portrait_side = number_idx is not None or (
            h_card is not None and sum(t.startswith(k) for t in texts for k in geometry.CAPTION_LEFT_CORNERS) >= 2
        )
        if emblem:
            _apply_emblem(res, lines, today)
        if not portrait_side:
            res.side = "emblem" if emblem else None
            if emblem:
                res.add_error(ReasonCode.ID_WRONG_SIDE)
            else:
                res.add_error(ReasonCode.ID_TOO_BLURRY if regions.too_blurry(image) else ReasonCode.ID_NOT_A_CARD)
            return
        res.side = "portrait"
        portrait: Future[Portrait] | None = None
        if h_card is not None:
            placement = place_card(image, up, h_card, self.config.cut_off_margin)
            # The face check needs only the card's place: it runs beside the field reading on the other core.
            portrait = self._side.submit(self.portraits.find, image, placement.h_in)
            res.card_quad = placement.card_quad
            if placement.cut_off:
                res.add_error(ReasonCode.ID_CUT_OFF)
            _apply_fields(res, read_fields(self.ocr, image, up, lines, h_card, number_idx))
        else:
            res.add_error(ReasonCode.ID_CUT_OFF if touches_border(lines, up, image) else ReasonCode.ID_NOT_A_CARD)
        self._apply_number(res, CardGeometry(image, lines, number_idx, h_card, up), today)
        if portrait is not None:
            _apply_portrait(res, portrait.result())

    def _apply_number(self, res: IdCardResult, card: CardGeometry, today: dt.date) -> None:
        reading = read_number(self.ocr, card, today, self.config)
        res.id_number = reading.number
        res.id_number_valid = reading.check.valid
        res.checks.update(reading.checks)
        if reading.error is not None:
            res.add_error(reading.error)
        res.confidence["id_number"] = reading.confidence
        fixed = reconcile(reading, res.address, res.birth_date, res.sex)
        res.address = fixed.address
        if fixed.address_fixes:
            res.checks["address_corrected"] = fixed.address_fixes
        if fixed.inconsistent:
            res.checks["inconsistent"] = fixed.inconsistent
            res.add_error(ReasonCode.ID_FIELDS_INCONSISTENT)


def _apply_emblem(res: IdCardResult, lines: list[TextLine], today: dt.date) -> None:
    found = emblem_fields(lines, today)
    res.issuing_authority, res.valid_from, res.valid_until = (
        found.issuing_authority,
        found.valid_from,
        found.valid_until,
    )
    res.valid_long_term, res.expired = found.valid_long_term, found.expired
    if found.expired:
        res.add_error(ReasonCode.ID_EXPIRED)


def _apply_fields(res: IdCardResult, found: CardFields) -> None:
    res.name, res.sex, res.ethnicity = found.name, found.sex, found.ethnicity
    res.birth_date, res.address = found.birth_date, found.address
    res.confidence.update(found.confidence)
    res.checks.update(found.checks)


def _apply_portrait(res: IdCardResult, found: Portrait) -> None:
    res.portrait_bbox, res.portrait_verified = found.bbox, found.face is not None
    res.checks["portrait_faces"] = found.faces
    if found.face is not None:
        res.portrait = found.crop
        res.portrait_face = found.face if found.aligned_by_matcher else None
    else:
        # The card's own code: FACE_NOT_FOUND would tell the citizen to face the camera.
        res.add_error(ReasonCode.ID_PORTRAIT_NO_FACE)


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
