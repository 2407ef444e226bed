"""An ISO/IEC 30107-3 evaluation protocol for the liveness stage (pure numpy; scipy only if installed).

Vocabulary (ISO/IEC 30107-3):

* **APCER** of one attack type (PAI species): the share of that type's attack presentations classified bona fide.
* **BPCER** of one capture condition: the share of its bona fide presentations classified as attacks.
* **ACER** = (max APCER over attack types + BPCER) / 2: the worst attack type, not their mean.

How a presentation is classified (`classify`): bona fide when no signal other than the passive score rejected
it (`hard_reject`), it was not sent back for a retake, and its passive score is at least the threshold.

A **retake** is a failure to acquire, not a classification (the citizen is asked to film again), so it is
reported apart:

* `bpcer` leaves retakes out of its denominator (the ISO figure),
* `retake_rate` is the share of real presentations sent back,
* `bpcer_with_retakes` counts a retake as a rejection (what a citizen experiences on the first try),
* `apcer` leaves attack retakes out as well: an attack sent back was neither caught nor let through, and counting
  it as caught would flatter the figure. `attack_retake_rate` says how many there were.

Every rate also exists for the group `"all"` (pooled). APCER pooled over types is *not* an ISO figure; it is
there for reading only, and ACER never uses it.

Protocol (`evaluate`):

1. `subject_folds` splits the presentations into k folds, each subject in exactly one fold.
2. Each fold is measured at the threshold `choose_threshold` picks on the other folds: the lowest-BPCER
   threshold with APCER ≤ `target_apcer` for every attack type.
3. The out-of-fold classifications are pooled into one set of rates. Each rate gets a subject-bootstrap
   percentile interval and a Clopper–Pearson interval; with zero events, also the rule of three.
4. The deployment threshold is chosen on all the data by the same rule. Its figures are in-sample and optimistic,
   and the report labels them so.

A presentation with an unknown subject (`subject == ""`) could be the same person as anyone in a calibration set.
So it is **never used to choose a cross-validation threshold**: it is only measured, in the one fold it is
assigned to. In the bootstrap it is a subject of its own. The deployment choice has no held-out data to leak
into, so it uses every presentation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

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


def choose_review_floor(cal: Sequence[Presentation], threshold: float, target_bpcer: float = 0.02) -> float:
    """The highest floor (≤ threshold) under which at most target_bpcer of the acquired real presentations score.

    Real people scoring between the floor and the threshold are not rejected when they perform the challenge
    with live motion: a person looks at the evidence (pipelines/liveness/fusion.py).
    """
    reals = sorted(p.score for p in cal if p.label == REAL and not p.hard_reject and not p.retake)
    if not reals:
        return threshold
    allowed = math.floor(target_bpcer * len(reals) + _EPS)
    return min(reals[min(allowed, len(reals) - 1)], threshold)


def _critical_score(cal: Sequence[Presentation], target_apcer: float) -> tuple[float, str] | None:
    """The highest attack score the threshold must lie above so that every type keeps APCER ≤ target."""
    worst: tuple[float, str] | None = None
    for attack_type in sorted({p.attack_type for p in cal if p.label == SPOOF}):
        acquired = [p for p in cal if p.label == SPOOF and p.attack_type == attack_type and not p.retake]
        # Hard-rejected attacks are caught whatever the threshold: they count in n, never as accepted.
        scores = sorted((p.score for p in acquired if not p.hard_reject), reverse=True)
        allowed = math.floor(target_apcer * len(acquired) + _EPS)
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


# --------------------------------------------------------------------------------------------------------- folds


def _units(presentations: Sequence[Presentation]) -> dict[str, list[Presentation]]:
    """Resampling and fold units: one per known subject, one per presentation of unknown subject."""
    units: dict[str, list[Presentation]] = defaultdict(list)
    for p in presentations:
        # "\0" cannot start a real subject name, so unknown-subject units never merge with a subject.
        units[p.subject if p.subject else f"\0{p.key}"].append(p)
    return dict(units)


def subject_folds(presentations: Sequence[Presentation], k: int, seed: int) -> list[list[Presentation]]:
    """k folds, every subject in exactly one; together they hold every presentation once.

    Subjects are dealt greedily, those with the most attacks first: each goes to the fold with the fewest attacks
    (when it has attacks) and then the fewest presentations, so that attacks, which are scarce, are spread and
    every calibration set sees some. The seed orders subjects of equal weight.
    """
    if k < 2:
        raise ValueError("cross-validation needs k >= 2 folds")
    units = _units(presentations)
    if len(units) < k:
        raise ValueError(f"{len(units)} subjects cannot fill {k} folds")
    names = sorted(units)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    attacks = {u: sum(p.label == SPOOF for p in units[u]) for u in names}
    order.sort(key=lambda u: (-attacks[u], -len(units[u])))  # stable: the shuffle breaks the ties
    folds: list[list[Presentation]] = [[] for _ in range(k)]
    fold_attacks = [0] * k
    for u in order:
        best = min(range(k), key=lambda f: (fold_attacks[f] if attacks[u] else 0, len(folds[f]), f))
        folds[best].extend(units[u])
        fold_attacks[best] += attacks[u]
    return folds


def calibration_pool(folds: Sequence[Sequence[Presentation]], index: int) -> list[Presentation]:
    """The presentations that choose fold `index`'s threshold: the other folds' known-subject ones."""
    return [p for j, fold in enumerate(folds) if j != index for p in fold if p.subject]


# ------------------------------------------------------------------------------------------------------ intervals


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (no overflow for large n)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq for i in range(k + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def _bisect(f: Callable[[float], float], target: float, increasing: bool) -> float:
    """The p in [0, 1] where the monotone f(p) crosses target (100 halvings: far below float resolution)."""
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson_bisection(k: int, n: int, confidence: float = 0.95) -> Interval:
    """The exact interval by bisection on the binomial CDF: the fallback when scipy is absent, and its check."""
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else _bisect(lambda p: 1 - _binom_cdf(k - 1, n, p), tail, increasing=True)
    high = 1.0 if k == n else _bisect(lambda p: _binom_cdf(k, n, p), tail, increasing=False)
    return Interval(low, high)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Two-sided exact binomial interval for k events in n trials (beta quantiles)."""
    if not 0 <= k <= n or n == 0:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    try:
        from scipy.stats import beta  # type: ignore[import-untyped, unused-ignore]
    except ImportError:  # not a declared dependency: it comes with insightface and scikit-learn
        return clopper_pearson_bisection(k, n, confidence)
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return Interval(low, high)


