"""The cross-validated protocol: choose on the other folds, measure on each, pool, add intervals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pipelines.liveness.evaluation.core import (
    SPOOF,
    ErrorRates,
    Outcome,
    Presentation,
    error_rates,
    measure,
)
from pipelines.liveness.evaluation.folds import (
    calibration_pool,
    subject_folds,
)
from pipelines.liveness.evaluation.intervals import (
    BootstrapIntervals,
    bootstrap_intervals,
)
from pipelines.liveness.evaluation.thresholds import (
    ThresholdChoice,
    choose_motion_ratio,
    choose_threshold,
    with_motion_rule,
)
from pipelines.liveness.motion import DEFAULT_MIN_RATIO

# ----------------------------------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Protocol:
    folds: int = 5
    seed: int = 0
    target_apcer: float = 0.01
    target_bpcer: float = 0.02
    # The rigid-motion ratio threshold: fixed at the deployed design value (a hand-held photo must be refused in
    # every mode), or None to choose it on the calibration folds within `target_motion_bpcer` of genuine people.
    motion_min_ratio: float | None = DEFAULT_MIN_RATIO
    target_motion_bpcer: float = 0.01
    n_boot: int = 1000
    confidence: float = 0.95


@dataclass(frozen=True)
class FoldResult:
    index: int
    n_calibration: int
    n_measured: int
    choice: ThresholdChoice
    measured: ErrorRates


@dataclass(frozen=True)
class Evaluation:
    protocol: Protocol
    folds: list[FoldResult]
    out_of_fold: ErrorRates  # every presentation measured once, at its own fold's threshold
    intervals: BootstrapIntervals
    deployment: ThresholdChoice  # chosen on all the data
    in_sample: ErrorRates  # all the data at the deployment threshold: optimistic
    n_presentations: int
    n_subjects: int
    n_unknown_subject: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _presentation_counts(presentations: Sequence[Presentation]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for p in presentations:
        group = f"attack:{p.attack_type}" if p.label == SPOOF else f"real:{p.condition}"
        flags = (("n", True), ("hard_reject", p.hard_reject), ("retake", p.retake), ("capture_poor", p.capture_poor))
        for name, flag in (*flags, ("review", p.review)):
            counts[group][name] += int(bool(flag))
    return {g: dict(c) for g, c in sorted(counts.items())}


def choose_operating_point(cal: Sequence[Presentation], protocol: Protocol) -> ThresholdChoice:
    """The motion ratio first (its own BPCER budget), then the passive threshold and floor given what it rejects."""
    ratio = protocol.motion_min_ratio
    if ratio is None:
        ratio = choose_motion_ratio(cal, protocol.target_motion_bpcer)
    moved = [with_motion_rule(p, ratio) for p in cal]
    return replace(choose_threshold(moved, protocol.target_apcer, protocol.target_bpcer), motion_min_ratio=ratio)


def evaluate(presentations: Sequence[Presentation], protocol: Protocol = Protocol()) -> Evaluation:
    """Cross-validated rates with intervals, plus the deployment threshold chosen on everything."""
    keys = [p.key for p in presentations]
    if len(set(keys)) != len(keys):
        raise ValueError("presentation keys must be unique: a duplicate would be counted twice")
    folds = subject_folds(presentations, protocol.folds, protocol.seed)
    results: list[FoldResult] = []
    outcomes: list[Outcome] = []
    for i, fold in enumerate(folds):
        cal = calibration_pool(folds, i)
        choice = choose_operating_point(cal, protocol)
        ratio = choice.motion_min_ratio or 0.0
        measured = [Outcome(with_motion_rule(p, ratio), choice.threshold, i) for p in fold]
        outcomes.extend(measured)
        results.append(FoldResult(i, len(cal), len(fold), choice, error_rates(measured)))
    deployment = choose_operating_point(presentations, protocol)
    return assemble(presentations, protocol, results, outcomes, deployment, presentations)


def assemble(
    presentations: Sequence[Presentation],
    protocol: Protocol,
    folds: list[FoldResult],
    outcomes: Sequence[Outcome],
    deployment: ThresholdChoice,
    scored: Sequence[Presentation],
) -> Evaluation:
    """The evaluation of measured folds: pooled out-of-fold rates with intervals, and the deployment choice's
    in-sample rates on `scored` (the presentations as the deployed stage scores them)."""
    deployed = [with_motion_rule(p, deployment.motion_min_ratio or 0.0) for p in scored]
    return Evaluation(
        protocol=protocol,
        folds=folds,
        out_of_fold=error_rates(outcomes),
        intervals=bootstrap_intervals(outcomes, protocol.n_boot, protocol.seed, protocol.confidence),
        deployment=deployment,
        in_sample=measure(deployed, deployment.threshold),
        n_presentations=len(presentations),
        n_subjects=len({p.subject for p in presentations if p.subject}),
        n_unknown_subject=sum(1 for p in presentations if not p.subject),
        counts=_presentation_counts(presentations),
    )
