"""Thresholds at a false-accept rate, observed where the impostors suffice, else from a fitted tail; intervals.

At FAR ``f`` with ``n`` impostors, fewer than ``MIN_TAIL_COUNT`` expected exceedances make the empirical quantile
noise: the upper tail (beyond the 99th percentile) is then fitted with a generalised Pareto distribution
(method of moments) and the threshold extrapolated; the method is recorded. The shape is floored at 0 (an
exponential tail): a negative shape claims the impostor tail ends, which ~180 excesses cannot show, and on the
East-Asian 50+ faces that bounded fit put a "1e-4" threshold where 3.5e-4 of held-out impostors passed
(docs/face_data.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.face_match.metrics import MIN_TAIL_COUNT, empirical_threshold
from pipelines.face_match.population.pairs import Scores
from pipelines.liveness.evaluation.intervals import clopper_pearson

TAIL_QUANTILE = 0.99
MIN_EXCESSES = 50


@dataclass(frozen=True)
class PopulationThreshold:
    far: float
    threshold: float
    method: str  # "empirical" (observed) | "tail_fit" (extrapolated)
    n_impostor: int
    expected_exceedances: float


def fit_tail(impostor: np.ndarray) -> tuple[float, float, float, float]:
    """(u, tail share, sigma, xi) of a GPD fitted by moments to the excesses over the TAIL_QUANTILE quantile."""
    if len(impostor) == 0:  # np.quantile would raise an IndexError
        raise ValueError("no impostors: too few to fit a tail")
    u = float(np.quantile(impostor, TAIL_QUANTILE))
    excess = impostor[impostor > u] - u
    if len(excess) < MIN_EXCESSES:
        raise ValueError(f"{len(excess)} impostors beyond the tail quantile: too few to fit a tail")
    m, v = float(np.mean(excess)), float(np.var(excess))
    xi = float(np.clip(0.5 * (1.0 - m * m / v), 0.0, 0.5))
    sigma = 0.5 * m * (1.0 + m * m / v)
    return u, len(excess) / len(impostor), sigma, xi


def tail_threshold(impostor: np.ndarray, far: float) -> float:
    u, share, sigma, xi = fit_tail(impostor)
    ratio = far / share
    if abs(xi) < 1e-6:
        return u - sigma * float(np.log(ratio))
    return float(u + sigma / xi * (ratio ** (-xi) - 1.0))


def threshold_at(impostor: np.ndarray, far: float) -> PopulationThreshold:
    n = len(impostor)
    expected = far * n
    if expected >= MIN_TAIL_COUNT:
        return PopulationThreshold(far, empirical_threshold(impostor, far), "empirical", n, expected)
    return PopulationThreshold(far, tail_threshold(impostor, far), "tail_fit", n, expected)


@dataclass(frozen=True)
class RateWithInterval:
    """A rate over pairs, its exact binomial interval and a family-bootstrap interval (pairs share faces)."""

    count: int
    n: int
    rate: float
    binomial_95: tuple[float, float]
    family_bootstrap_95: tuple[float, float]

    def to_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "n": self.n,
            "rate": round(self.rate, 8),
            "binomial_95": [round(v, 8) for v in self.binomial_95],
            "family_bootstrap_95": [round(v, 8) for v in self.family_bootstrap_95],
        }


def rate_at(scores: Scores, threshold: float, above: bool = True, draws: int = 400, seed: int = 0) -> RateWithInterval:
    """Share of scores at or above (or below) ``threshold``, with intervals."""
    hits = scores.values >= threshold if above else scores.values < threshold
    k, n = int(hits.sum()), len(scores)
    if n == 0:
        return RateWithInterval(0, 0, float("nan"), (float("nan"),) * 2, (float("nan"),) * 2)
    cp = clopper_pearson(k, n)
    return RateWithInterval(k, n, k / n, (cp.low, cp.high), _family_bootstrap(scores, hits, draws, seed))


def _family_bootstrap(scores: Scores, hits: np.ndarray, draws: int, seed: int) -> tuple[float, float]:
    """Resample families with replacement; a pair counts w_a·w_b times (w: how often each family was drawn)."""
    units = np.unique(np.concatenate([scores.unit_a, scores.unit_b]))
    a = np.searchsorted(units, scores.unit_a)
    b = np.searchsorted(units, scores.unit_b)
    rng = np.random.default_rng(seed)
    within = np.array_equal(a, b)  # genuine or kin pairs: both sides in one family, weighted once
    rates = []
    for _ in range(draws):
        w = np.bincount(rng.integers(0, len(units), len(units)), minlength=len(units)).astype(np.float64)
        pw = w[a] if within else w[a] * w[b]
        total = pw.sum()
        if total > 0:
            rates.append(float((pw * hits).sum() / total))
    if not rates:
        return (float("nan"), float("nan"))
    return (float(np.percentile(rates, 2.5)), float(np.percentile(rates, 97.5)))
