"""Fields step of the ID-card reader: characters placed on the card template → name, sex, ethnicity, birth date,
address; and the emblem side's authority and validity.

Every function returns what it read; the reader (:mod:`pipelines.id_card.reader`) composes them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pipelines.id_card import geometry, layout, parse, regions
from pipelines.id_card.lines import quad_length, reading_order
from pipelines.id_card.ocr import OcrEngine, TextLine

EMBLEM_MARKERS = ("签发机关", "有效期限", "居民身份证", "中华人民共和国")


@dataclass(frozen=True)
class EmblemFields:
    issuing_authority: str | None
    valid_from: dt.date | None
    valid_until: dt.date | None
    valid_long_term: bool
    expired: bool | None


@dataclass
class CardFields:
    """The portrait side's text fields, their confidences and the diagnostics of reading them (in the order the
    reader reports them)."""

    name: str | None
    sex: str | None
    ethnicity: str | None
    birth_date: dt.date | None
    address: str | None
    confidence: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)


def shows_emblem(texts: list[str]) -> bool:
    return any(m in t for t in texts for m in EMBLEM_MARKERS)


def emblem_fields(lines: list[TextLine], today: dt.date) -> EmblemFields:
    """Issuing authority and validity; expired when the validity ended before ``today`` (never for long-term)."""
    auth, start, until, long_term = parse.emblem_fields(reading_order(lines))
    expired: bool | None = None
    if until is not None:
        expired = until < today
    elif long_term:
        expired = False
    return EmblemFields(auth, start, until, long_term, expired)


def read_fields(
    ocr: OcrEngine,
    image: np.ndarray,
    up: np.ndarray,
    lines: list[TextLine],
    h_card: np.ndarray,
    number_idx: int | None,
) -> CardFields:
    """Place every recognised character (the number line aside) on the card, re-read missed regions, parse."""
    chars = _place_chars(ocr, lines, h_card, number_idx)
    h_in = np.linalg.inv(up) @ h_card
    chars, rereads = _fill_gaps(ocr, image, h_in, chars)
    checks: dict[str, Any] = {}
    if rereads:
        checks["reread_regions"] = rereads
    confidence: dict[str, float] = {}
    name, confidence["name"] = parse.name_field(chars)
    sex, confidence["sex"] = parse.sex_field(chars)
    ethnicity, confidence["ethnicity"] = parse.ethnicity_field(chars)
    if ethnicity not in parse.ETHNICITY_NAMES:
        snapped = _snap_ethnicity(ocr, image, np.linalg.inv(up) @ h_card)
        if snapped is not None:
            checks["ethnicity_snapped"] = f"{ethnicity}→{snapped[0]}"
            ethnicity, confidence["ethnicity"] = snapped
    birth_date, confidence["birth_date"], raw = parse.birth_field(chars)
    address, confidence["address"] = parse.address_field(chars)
    checks["birth_text"] = raw
    found = CardFields(name, sex, ethnicity, birth_date, address, confidence, checks)
    missing = [f for f in ("name", "sex", "birth_date", "address") if getattr(found, f) is None]
    if missing:
        checks["missing_fields"] = missing
    return found


def _place_chars(ocr: OcrEngine, lines: list[TextLine], h_card: np.ndarray, number_idx: int | None) -> list[parse.Char]:
    """Every character of every line but the number's, at its place on the card template."""
    to_card = np.linalg.inv(h_card)
    chars: list[parse.Char] = []
    for i, ln in enumerate(lines):
        if i == number_idx:
            continue
        centre = geometry.apply(to_card, np.array([ln.center]))[0]
        allowed = regions.BIRTH_CHARS if parse.BIRTH_BAND[0] <= centre[1] < parse.BIRTH_BAND[1] else None
        text, scores, read_pos = ocr.decode_positions(ln.probs, allowed)
        if not text:
            continue
        pos = ln.along(read_pos)
        q = ln.quad
        top = q[0][None, :] + np.outer(pos, q[1] - q[0])
        bottom = q[3][None, :] + np.outer(pos, q[2] - q[3])
        card_pts = geometry.apply(to_card, (top + bottom) / 2)
        ends = geometry.apply(to_card, np.array([(q[0] + q[3]) / 2, (q[1] + q[2]) / 2]))
        pad = 0.25 * ln.height * float(np.linalg.norm(ends[1] - ends[0])) / max(quad_length(q), 1.0)
        lo, hi = float(ends[:, 0].min()) + pad, float(ends[:, 0].max()) - pad
        chars += [
            parse.Char(c, s, float(p[0]), float(p[1]), i, min(float(p[0]) - lo, hi - float(p[0])))
            for c, s, p in zip(text, scores, card_pts, strict=True)
        ]
    return chars


