"""Which faces are East-Asian, where a source does not say: a linear probe on the recognizer's embeddings.

TSKinFace states only that 674 of its 1,015 families are Asian, not which. A logistic regression on embeddings,
trained on UTKFace's own race labels (Asian vs the other four), labels each family by the mean probability of
its members. Its cross-validated accuracy on UTKFace is reported with the calibration, so the labels' error
rate is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.face_match.population.faceset import FaceSet

ASIAN = frozenset({"asian", "east_asian"})


@dataclass(frozen=True)
class LinearProbe:
    weights: np.ndarray
    bias: float

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        z = embeddings @ self.weights + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 25) -> LinearProbe:
    """Balanced, L2-regularised logistic regression by Newton's method (a few hundred dimensions: exact)."""
    n, d = x.shape
    xb = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    pos = y.astype(bool)
    sample_w = np.where(pos, 0.5 / max(pos.sum(), 1), 0.5 / max((~pos).sum(), 1)) * n
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (sample_w * (p - y)) / n + reg * w
        hess = (xb * (sample_w * p * (1 - p))[:, None]).T @ xb / n + np.diag(reg)
        w -= np.linalg.solve(hess, grad)
    return LinearProbe(w[:-1], float(w[-1]))


def probe_accuracy(faces: FaceSet, folds: int = 5, seed: int = 0) -> dict[str, float | None]:
    """Cross-validated balanced accuracy of the probe on the faces whose source labels ethnicity.

    The recalls are None unless those faces hold both classes (else they are NaN, which is not JSON)."""
    labelled = faces.subset(faces["source"] == "utkface")
    y = np.isin(labelled["ethnicity"], list(ASIAN)).astype(float)
    counts = {"n_asian": int(y.sum()), "n_non_asian": int((1 - y).sum())}
    if y.all() or not y.any():
        return {"asian_recall": None, "non_asian_recall": None, **counts}
    fold = np.random.default_rng(seed).integers(0, folds, len(labelled))
    pred = np.zeros(len(labelled))
    for k in range(folds):
        probe = fit_probe(labelled.embeddings[fold != k], y[fold != k])
        pred[fold == k] = probe.probability(labelled.embeddings[fold == k])
    hit = (pred >= 0.5) == y.astype(bool)
    return {
        "asian_recall": round(float(hit[y == 1].mean()), 4),
        "non_asian_recall": round(float(hit[y == 0].mean()), 4),
        **counts,
    }


def east_asian_mask(faces: FaceSet) -> np.ndarray:
    """True for faces labelled Asian by their source, or in a family the probe finds Asian on average."""
    mask = np.isin(faces["ethnicity"], list(ASIAN))
    unlabelled = faces["ethnicity"] == ""
    if unlabelled.any():
        labelled = faces["source"] == "utkface"
        y = np.isin(faces["ethnicity"][labelled], list(ASIAN)).astype(float)
        # Fitted on one class the probe gives everyone that class; fitted on none it is NaN: everyone non-Asian.
        if y.all() or not y.any():
            raise ValueError(
                f"{int(unlabelled.sum())} faces have no ethnicity label, and the utkface faces that train the probe "
                "labelling them do not include both Asian and non-Asian faces"
            )
        probe = fit_probe(faces.embeddings[labelled], y)
        prob = probe.probability(faces.embeddings[unlabelled])
        fams = faces["family"][unlabelled]
        mean = {f: float(prob[fams == f].mean()) for f in np.unique(fams)}
        mask[np.flatnonzero(unlabelled)] = np.asarray([mean[f] >= 0.5 for f in fams])
    return mask
