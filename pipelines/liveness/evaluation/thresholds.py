"""Choosing the operating point on calibration data: passive threshold and review floor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipelines.liveness.evaluation.core import (
    _EPS,
    BPCER,
    REAL,
    SCORE_MAX,
    SPOOF,
    Presentation,
    Rate,
    measure,
)
from pipelines.liveness.motion import DEFAULT_MIN_RATIO

# ---------------------------------------------------------------------------------------------- threshold choice


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    rule: str
    cal_apcer: dict[str, Rate]  # per attack type: n is the resolution (one accepted attack = 1/n)
    cal_bpcer: Rate  # retakes left out, as in `bpcer`
    met_target: bool  # the calibration BPCER is also ≤ target_bpcer
    target_apcer: float
    target_bpcer: float
    binding_type: str | None  # the attack type whose score fixed the threshold
    # Below it a score is a clear spoof; between it and the threshold a performed challenge goes to review.
    review_floor: float = 0.0
    # Motion ratios under it are "moved only as a flat picture": chosen first (`choose_motion_ratio`).
    motion_min_ratio: float | None = None


# The motion cue's design value: the protocol never makes it stricter.
MOTION_RATIO_CAP = DEFAULT_MIN_RATIO


def _allowed(target: float, n: int) -> int:
    """How many of n may fall on the wrong side at this target rate (0.01 × 300 must give 3, not 2)."""
    return math.floor(target * n + _EPS)


def _acquired_reals(cal: Sequence[Presentation]) -> list[Presentation]:
    return [p for p in cal if p.label == REAL and not p.hard_reject and not p.retake]


def rigid_at(p: Presentation, min_ratio: float) -> bool:
    return p.motion_ratio is not None and p.motion_ratio < min_ratio


def with_motion_rule(p: Presentation, min_ratio: float) -> Presentation:
    """The presentation as the stage treats it when ratios under `min_ratio` count as rigid (fusion.py): a
    rejection, or a retake on a poor capture."""
    if not rigid_at(p, min_ratio):
        return p
    return replace(p, retake=True) if p.capture_poor else replace(p, hard_reject=True)


def choose_motion_ratio(cal: Sequence[Presentation], target_bpcer: float = 0.01) -> float:
    """The highest ratio threshold (≤ MOTION_RATIO_CAP) under which at most `target_bpcer` of the acquired real
    presentations fall: the rigid-motion cue may cost at most that share of genuine people."""
    reals = _acquired_reals(cal)
    ratios = sorted(p.motion_ratio for p in reals if p.motion_ratio is not None)
    allowed = _allowed(target_bpcer, len(reals))
    if len(ratios) <= allowed:
        return MOTION_RATIO_CAP
    return min(ratios[allowed], MOTION_RATIO_CAP)


def choose_review_floor(cal: Sequence[Presentation], threshold: float, target_bpcer: float = 0.02) -> float:
    """The highest floor (≤ threshold) under which at most target_bpcer of the acquired real presentations score.

    Real people scoring between the floor and the threshold are not rejected when they perform the challenge
    with live motion: a person looks at the evidence (pipelines/liveness/fusion.py).
    """
    reals = sorted(p.score for p in _acquired_reals(cal))
    if not reals:
        return threshold
    allowed = _allowed(target_bpcer, len(reals))
    return min(reals[min(allowed, len(reals) - 1)], threshold)


def _critical_score(cal: Sequence[Presentation], target_apcer: float) -> tuple[float, str] | None:
    """The highest attack score the threshold must lie above so that every type keeps APCER ≤ target."""
    worst: tuple[float, str] | None = None
    for attack_type in sorted({p.attack_type for p in cal if p.label == SPOOF}):
        acquired = [p for p in cal if p.label == SPOOF and p.attack_type == attack_type and not p.retake]
        # Hard-rejected attacks are caught whatever the threshold: they count in n, never as accepted.
        scores = sorted((p.score for p in acquired if not p.hard_reject), reverse=True)
        allowed = _allowed(target_apcer, len(acquired))
        if len(scores) > allowed and (worst is None or scores[allowed] > worst[0]):
            worst = (scores[allowed], attack_type)
    return worst


def choose_threshold(
    cal: Sequence[Presentation], target_apcer: float = 0.01, target_bpcer: float = 0.02
) -> ThresholdChoice:
    """The lowest-BPCER threshold with APCER ≤ target_apcer for every attack type on `cal`.

    BPCER only grows with the threshold, so the answer is just above the critical attack score. Every threshold
    up to the next calibration score classifies `cal` the same way; the midpoint of that gap is taken, the
    place the calibration data say least about (the rule of `calibrate.py` too).
    """
    if not cal:
        raise ValueError("no calibration presentations")
    critical = _critical_score(cal, target_apcer)
    if critical is None:
        threshold, binding = 0.0, None
        rule = "APCER target met with no help from the passive score (no acquired attack it must reject): 0"
    else:
        crit, binding = critical
        # Only scores that decide a classification bound the gap; hard rejects and retakes are decided already.
        above = [p.score for p in cal if p.score > crit and not p.hard_reject and not p.retake]
        upper = min(above) if above else SCORE_MAX
        threshold = (crit + upper) / 2 if upper > crit else float(np.nextafter(crit, math.inf))
        rule = f"lowest BPCER with APCER <= {target_apcer:g} per attack type: midpoint above the {binding} score"
    rates = measure(cal, threshold)
    bpcer = rates.rate(BPCER)
    met = bpcer.value is not None and bpcer.value <= target_bpcer + _EPS
    floor = choose_review_floor(cal, threshold, target_bpcer)
    apcer = rates.apcer_by_type()
    return ThresholdChoice(threshold, rule, apcer, bpcer, met, target_apcer, target_bpcer, binding, floor)
