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
    """Raw vs AS-norm on East-Asian 50+ impostors: at one FAR with thresholds from the calibration half (cohort:
    its East-Asian adults), on equal footing (each at the evaluation half's own FAR quantiles), and with the
    same thresholds under a different cohort (the evaluation half's 50+ faces: a deployment's cohort is its own
    people, not ours)."""
    faces, held = data.faces, split_half(data.faces)
    adult = POPULATIONS[0].select(faces, data.east_asian)
    older = POPULATIONS[1].select(faces, data.east_asian)
    cohorts = {
        "calibration_adults": faces.embeddings[adult & ~held],
        "evaluation_50plus": faces.embeddings[older & held],
    }
    cohort = cohorts["calibration_adults"]
    out: dict[str, Any] = {"far": far, "cohort_faces": len(cohort)}
    cal, ev = faces.subset(older & ~held), faces.subset(older & held)
    ev_adult = faces.subset(adult & held)
    # Genuine pairs whose people are in no cohort (the 50+ faces are UTKFace: one image per person).
    gen = faces.subset(faces.quality_ok() & held & np.isin(faces["source"], ["asian_faces", "fiw"]))
    thresholds: dict[str, float] = {}
    for mode in ("raw", "as_norm"):
        t = threshold_at(_scores(cal, cohort, mode, impostor=True), far)
        thresholds[mode] = t.threshold
        far_ev = float(np.mean(_scores(ev, cohort, mode, impostor=True) >= t.threshold))
        tar = float(np.mean(_scores(gen, cohort, mode, impostor=False) >= t.threshold))
        out[mode] = {
            "threshold": round(t.threshold, 4),
            "method": t.method,
            "evaluation_far": round(far_ev, 6),
            "genuine_accept_east_asian": round(tar, 4),
        }
    out["equal_far"] = _equal_far(ev, gen, cohort)
    out["cohort_transfer"] = {
        name: _at_threshold(ev, ev_adult, gen, c, thresholds["as_norm"]) for name, c in cohorts.items()
    }
    return out


def _equal_far(ev: FaceSet, gen: FaceSet, cohort: np.ndarray) -> dict[str, Any]:
    """Genuine acceptance of each mode at the evaluation half's own impostor quantiles (no transfer involved)."""
    out: dict[str, Any] = {"impostor_pairs": len(impostor_scores(ev)), "genuine_pairs": len(genuine_scores(gen))}
    for mode in ("raw", "as_norm"):
        imp = np.sort(_scores(ev, cohort, mode, impostor=True))
        gen_scores = _scores(gen, cohort, mode, impostor=False)
        out[mode] = {}
        for far in (1e-2, 1e-3, 3e-4):
            cut = imp[len(imp) - 1 - int(far * len(imp))]
            out[mode][f"{far:g}"] = round(float(np.mean(gen_scores > cut)), 4)
    return out


def _at_threshold(ev: FaceSet, ev_adult: FaceSet, gen: FaceSet, cohort: np.ndarray, t: float) -> dict[str, Any]:
    older = _scores(ev, cohort, "as_norm", impostor=True)
    adults = _scores(ev_adult, cohort, "as_norm", impostor=True)
    return {
        "cohort_faces": len(cohort),
        "far_50plus": round(float(np.mean(older >= t)), 6),
        "far_adults": round(float(np.mean(adults >= t)), 6),
        "genuine_accept_east_asian": round(float(np.mean(_scores(gen, cohort, "as_norm", impostor=False) >= t)), 4),
    }


def _scores(faces: FaceSet, cohort: np.ndarray, mode: str, impostor: bool) -> np.ndarray:
    pairs = impostor_scores(faces) if impostor else genuine_scores(faces)
    if mode == "raw" or not len(pairs):
        return pairs.values
    ia, ib = impostor_pairs(faces) if impostor else genuine_pairs(faces)
    stats = cohort_stats(faces.embeddings, cohort)
    return normalise(pairs.values, stats, stats, ia, ib)
