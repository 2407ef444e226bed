"""Calibrate thresholds on a population and measure them on a disjoint half of it.

Families are split in two by a stable hash: thresholds at each FAR come from the calibration half (observed, or
from a fitted tail where the impostors are too few), and are measured on the evaluation half (impostor accept
rates with exact and family-bootstrap intervals). Nothing from the evaluation half touches a threshold.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from pipelines.face_match.population.dataset import PopulationData
from pipelines.face_match.population.ethnicity import probe_accuracy
from pipelines.face_match.population.faceset import FaceSet
from pipelines.face_match.population.pairs import Scores, impostor_scores, split_half
from pipelines.face_match.population.populations import POPULATIONS, Population
from pipelines.face_match.population.thresholds import PopulationThreshold, rate_at, threshold_at

FARS = {"1e-2": 1e-2, "1e-3": 1e-3, "1e-4": 1e-4}
DATA_NOTE = "bench/face_data/manifest.csv, same-person links merged (docs/face_data.md)"


def calibrate_population(faces: FaceSet, east_asian: np.ndarray, population: Population) -> dict[str, Any]:
    """The population's calibration entry (thresholds from the calibration half) with held-out figures."""
    member = population.select(faces, east_asian)
    held_out = split_half(faces)
    calib = impostor_scores(faces.subset(member & ~held_out))
    evaluation = impostor_scores(faces.subset(member & held_out))
    thresholds = {key: threshold_at(calib.values, far) for key, far in FARS.items()}
    return {
        "description": population.description,
        **describe_thresholds(thresholds),
        "calibration_half": _counts(faces.subset(member & ~held_out), calib),
        "evaluation_half": {
            **_counts(faces.subset(member & held_out), evaluation),
            "impostor_accept": accept_rates(evaluation, thresholds),
        },
        "split": "families hashed in two halves (pipelines.face_match.population.pairs.split_half)",
        "data": DATA_NOTE,
        "calibrated_on": dt.date.today().isoformat(),
    }


def describe_thresholds(thresholds: dict[str, PopulationThreshold]) -> dict[str, Any]:
    """A population entry's thresholds per FAR, how each was found, and whether its FAR was observed."""
    return {
        "thresholds": {k: round(t.threshold, 6) for k, t in thresholds.items()},
        "method": {k: t.method for k, t in thresholds.items()},
        "far_observed_or_extrapolated": {
            k: "observed" if t.method == "empirical" else "extrapolated (tail fit)" for k, t in thresholds.items()
        },
    }


def accept_rates(evaluation: Scores, thresholds: dict[str, PopulationThreshold]) -> dict[str, Any]:
    """Held-out impostors accepted at each threshold, with their intervals."""
    return {k: rate_at(evaluation, t.threshold).to_dict() for k, t in thresholds.items()}


def _counts(faces: FaceSet, scores: Scores) -> dict[str, Any]:
    by_source = {str(s): int((faces["source"] == s).sum()) for s in np.unique(faces["source"])}
    return {
        "faces": len(faces),
        "families": len(np.unique(faces["family"])),
        "faces_by_source": by_source,
        "impostor_pairs": len(scores),
        "impostor_p99": round(float(np.quantile(scores.values, 0.99)), 4) if len(scores) else None,
    }


def calibrate_populations(data: PopulationData) -> dict[str, dict[str, Any]]:
    """Every population's entry; the ethnicity probe's accuracy is recorded with each."""
    probe = probe_accuracy(data.faces)
    out = {}
    for population in POPULATIONS:
        entry = calibrate_population(data.faces, data.east_asian, population)
        entry["ethnicity_probe"] = probe
        out[population.name] = entry
    return out
