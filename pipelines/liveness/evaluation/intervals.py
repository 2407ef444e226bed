"""Confidence intervals: Clopper–Pearson per rate, and a bootstrap that resamples subjects."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.liveness.evaluation.core import (
    ALL,
    APCER,
    BPCER,
    Interval,
    Outcome,
    RateKey,
    _contributions,
    error_rates,
)
from pipelines.liveness.evaluation.folds import _units, unit_of

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
        row = unit_index[unit_of(p)]
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
