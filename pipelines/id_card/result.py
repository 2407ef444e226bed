"""Typed result of reading one ID-card image."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.detectors import Detection
from pipelines.reasons import ReasonCode

FIELDS = ("name", "sex", "ethnicity", "birth_date", "address", "id_number")


@dataclass
class IdCardResult:
    side: str | None = None  # "portrait" | "emblem" | None
    name: str | None = None
    sex: str | None = None
    ethnicity: str | None = None
    birth_date: dt.date | None = None
    address: str | None = None
    id_number: str | None = None
    id_number_valid: bool = False
    confidence: dict[str, float] = field(default_factory=dict)
    errors: list[ReasonCode] = field(default_factory=list)
    portrait_bbox: tuple[int, int, int, int] | None = None
    portrait: np.ndarray | None = field(default=None, repr=False)
    portrait_face: Detection | None = field(default=None, repr=False)  # the face found in `portrait`
    portrait_verified: bool = False
    issuing_authority: str | None = None
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    valid_long_term: bool = False
    expired: bool | None = None
    # Diagnostics: which checks failed and why, rotation applied, card corners on the input image, timings.
    checks: dict[str, Any] = field(default_factory=dict)
    rotation_deg: float | None = None
    card_quad: list[list[float]] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def add_error(self, code: ReasonCode) -> None:
        if code not in self.errors:
            self.errors.append(code)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "name": self.name,
            "sex": self.sex,
            "ethnicity": self.ethnicity,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "address": self.address,
            "id_number": self.id_number,
            "id_number_valid": self.id_number_valid,
            "confidence": {k: round(v, 4) for k, v in self.confidence.items()},
            "errors": [e.value for e in self.errors],
            "messages": [e.message_zh for e in self.errors],
            "portrait": list(self.portrait_bbox) if self.portrait_bbox else None,
            "portrait_verified": self.portrait_verified,
            "issuing_authority": self.issuing_authority,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "valid_long_term": self.valid_long_term,
            "expired": self.expired,
            "checks": self.checks,
            "rotation_deg": None if self.rotation_deg is None else round(self.rotation_deg, 1),
            "card_quad": self.card_quad,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
