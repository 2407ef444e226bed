"""Adaptive symmetric score normalisation (AS-norm), measured, not deployed.

s' = ½·((s − μ_a)/σ_a + (s − μ_b)/σ_b), with μ, σ the mean and spread of each side's top-K similarities to a
cohort of the population. A face that resembles many cohort faces (an older, wrinkled, low-contrast face) has a
high μ, so its scores are discounted. The cohort here is the calibration half; nothing of it may be shipped
(docs/face_data.md), so the deployed matcher keeps raw scores and this module only reports what AS-norm would
change at the same false-accept rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP_K = 100
# A cohort face this close to the face being normalised is that face (or its duplicate), not a cohort member.
SELF_MATCH = 0.999


@dataclass(frozen=True)
class CohortStats:
    mean: np.ndarray
    std: np.ndarray


def cohort_stats(embeddings: np.ndarray, cohort: np.ndarray, k: int = TOP_K) -> CohortStats:
    sims = embeddings @ cohort.T
    sims[sims >= SELF_MATCH] = -1.0
    top = -np.sort(-sims, axis=1)[:, :k]
    return CohortStats(top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6))


def normalise(scores: np.ndarray, a: CohortStats, b: CohortStats, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """AS-norm of ``scores[i]`` between face ``ia[i]`` (stats ``a``) and face ``ib[i]`` (stats ``b``)."""
    return np.asarray(0.5 * ((scores - a.mean[ia]) / a.std[ia] + (scores - b.mean[ib]) / b.std[ib]))
