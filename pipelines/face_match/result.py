"""Typed results of the face-matching stage."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipelines.face_match.quality import FaceQuality
from pipelines.reasons import ReasonCode


class Band(enum.StrEnum):
    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"


@dataclass(frozen=True)
class Thresholds:
    """Cosine thresholds of one recognizer: accept at or above `accept`, review down to `review`."""

    accept: float
    review: float
    accept_far: str
    review_far: str
    recognizer: str
    calibration_version: str
    # On whom each threshold was measured (the population that set it: see calibration.json).
    accept_population: str = "lfw"
    review_population: str = "lfw"

    def band(self, similarity: float) -> Band:
        if similarity >= self.accept:
            return Band.ACCEPT
        if similarity >= self.review:
            return Band.REVIEW
        return Band.REJECT


@dataclass(frozen=True)
class FaceObservation:
    """One detected, aligned and embedded face."""

    bbox: tuple[float, float, float, float]
    det_score: float
    kps: np.ndarray
    quality: FaceQuality
    embedding: np.ndarray
    faces_in_image: int = 1

    def summary(self) -> dict[str, Any]:
        return {
            "bbox": [round(v, 1) for v in self.bbox],
            "det_score": round(self.det_score, 4),
            "faces_in_image": self.faces_in_image,
            "quality": quality_dict(self.quality),
        }


@dataclass(frozen=True)
class FrameEvidence:
    index: int
    similarity: float
    used: bool
    quality: FaceQuality


@dataclass(frozen=True)
class MatchResult:
    similarity: float
    band: Band
    thresholds: Thresholds
    frames: list[FrameEvidence]
    reasons: list[ReasonCode]
    quality_flags: list[str]
    reference: FaceObservation
    models: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": round(self.similarity, 6),
            "band": self.band.value,
            "reasons": [r.value for r in self.reasons],
            "quality_flags": self.quality_flags,
            "thresholds": asdict(self.thresholds),
            "frames": [
                {
                    "index": f.index,
                    "similarity": round(f.similarity, 6),
                    "used": f.used,
                    "quality": quality_dict(f.quality),
                }
                for f in self.frames
            ],
            "reference": self.reference.summary(),
            "models": self.models,
        }


def quality_dict(q: FaceQuality) -> dict[str, Any]:
    return {
        "interocular_px": round(q.interocular_px, 1),
        "face_px": round(q.face_px, 1),
        "sharpness": round(q.sharpness, 1),
        "yaw_deg": round(q.yaw_deg, 1),
        "pitch_deg": round(q.pitch_deg, 1),
        "roll_deg": round(q.roll_deg, 1),
        "brightness": round(q.brightness, 1),
        "flags": [f.value for f in q.flags],
    }
