"""Scoring step of the liveness check: what one tracked video measures, before any reason code is given.

The checker runs tracking (:mod:`pipelines.liveness.tracking`) → scoring (here) → reasons
(:mod:`pipelines.liveness.findings`) → fusion (:mod:`pipelines.liveness.fusion`); each step returns a value.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipelines.liveness.actions import (
    ActionConfig,
    ActionEvent,
    ActionEvidence,
    challenge_coverage,
    detect_events,
    verify_sequence,
)
from pipelines.liveness.capture import CaptureConfig
from pipelines.liveness.keyframes import identity_spread, passive_frames
from pipelines.liveness.motion import MotionConfig, MotionEvidence, measure_motion
from pipelines.liveness.passive import LogisticFusion
from pipelines.liveness.tracking import KeyFrame, Track
from pipelines.reasons import ReasonCode


@dataclass(frozen=True)
class ScoringConfig:
    actions: ActionConfig
    capture: CaptureConfig
    motion: MotionConfig
    passive_frames: int  # the passive score is the mean over this many best key frames
    fusion: LogisticFusion | None = None  # the calibrated combination of the models' scores (None: their mean)


@dataclass(frozen=True)
class Scores:
    """Every measurement of one video: passive score, action events, motion, identity spread, face coverage."""

    passive_keys: list[KeyFrame]
    passive_score: float  # 0.0 when no key frame had a face to score
    passive_by_model: tuple[float, ...]  # each model's mean over the same frames (empty without a scored frame)
    events: list[ActionEvent]
    evidence: list[ActionEvidence]
    action_reasons: list[ReasonCode]  # requested actions missing or out of order (verify_sequence's own verdict)
    # The share of the challenges of the requested length the video would have performed (0.0 without one).
    challenge_coverage: float
    motion: MotionEvidence
    identity_min: float | None
    missing_share: float
    timings: dict[str, float]


def score_track(track: Track, requested: Sequence[str], cfg: ScoringConfig) -> Scores:
    """Measure the tracked video: passive frames and score, challenge events, rigid motion, identity spread."""
    keys = track.key_frames
    chosen = passive_frames(keys, cfg.capture, cfg.passive_frames)
    events = detect_events(track.signals, cfg.actions)
    evidence, action_reasons = verify_sequence(requested, events)
    t_motion = time.perf_counter()
    motion = measure_motion([s.t for s in track.signals], track.mesh_points, cfg.motion)
    timings = {**track.timings_ms, "motion": (time.perf_counter() - t_motion) * 1000}
    by_model = tuple(float(v) for v in np.mean([k.passive_by_model for k in chosen], axis=0)) if chosen else ()
    if not chosen:
        passive = 0.0
    elif cfg.fusion is None:
        passive = float(np.mean([k.passive_score for k in chosen]))
    else:  # fitted on each model's mean over the frames, so applied to that
        passive = cfg.fusion.combine(by_model)
    return Scores(
        passive_keys=chosen,
        passive_score=passive,
        passive_by_model=by_model,
        events=events,
        evidence=evidence,
        action_reasons=action_reasons,
        challenge_coverage=challenge_coverage(events, len(requested)),
        motion=motion,
        identity_min=identity_spread(keys),
        missing_share=track.missing / max(track.n_frames, 1),
        timings=timings,
    )