def zero_event_upper(n: int, confidence: float = 0.95) -> float:
    """One-sided exact upper bound with 0 events in n: 1 - (1 - confidence)^(1/n); ≈ 3/n (the rule of three)."""
    return 1 - float((1 - confidence) ** (1 / n))


@dataclass(frozen=True)
class BootstrapIntervals:
    rates: dict[RateKey, Interval | None]  # None: the rate is undefined in too many draws (see `valid_draws`)
    acer: Interval | None
    valid_draws: dict[RateKey, int]
    n_boot: int
    n_units: int


def _count_matrices(
    outcomes: Sequence[Outcome], keys: Sequence[RateKey]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-unit (subject) events and n of every rate: a draw's totals are then one weighted sum."""
    units = _units([o.presentation for o in outcomes])
    unit_index = {name: i for i, name in enumerate(sorted(units))}
    col = {key: j for j, key in enumerate(keys)}
    events = np.zeros((len(unit_index), len(keys)))
    n = np.zeros_like(events)
    for o in outcomes:
        p = o.presentation
        row = unit_index[p.subject if p.subject else f"\0{p.key}"]
        for key, event in _contributions(p, o.bona_fide, o.retake):
            events[row, col[key]] += event
            n[row, col[key]] += 1
    return events, n


def _draw_rates(
    events: npt.NDArray[np.float64], n: npt.NDArray[np.float64], n_boot: int, seed: int
) -> npt.NDArray[np.float64]:
    """n_boot × rates: each row resamples the units with replacement; NaN where a draw has n = 0."""
    rng = np.random.default_rng(seed)
    units = events.shape[0]
    out = np.empty((n_boot, events.shape[1]))
    for start in range(0, n_boot, 100):  # 100 draws at a time bounds the weight matrix for large sets
        size = min(100, n_boot - start)
        picks = rng.integers(0, units, size=(size, units))
        weights = np.stack([np.bincount(row, minlength=units) for row in picks]).astype(np.float64)
        e, m = weights @ events, weights @ n
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + size] = np.where(m > 0, e / np.where(m > 0, m, 1), np.nan)
    return out


