"""Typed results of the liveness stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.face_match import FaceObservation
from pipelines.liveness.actions import ActionEvent, ActionEvidence
from pipelines.liveness.fusion import Verdict
from pipelines.liveness.light_response import ColourSample, LightResponse
from pipelines.reasons import ReasonCode


@dataclass(frozen=True)
class BestFrame:
    """A sharp, near-frontal frame for face matching: time (s), BGR image (analysis size), its face."""

    t: float
    image: np.ndarray
    observation: FaceObservation
    passive_score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "passive_score": round(self.passive_score, 4),
            **self.observation.summary(),
        }


@dataclass
class LivenessResult:
    passed: bool
    reasons: list[ReasonCode]
    passive_score: float
    passive_threshold: float
    actions: list[ActionEvidence]
    frames_analyzed: int
    best_frames: list[BestFrame]
    video_sha256: str
    frame_hashes: list[int]
    duration_s: float
    challenge: list[str] = field(default_factory=list)
    # pass / review (a person decides) / retake (poor capture) / reject, and the signal that drove it.
    verdict: Verdict = Verdict.REJECT
    driver: str = ""
    passive_review_floor: float = 0.0
    # Times of the key frames the passive score was taken on; capture measurements and motion evidence.
    passive_frames: list[float] = field(default_factory=list)
    capture: dict[str, Any] = field(default_factory=dict)
    motion: dict[str, Any] = field(default_factory=dict)
    events: list[ActionEvent] = field(default_factory=list)
    max_faces: int = 0
    face_missing_share: float = 0.0
    identity_min_similarity: float | None = None
    frame_scores: list[tuple[float, float]] = field(default_factory=list)
    video: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    calibration_version: str = ""
    # Each anti-spoofing model's own score on the passive frames (model name → score); passive_score is the mean.
    passive_by_model: dict[str, float] = field(default_factory=dict)
    # The screen-light challenge: the face's response to the sequence the page showed (None: none was issued),
    # and the mode it was judged in ("observe": reported only; "enforce": a pass needs it seen).
    light: LightResponse | None = None
    light_mode: str = "observe"
    # Every tracked frame's face and background colours (not in the JSON: the evaluation reuses them).
    colour_samples: list[ColourSample] = field(default_factory=list, repr=False)

    def to_dict(self, verbose: bool = False) -> dict[str, Any]:
        """The JSON answer. ``verbose`` adds the per-frame perceptual hashes (~3 KB): replay detection stores
        them itself (VideoFingerprintStore), so neither the CLI nor the stored session result needs them."""
        out = {
            "passed": self.passed,
            "verdict": self.verdict.value,
            "driver": self.driver,
            "reasons": [r.value for r in self.reasons],
            "messages": [r.message_zh for r in self.reasons],  # the name every output uses
            "passive_score": round(self.passive_score, 4),
            "passive_threshold": round(self.passive_threshold, 4),
            "passive_review_floor": round(self.passive_review_floor, 4),
            "passive_by_model": {k: round(v, 4) for k, v in self.passive_by_model.items()},
            "passive_frames": self.passive_frames,
            "capture": self.capture,
            "motion": self.motion,
            "challenge": self.challenge,
            "actions": [a.to_dict() for a in self.actions],
            "events": [{"name": e.name, "t": round(e.t, 3), "amplitude": round(e.amplitude, 3)} for e in self.events],
            "frames_analyzed": self.frames_analyzed,
            "duration_s": round(self.duration_s, 3),
            "max_faces": self.max_faces,
            "face_missing_share": round(self.face_missing_share, 3),
            "identity_min_similarity": (
                None if self.identity_min_similarity is None else round(self.identity_min_similarity, 4)
            ),
            "frame_scores": [{"t": round(t, 3), "score": round(s, 4)} for t, s in self.frame_scores],
            "best_frames": [b.to_dict() for b in self.best_frames],
            "video_sha256": self.video_sha256,
            "video": self.video,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "models": self.models,
            "calibration_version": self.calibration_version,
            "light": None if self.light is None else {**self.light.to_dict(), "mode": self.light_mode},
        }
        if verbose:
            out["frame_hashes"] = [f"{h:064x}" for h in self.frame_hashes]
        return out
