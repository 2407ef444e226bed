"""Presentations, their classification at a threshold, and the error rates (ISO/IEC 30107-3)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

REAL, SPOOF = "real", "spoof"
NO_ATTACK = "none"
ALL = "all"

APCER = "apcer"
ATTACK_RETAKE_RATE = "attack_retake_rate"
BPCER = "bpcer"
BPCER_WITH_RETAKES = "bpcer_with_retakes"
RETAKE_RATE = "retake_rate"
METRICS = (APCER, ATTACK_RETAKE_RATE, BPCER, BPCER_WITH_RETAKES, RETAKE_RATE)

RateKey = tuple[str, str]  # (metric, attack type or capture condition or ALL)

# Scores are P(real) in [0, 1]; a threshold above the highest calibration score is placed towards this bound.
SCORE_MAX = 1.0
# Guards floor(target × n) against 0.01 × 300 = 2.9999999999999996.
_EPS = 1e-9
_DIGITS = 6


@dataclass(frozen=True)
class Presentation:
    """One presentation to the liveness stage and the stage's findings on it."""

    key: str
    label: str  # REAL or SPOOF
    attack_type: str  # NO_ATTACK for real presentations
    condition: str  # capture condition: "clean", "low_light", ...; attacks have one too
    subject: str  # "" = unknown
    score: float  # passive P(real): higher = more real
    hard_reject: bool = False  # rejected by a signal other than the passive score (still face, face missing, ...)
    retake: bool = False  # asked to film again whatever the threshold (e.g. the file could not be analysed)
    review: bool | None = None
    # A poor capture (dark, back-lit, blurred, small face): the stage asks for a retake exactly when the passive
    # score fails there, so whether this presentation is a retake depends on the threshold (see `retake_at`).
    capture_poor: bool = False
    # The rigid-motion ratio when the face moved enough to be judged (None: it hardly moved, no evidence): the
    # cue's own threshold is chosen by the protocol too (`thresholds.with_motion_rule`).
    motion_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.label not in (REAL, SPOOF):
            raise ValueError(f"{self.key}: label must be {REAL!r} or {SPOOF!r}, not {self.label!r}")
        if (self.label == REAL) != (self.attack_type == NO_ATTACK):
            raise ValueError(f"{self.key}: attack_type must be {NO_ATTACK!r} exactly for real presentations")
        if ALL in (self.attack_type, self.condition):
            raise ValueError(f"{self.key}: {ALL!r} is reserved for the pooled group")
        if not math.isfinite(self.score):
            raise ValueError(f"{self.key}: score must be finite")


def retake_at(p: Presentation, threshold: float) -> bool:
    """Sent back for a retake at this threshold: always, or on a poor capture whose passive score fails."""
    return p.retake or (p.capture_poor and not p.hard_reject and p.score < threshold)


def classify(p: Presentation, threshold: float) -> bool:
    """True when the presentation is classified bona fide (accepted), False when it is not."""
    return not p.hard_reject and not p.retake and p.score >= threshold


@dataclass(frozen=True)
class Rate:
    """`events` out of `n`: accepted attacks for APCER, rejected real presentations for BPCER, retakes, ..."""

    events: int
    n: int

    @property
    def value(self) -> float | None:
        return self.events / self.n if self.n else None


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def to_list(self) -> list[float]:
        return [round(self.low, _DIGITS), round(self.high, _DIGITS)]


@dataclass(frozen=True)
class Outcome:
    """A presentation classified at a threshold; `fold` is the fold it was measured in (-1: in-sample)."""

    presentation: Presentation
    threshold: float
    fold: int = -1

    @property
    def bona_fide(self) -> bool:
        return classify(self.presentation, self.threshold)

    @property
    def retake(self) -> bool:
        return retake_at(self.presentation, self.threshold)


def _contributions(p: Presentation, bona_fide: bool, retake: bool) -> list[tuple[RateKey, int]]:
    """The rates one classified presentation counts in: each gets n += 1 and events += the paired 0 or 1."""
    out: list[tuple[RateKey, int]] = []
    if p.label == SPOOF:
        for group in (p.attack_type, ALL):
            out.append(((ATTACK_RETAKE_RATE, group), int(retake)))
            if not retake:
                out.append(((APCER, group), int(bona_fide)))
        return out
    for group in (p.condition, ALL):
        out.append(((RETAKE_RATE, group), int(retake)))
        out.append(((BPCER_WITH_RETAKES, group), int(not bona_fide)))
        if not retake:
            out.append(((BPCER, group), int(not bona_fide)))
    return out


@dataclass(frozen=True)
class ErrorRates:
    rates: dict[RateKey, Rate]

    def rate(self, metric: str, group: str = ALL) -> Rate:
        return self.rates.get((metric, group), Rate(0, 0))

    def groups(self, metric: str) -> list[str]:
        """The attack types (APCER) or capture conditions (BPCER) seen, without the pooled group."""
        return sorted(g for m, g in self.rates if m == metric and g != ALL)

    def apcer_by_type(self) -> dict[str, Rate]:
        return {t: self.rate(APCER, t) for t in self.groups(APCER)}

    @property
    def worst_attack_type(self) -> str | None:
        measured = {t: r.value for t, r in self.apcer_by_type().items() if r.value is not None}
        return max(sorted(measured), key=lambda t: measured[t]) if measured else None

    @property
    def acer(self) -> float | None:
        worst, bpcer = self.worst_attack_type, self.rate(BPCER).value
        if worst is None or bpcer is None:
            return None
        apcer = self.rate(APCER, worst).value
        assert apcer is not None
        return (apcer + bpcer) / 2


def error_rates(outcomes: Iterable[Outcome]) -> ErrorRates:
    events: dict[RateKey, int] = defaultdict(int)
    n: dict[RateKey, int] = defaultdict(int)
    for o in outcomes:
        for key, event in _contributions(o.presentation, o.bona_fide, o.retake):
            events[key] += event
            n[key] += 1
    return ErrorRates({key: Rate(events[key], n[key]) for key in sorted(n)})


def measure(presentations: Iterable[Presentation], threshold: float) -> ErrorRates:
    return error_rates(Outcome(p, threshold) for p in presentations)