def _percentile(values: npt.NDArray[np.float64], confidence: float) -> tuple[Interval | None, int]:
    valid = values[~np.isnan(values)]
    # A rate undefined in over half the draws (a group held by one or two subjects) gets no interval.
    if len(valid) < len(values) / 2 or len(valid) == 0:
        return None, len(valid)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(valid, [tail, 100 - tail])
    return Interval(float(low), float(high)), len(valid)


def bootstrap_intervals(
    outcomes: Sequence[Outcome], n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> BootstrapIntervals:
    """Percentile intervals of every rate and of ACER, resampling subjects (not presentations) with replacement.

    Presentations of one subject are correlated (same face, same phone, same room); resampling them one by one
    would make the intervals too narrow.
    """
    keys = sorted(error_rates(outcomes).rates)
    events, n = _count_matrices(outcomes, keys)
    draws = _draw_rates(events, n, n_boot, seed)
    rates: dict[RateKey, Interval | None] = {}
    valid: dict[RateKey, int] = {}
    for j, key in enumerate(keys):
        rates[key], valid[key] = _percentile(draws[:, j], confidence)
    type_cols = [j for j, (m, g) in enumerate(keys) if m == APCER and g != ALL]
    bpcer_col = keys.index((BPCER, ALL)) if (BPCER, ALL) in keys else None
    acer: Interval | None = None
    if type_cols and bpcer_col is not None:
        apcer = draws[:, type_cols]
        # The worst measured type in each draw; a draw without any attack (all NaN) has no ACER.
        worst = np.where(np.isnan(apcer), -np.inf, apcer).max(axis=1)
        acer_draws = np.where(np.isfinite(worst), (worst + draws[:, bpcer_col]) / 2, np.nan)
        acer, _ = _percentile(acer_draws, confidence)
    return BootstrapIntervals(rates, acer, valid, n_boot, events.shape[0])


# ----------------------------------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Protocol:
    folds: int = 5
    seed: int = 0
    target_apcer: float = 0.01
    target_bpcer: float = 0.02
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


def _counts(presentations: Sequence[Presentation]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for p in presentations:
        group = f"attack:{p.attack_type}" if p.label == SPOOF else f"real:{p.condition}"
        flags = (("n", True), ("hard_reject", p.hard_reject), ("retake", p.retake), ("capture_poor", p.capture_poor))
        for name, flag in (*flags, ("review", p.review)):
            counts[group][name] += int(bool(flag))
    return {g: dict(c) for g, c in sorted(counts.items())}


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
        choice = choose_threshold(cal, protocol.target_apcer, protocol.target_bpcer)
        measured = [Outcome(p, choice.threshold, i) for p in fold]
        outcomes.extend(measured)
        results.append(FoldResult(i, len(cal), len(fold), choice, error_rates(measured)))
    deployment = choose_threshold(presentations, protocol.target_apcer, protocol.target_bpcer)
    return Evaluation(
        protocol=protocol,
        folds=results,
        out_of_fold=error_rates(outcomes),
        intervals=bootstrap_intervals(outcomes, protocol.n_boot, protocol.seed, protocol.confidence),
        deployment=deployment,
        in_sample=measure(presentations, deployment.threshold),
        n_presentations=len(presentations),
        n_subjects=len({p.subject for p in presentations if p.subject}),
        n_unknown_subject=sum(1 for p in presentations if not p.subject),
        counts=_counts(presentations),
    )


# --------------------------------------------------------------------------------------------------------- report


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, _DIGITS)


def rate_to_dict(rate: Rate, confidence: float = 0.95, interval: Interval | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"events": rate.events, "n": rate.n, "value": _round(rate.value)}
    if rate.n == 0:
        return out
    out["resolution"] = _round(1 / rate.n)  # one event moves the rate by this much
    if interval is not None:
        out["bootstrap_ci"] = interval.to_list()
    out["clopper_pearson"] = clopper_pearson(rate.events, rate.n, confidence).to_list()
    if rate.events == 0:
        out["zero_events_upper_one_sided"] = _round(zero_event_upper(rate.n, confidence))
        out["rule_of_three"] = _round(3 / rate.n)
    return out


def rates_to_dict(
    rates: ErrorRates, confidence: float = 0.95, intervals: BootstrapIntervals | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in METRICS:
        groups = [*rates.groups(metric), ALL] if (metric, ALL) in rates.rates else []
        out[metric] = {
            g: rate_to_dict(rates.rate(metric, g), confidence, intervals.rates.get((metric, g)) if intervals else None)
            for g in groups
        }
    acer: dict[str, Any] = {"value": _round(rates.acer), "worst_attack_type": rates.worst_attack_type}
    if intervals is not None and intervals.acer is not None:
        acer["bootstrap_ci"] = intervals.acer.to_list()
    out["acer"] = acer
    return out


def choice_to_dict(choice: ThresholdChoice) -> dict[str, Any]:
    return {
        "threshold": _round(choice.threshold),
        "review_floor": _round(choice.review_floor),
        "rule": choice.rule,
        "binding_attack_type": choice.binding_type,
        "target_apcer": choice.target_apcer,
        "target_bpcer": choice.target_bpcer,
        "cal_apcer": {t: rate_to_dict(r) for t, r in choice.cal_apcer.items()},
        "cal_bpcer": rate_to_dict(choice.cal_bpcer),
        "met_target": choice.met_target,
    }


PROTOCOL_NOTES = {
    "classification": "bona fide when not hard_reject, not retake and passive score >= threshold",
    "apcer": "per attack type: accepted / acquired attacks (attack retakes left out: neither caught nor accepted)",
    "bpcer": "per capture condition: rejected / acquired real presentations (retakes left out, ISO)",
    "bpcer_with_retakes": "per capture condition: (rejected + retakes) / all real presentations",
    "retake_rate": "retakes / all real presentations (failure to acquire)",
    "acer": "(max APCER over attack types + pooled BPCER) / 2",
    "threshold_rule": "lowest calibration BPCER with APCER <= target_apcer for every attack type",
    "review_floor_rule": "highest floor with at most target_bpcer of acquired real scores below it (<= threshold)",
    "folds": "subject-disjoint; unknown-subject presentations are measured but never choose a CV threshold",
    "bootstrap": "percentile, subjects resampled with replacement; none when the rate is undefined in > half",
    "clopper_pearson": "exact binomial, ignores the correlation within a subject",
    "apcer_all": "pooled over attack types for reading only; not an ISO figure, not used by ACER",
}


def report_to_dict(ev: Evaluation) -> dict[str, Any]:
    pr = ev.protocol
    return {
        "standard": "ISO/IEC 30107-3",
        "protocol": {**pr.__dict__, "notes": PROTOCOL_NOTES},
        "counts": {
            "presentations": ev.n_presentations,
            "subjects": ev.n_subjects,
            "unknown_subject": ev.n_unknown_subject,
            "bootstrap_units": ev.intervals.n_units,
            "by_group": ev.counts,
        },
        "cross_validated": {
            "note": "out-of-fold: each presentation measured at the threshold chosen on the other folds",
            **rates_to_dict(ev.out_of_fold, pr.confidence, ev.intervals),
            "folds": [
                {
                    "index": f.index,
                    "n_calibration": f.n_calibration,
                    "n_measured": f.n_measured,
                    "choice": choice_to_dict(f.choice),
                    "measured": rates_to_dict(f.measured, pr.confidence),
                }
                for f in ev.folds
            ],
        },
        "deployment": {
            "note": "threshold chosen on ALL data; its figures are in-sample and optimistic",
            "choice": choice_to_dict(ev.deployment),
            "in_sample": rates_to_dict(ev.in_sample, pr.confidence),
        },
    }
