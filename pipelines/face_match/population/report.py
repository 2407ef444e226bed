"""Population figures for the benchmark: FAR at the deployed thresholds on held-out East-Asian impostors,
genuine acceptance, kinship pairs, the relative-rule margin, and what AS-norm would change."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.face_match.population.asnorm import cohort_stats, normalise
from pipelines.face_match.population.dataset import PopulationData
from pipelines.face_match.population.faceset import FaceSet
from pipelines.face_match.population.kinship import margin_table, relative_trials
from pipelines.face_match.population.pairs import (
    Scores,
    genuine_pairs,
    genuine_scores,
    impostor_pairs,
    impostor_scores,
    kin_scores,
    split_half,
)
from pipelines.face_match.population.populations import POPULATIONS
from pipelines.face_match.population.thresholds import rate_at, threshold_at
from pipelines.face_match.result import Thresholds


def population_report(data: PopulationData, th: Thresholds, lfw_older: Scores | None) -> dict[str, Any]:
    faces, held = data.faces, split_half(data.faces)
    bands = {"accept": th.accept, "review": th.review}
    impostors: dict[str, Any] = {}
    for pop in POPULATIONS:
        member = pop.select(faces, data.east_asian)
        scores = impostor_scores(faces.subset(member & held))
        impostors[pop.name] = {
            "evaluation_half_pairs": len(scores),
            **{f"far_at_{b}": rate_at(scores, t).to_dict() for b, t in bands.items()},
        }
    ok = faces.quality_ok()
    genuine = {src: genuine_scores(faces.subset(ok & (faces["source"] == src))) for src in ("asian_faces", "fiw")}
    if lfw_older is not None:
        genuine["lfw_older"] = lfw_older
    return {
        "thresholds": {
            "accept": th.accept,
            "review": th.review,
            "accept_population": th.accept_population,
            "calibration": th.calibration_version,
        },
        "impostors_held_out": impostors,
        "genuine": {
            name: {
                "accept": rate_at(g, th.accept).to_dict(),
                "review_or_accept": rate_at(g, th.review).to_dict(),
            }
            for name, g in genuine.items()
        },
        "kinship": _kinship(data, th),
        "relative_rule_margin": margin_table(
            *relative_trials(faces.subset(ok & (faces["source"] == "fiw")), data.relations, th.accept)
        ),
        "as_norm": as_norm_comparison(data),
    }


def _kinship(data: PopulationData, th: Thresholds) -> dict[str, Any]:
    faces = data.faces
    scores = kin_scores(faces.subset(data.east_asian & faces.quality_ok()), data.relations)
    out: dict[str, Any] = {}
    for rel, s in scores.items():
        v = s.values
        out[rel] = {
            "pairs": len(v),
            "accept": rate_at(s, th.accept).to_dict(),
            "review": round(float(np.mean((v >= th.review) & (v < th.accept))), 4),
            "reject": round(float(np.mean(v < th.review)), 4),
        }
    return out


def as_norm_comparison(data: PopulationData, far: float = 1e-4) -> dict[str, Any]:
    """Genuine acceptance at one FAR on the East-Asian 50+ impostors, raw vs AS-norm (cohort: calibration half).

    Thresholds come from the calibration half's impostors, rates from the evaluation half."""
    faces, held = data.faces, split_half(data.faces)
    adult = POPULATIONS[0].select(faces, data.east_asian)
    cohort = faces.embeddings[adult & ~held]
    older = POPULATIONS[1].select(faces, data.east_asian)
    out: dict[str, Any] = {"far": far, "cohort_faces": len(cohort)}
    cal, ev = faces.subset(older & ~held), faces.subset(older & held)
    gen = faces.subset(faces.quality_ok() & held & np.isin(faces["source"], ["asian_faces", "fiw"]))
    for mode in ("raw", "as_norm"):
        t = threshold_at(_scores(cal, cohort, mode, impostor=True), far)
        far_ev = float(np.mean(_scores(ev, cohort, mode, impostor=True) >= t.threshold))
        tar = float(np.mean(_scores(gen, cohort, mode, impostor=False) >= t.threshold))
        out[mode] = {
            "threshold": round(t.threshold, 4),
            "method": t.method,
            "evaluation_far": round(far_ev, 6),
            "genuine_accept_east_asian": round(tar, 4),
        }
    return out


def _scores(faces: FaceSet, cohort: np.ndarray, mode: str, impostor: bool) -> np.ndarray:
    pairs = impostor_scores(faces) if impostor else genuine_scores(faces)
    if mode == "raw" or not len(pairs):
        return pairs.values
    ia, ib = impostor_pairs(faces) if impostor else genuine_pairs(faces)
    stats = cohort_stats(faces.embeddings, cohort)
    return normalise(pairs.values, stats, stats, ia, ib)
