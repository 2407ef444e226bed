"""Verification metrics on genuine/impostor score sets: ROC AUC, EER, thresholds and TAR at fixed FAR."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# Below this many impostors beyond the threshold, the empirical quantile is noise; extrapolate the tail.
MIN_TAIL_COUNT = 10


@dataclass(frozen=True)
class FarThreshold:
    far: float
    threshold: float
    method: str  # "empirical" or "gaussian_tail"
    tar: float
    measured_far: float


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a random genuine score exceeds a random impostor score (ties count half)."""
    scores = np.concatenate([genuine, impostor])
    ranks = _average_ranks(scores)
    n_g, n_i = len(genuine), len(impostor)
    return float((ranks[:n_g].sum() - n_g * (n_g + 1) / 2) / (n_g * n_i))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    g = np.sort(genuine)
    i = np.sort(impostor)
    frr = np.searchsorted(g, thresholds, side="left") / len(g)
    far = 1.0 - np.searchsorted(i, thresholds, side="left") / len(i)
    k = int(np.argmin(np.abs(frr - far)))
    return float((frr[k] + far[k]) / 2)


def empirical_threshold(impostor: np.ndarray, far: float) -> float:
    """Lowest threshold that at most ``floor(far·n)`` impostor scores reach (``score >= t``)."""
    imp_desc = np.sort(impostor)[::-1]
    allowed = int(np.floor(far * len(imp_desc)))
    return float(np.nextafter(imp_desc[allowed], np.inf)) if allowed < len(imp_desc) else float(imp_desc[-1])


def threshold_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> FarThreshold:
    """Lowest threshold whose impostor accept rate (score >= t) is at most `far`."""
    n = len(impostor)
    method = "empirical"
    threshold = empirical_threshold(impostor, far)
    if far * n < MIN_TAIL_COUNT:
        z = NormalDist().inv_cdf(1.0 - far)
        gaussian = float(np.mean(impostor) + z * np.std(impostor))
        if gaussian > threshold:
            threshold, method = gaussian, "gaussian_tail"
    return FarThreshold(
        far=far,
        threshold=threshold,
        method=method,
        tar=float(np.mean(genuine >= threshold)) if len(genuine) else float("nan"),
        measured_far=float(np.mean(impostor >= threshold)),
    )


def summary(genuine: np.ndarray, impostor: np.ndarray, fars: tuple[float, ...]) -> dict[str, object]:
    return {
        "n_genuine": len(genuine),
        "n_impostor": len(impostor),
        "roc_auc": round(roc_auc(genuine, impostor), 6),
        "eer": round(eer(genuine, impostor), 6),
        "genuine_mean": round(float(np.mean(genuine)), 4),
        "impostor_mean": round(float(np.mean(impostor)), 4),
        "impostor_p99": round(float(np.percentile(impostor, 99)), 4),
        "at_far": {
            f"{far:.0e}".replace("e-0", "e-"): {
                "threshold": round(t.threshold, 6),
                "method": t.method,
                "tar": round(t.tar, 6),
                "measured_far": round(t.measured_far, 8),
            }
            for far in fars
            for t in [threshold_at_far(genuine, impostor, far)]
        },
    }