def _snap_ethnicity(ocr: OcrEngine, image: np.ndarray, h_in: np.ndarray) -> tuple[str, float] | None:
    """An ethnicity outside the closed list is a misread: read its region again, constrained to the list's
    characters, and keep the result (with its confidence) only if it is a listed name."""
    name, box, _, _, allowed = next(r for r in regions.FIELD_REGIONS if r[0] == "ethnicity")
    region = regions.warp_region(image, h_in, box, regions.REC_SCALE_FOR[name])
    # The recogniser often returns nothing for a lone blurred glyph followed by blank card; a crop trimmed to
    # the ink is read far more reliably, so that is tried first.
    for crop in (regions.trim_to_ink(region), region):
        if crop is None:
            continue
        text, scores, _ = ocr.decode_positions(ocr.recognize([crop])[0][3], allowed)
        text = text[1:] if text.startswith("族") and len(text) > 1 else text
        if text in parse.ETHNICITY_NAMES:
            return text, min(scores)
    return None


def _fill_gaps(
    ocr: OcrEngine, image: np.ndarray, h_in: np.ndarray, chars: list[parse.Char]
) -> tuple[list[parse.Char], list[str]]:
    """Re-read, from the rectified card, any field region the line detector missed or clipped; returns the
    characters and the names of the regions re-read.

    Single characters (男, 汉) and faint line starts are what the detector loses; the card homography says
    exactly where they are printed, so the recogniser reads that region directly at 48 px.
    """
    rereads: list[str] = []
    for name, box, start, width, allowed in regions.FIELD_REGIONS:
        x1, y1, x2, y2 = box
        inside = [c for c in chars if x1 <= c.x < x2 and y1 - 20 <= c.y < y2 + 20]
        if _address_ended_before(name, box, chars, inside):
            continue
        # CTC puts a character's spike late within its glyph: allow 1.6 widths before calling it clipped.
        ok = bool(inside) and min(c.x for c in inside) <= start + 1.6 * width
        if name == "birth" and ok:
            ok = len(re.findall(r"\d+", "".join(c.ch for c in sorted(inside, key=lambda c: c.x)))) >= 3
        if ok:
            continue
        region = regions.warp_region(image, h_in, box, regions.REC_SCALE_FOR[name])
        if not regions.has_ink(region):
            continue
        recs = ocr.recognize([cv2.resize(region, (max(8, round(region.shape[1] * 48 / region.shape[0])), 48))])
        text, scores, pos = ocr.decode_positions(recs[0][3], allowed)
        if not text:
            continue
        rereads.append(name)
        chars = [c for c in chars if not (x1 <= c.x < x2 and y1 - 20 <= c.y < y2 + 20)]
        cy = (y1 + y2) / 2
        chars += [
            parse.Char(ch, sc, x1 + ps * (x2 - x1), cy, 10_000 + len(rereads))
            for ch, sc, ps in zip(text, scores, pos, strict=True)
        ]
    return chars, rereads


def _address_ended_before(
    name: str, box: tuple[float, float, float, float], chars: list[parse.Char], inside: list[parse.Char]
) -> bool:
    """An empty address line after a line that was not full: the address ended there, nothing to re-read."""
    if not name.startswith("address") or inside:
        return False
    prev_line = int(name[-1]) - 1
    if prev_line < 0:
        return False
    x1, y1, x2, y2 = box
    py1 = y1 - layout.ADDRESS_LINE_STEP
    prev = [c for c in chars if x1 <= c.x < x2 and py1 <= c.y < py1 + (y2 - y1)]
    return len(prev) < layout.ADDRESS_CHARS_PER_LINE - 1
