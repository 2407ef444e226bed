"""A learned fusion of the anti-spoofing models' scores, measured without leaking (nested, subject-disjoint).

`fit_fusion` fits a logistic regression on each model's logit (L2, classes weighted equally: attacks outnumber
genuine clips, and the operating point lives in the attack tail). `evaluate_fused` runs the protocol of
`protocol.evaluate` with the fusion refitted inside it, so nothing measured ever helped fit what measures it:

* each outer fold is scored by a fusion fitted on the other folds' known subjects;
* that fold's threshold is chosen on the other folds' *inner* out-of-fold scores (each scored by a fusion fitted
  without it), since scores of the fusion's own training data would sit too far from the line;
* the deployment fusion is fitted on every known subject; its threshold is chosen on all presentations' outer
  out-of-fold scores, and the in-sample figures (all data, deployment fusion and threshold) are labelled as such.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from pipelines.liveness.evaluation.core import REAL, Outcome, Presentation, error_rates
from pipelines.liveness.evaluation.folds import calibration_pool, subject_folds
from pipelines.liveness.evaluation.protocol import (
    Evaluation,
    FoldResult,
    Protocol,
    assemble,
    choose_operating_point,
)
from pipelines.liveness.evaluation.thresholds import with_motion_rule
from pipelines.liveness.passive import LogisticFusion, logit

# Each model's scores over the presentations, by key (absent or empty: no face was scored, the score stays 0).
Vectors = Mapping[str, Sequence[float]]
NEWTON_STEPS = 50


def _design(ps: Sequence[Presentation], vectors: Vectors) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rows = [(p, vectors.get(p.key)) for p in ps]
    kept = [(p, v) for p, v in rows if v]
    x = np.array([[logit(s) for s in v] for _, v in kept], dtype=np.float64)
    y = np.array([1.0 if p.label == REAL else 0.0 for p, _ in kept])
    return x, y


def fit_fusion(ps: Sequence[Presentation], vectors: Vectors, names: Sequence[str], l2: float = 1.0) -> LogisticFusion:
    """Penalised logistic regression by Newton's method (the bias is not penalised)."""
    x, y = _design(ps, vectors)
    if len(set(y.tolist())) < 2:
        raise ValueError("a fusion needs genuine and attack presentations to fit")
    w = np.where(y == 1.0, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))
    a = np.hstack([np.ones((len(y), 1)), x])
    penalty = np.eye(a.shape[1]) * l2
    penalty[0, 0] = 0.0
    beta = np.zeros(a.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(a @ beta)))
        grad = a.T @ (w * (p - y)) + penalty @ beta
        hess = (a * (w * p * (1 - p))[:, None]).T @ a + penalty
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return LogisticFusion(tuple(names), tuple(float(b) for b in beta[1:]), float(beta[0]))


def rescored(ps: Sequence[Presentation], vectors: Vectors, fusion: LogisticFusion) -> list[Presentation]:
    return [replace(p, score=fusion.combine(v)) if (v := vectors.get(p.key)) else p for p in ps]


def _out_of_fold(
    folds: Sequence[Sequence[Presentation]], vectors: Vectors, names: Sequence[str], l2: float
) -> list[Presentation]:
    """Every presentation of `folds` scored by a fusion fitted on the other folds' known subjects."""
    out: list[Presentation] = []
    for i, fold in enumerate(folds):
        out += rescored(fold, vectors, fit_fusion(calibration_pool(folds, i), vectors, names, l2))
    return out


def evaluate_fused(
    presentations: Sequence[Presentation],
    vectors: Vectors,
    names: Sequence[str],
    protocol: Protocol,
    l2: float = 1.0,
) -> tuple[Evaluation, LogisticFusion]:
    """`protocol.evaluate` with the fusion fitted inside each fold; also the deployment fusion."""
    keys = [p.key for p in presentations]
    if len(set(keys)) != len(keys):  # the scores are looked up by key: a duplicate would share them
        raise ValueError("presentation keys must be unique: a duplicate would be counted twice")
    folds = subject_folds(presentations, protocol.folds, protocol.seed)
    results: list[FoldResult] = []
    outcomes: list[Outcome] = []
    for i, fold in enumerate(folds):
        others = [[p for p in f if p.subject] for j, f in enumerate(folds) if j != i]
        choice = choose_operating_point(_out_of_fold(others, vectors, names, l2), protocol)
        fusion = fit_fusion(calibration_pool(folds, i), vectors, names, l2)
        ratio = choice.motion_min_ratio or 0.0
        measured = [Outcome(with_motion_rule(p, ratio), choice.threshold, i) for p in rescored(fold, vectors, fusion)]
        outcomes.extend(measured)
        n_cal = sum(len(f) for f in others)
        results.append(FoldResult(i, n_cal, len(fold), choice, error_rates(measured)))
    deployment = choose_operating_point(_out_of_fold(folds, vectors, names, l2), protocol)
    final = fit_fusion([p for p in presentations if p.subject], vectors, names, l2)
    scored = rescored(presentations, vectors, final)
    return assemble(presentations, protocol, results, outcomes, deployment, scored), final
