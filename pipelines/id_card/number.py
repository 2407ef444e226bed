"""Number step of the ID-card reader: the 18-character citizen number, its checks, and what it tells about the
printed fields (address correction, cross-checks).

Every function returns what it found; the reader (:mod:`pipelines.id_card.reader`) composes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.id_card import geometry, layout, regions
from pipelines.id_card.config import ReaderConfig
from pipelines.id_card.lines import partial_number_line, pick_number
from pipelines.id_card.ocr import OcrEngine, TextLine, crop_quad
from pipelines.id_card.quality import glare_fraction, sharpness
from pipelines.id_card.validate import correct_address, cross_check
from pipelines.idnumber import NumberCheck, check_number
from pipelines.reasons import ReasonCode

DIGITS = "0123456789X"


@dataclass(frozen=True)
class CardGeometry:
    """What the number step needs of the locate step: the photo, its lines and where the card lies."""

    image: np.ndarray
    lines: list[TextLine]
    number_idx: int | None
    h_card: np.ndarray | None  # card → upright frame
    up: np.ndarray  # input → upright frame


@dataclass
class NumberReading:
    """The number as read, its check, its confidence, the reason it failed (if it did) and the diagnostics."""

    number: str | None
    check: NumberCheck
    confidence: float
    error: ReasonCode | None
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reconciled:
    """The address after correcting it by the number's region, and the printed fields the number contradicts."""

    address: str | None
    address_fixes: list[str]
    inconsistent: list[str]


def read_number(ocr: OcrEngine, card: CardGeometry, today: dt.date, config: ReaderConfig) -> NumberReading:
    """Decode the number line; else extend a partial one; else read its printed place through the card."""
    checks: dict[str, Any] = {}
    number, conf, scores = _read_digits(ocr, card, checks)
    check = check_number(number, today)
    checks["number"] = {
        "format": check.format_ok,
        "checksum": check.checksum_ok,
        "region": check.region_ok,
        "date": check.date_ok,
        "region_name": check.region,
    }
    sure = number is not None and float(np.mean(scores)) >= 0.85 and conf >= 0.45
    checks["number_conf"] = {"mean": round(float(np.mean(scores)), 4) if scores else 0.0, "min": round(conf, 4)}
    error: ReasonCode | None = None
    if number is None or (not check.checksum_ok and not sure):
        # Unsure characters and a failing check digit: a misread, not a wrong number.
        error = unreadable_reason(card, config)
    elif not check.valid:
        error = ReasonCode.ID_CHECKSUM_FAILED
    if not check.checksum_ok and number is not None:
        conf *= 0.5  # a failing check digit means at least one digit is probably wrong
    return NumberReading(number, check, conf, error, checks)


def _read_digits(ocr: OcrEngine, card: CardGeometry, checks: dict[str, Any]) -> tuple[str | None, float, list[float]]:
    """(number, its weakest character's score, every character's score); each attempt's text into ``checks``."""
    number = None
    conf = 0.0
    scores: list[float] = []
    image, lines = card.image, card.lines
    if card.number_idx is not None:
        text, scores, _ = ocr.decode_positions(lines[card.number_idx].probs, DIGITS)
        if len(text) == 18:
            number, conf = text, min(scores)
        checks["number_raw"] = text
    if number is None:
        partial = partial_number_line(lines)
        if partial is not None:
            # A line cut short (glare, the edge of the level region): extend it to 18 characters' length.
            q = lines[partial].quad
            along = (q[1] - q[0]) / max(float(np.linalg.norm(q[1] - q[0])), 1e-6)
            far = q[0] + along * 16.5 * lines[partial].height
            ext = np.array([q[0], far, far + (q[3] - q[0]), q[3]], np.float32)
            src = geometry.apply(np.linalg.inv(card.up), ext).astype(np.float32)
            text, scores, _ = ocr.decode_positions(ocr.recognize([crop_quad(image, src)])[0][3], DIGITS)
            checks["number_extended"] = text
            number, conf, scores = pick_number(text, scores)
    if number is None and card.h_card is not None:
        # The detector lost the number line altogether: read its printed place directly.
        scale = 48.0 / (regions.NUMBER_REGION[3] - regions.NUMBER_REGION[1])
        region = regions.warp_region(image, np.linalg.inv(card.up) @ card.h_card, regions.NUMBER_REGION, scale)
        text, scores, _ = ocr.decode_positions(ocr.recognize([region])[0][3], DIGITS)
        checks["number_reread"] = text
        number, conf, scores = pick_number(text, scores)
    return number, conf, scores


def unreadable_reason(card: CardGeometry, config: ReaderConfig) -> ReasonCode:
    """Why the number could not be read: glare over it, blur, or just unreadable."""
    region = None
    if card.h_card is not None:
        h_in = np.linalg.inv(card.up) @ card.h_card
        region = regions.warp_region(card.image, h_in, (600, 940, layout.CARD_W - 60, 1100), 0.5)
    elif card.number_idx is not None:
        quad = geometry.apply(np.linalg.inv(card.up), card.lines[card.number_idx].quad)
        region = crop_quad(card.image, quad, 48)
    if region is not None and region.size:
        glare = glare_fraction(region)
        sharp = sharpness(region)
        if glare > config.glare_threshold:
            return ReasonCode.ID_GLARE
        if sharp < config.blur_threshold:
            return ReasonCode.ID_TOO_BLURRY
    return ReasonCode.ID_NUMBER_UNREADABLE


def reconcile(reading: NumberReading, address: str | None, birth_date: dt.date | None, sex: str | None) -> Reconciled:
    """A number whose check digit and region hold corrects the address's region name; the number's birth date
    and sex are compared with the printed ones."""
    check = reading.check
    fixes: list[str] = []
    if check.checksum_ok and check.region_ok and reading.number is not None and address:
        address, fixes = correct_address(address, reading.number)
    return Reconciled(address, fixes, cross_check(check, birth_date, sex))
