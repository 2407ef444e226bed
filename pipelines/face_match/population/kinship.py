"""The relative rule's margin, measured: what it costs genuine people and what it catches of relatives.

The rule (proxy_auth.relatives): a probe whose similarity to an enrolled relative reaches the claimed
similarity minus ``margin`` goes to review. Trials from families with several images per person (FIW):
- genuine: probe = one image of A, claimed = another image of A, relatives = templates (mean embedding) of A's
  relatives; counted only when the claimed score is in the accept band (elsewhere the rule changes nothing);
- relative fraud: probe = an image of relative R, claimed = an image of A (R presents A's card), R's own
  template = the mean of R's other images; counted only when the claimed score is in the accept band.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.face_match.pooling import pool_embeddings
from pipelines.face_match.population.faceset import FaceSet
from pipelines.face_match.population.pairs import subject_index

MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)


def _templates(faces: FaceSet, idx: np.ndarray) -> np.ndarray:
    # A FaceSet's embeddings are float32 (faceset.py): the template pooling leaves their dtype as it is.
    return pool_embeddings(faces.embeddings[idx], unit=True)


def relative_trials(
    faces: FaceSet, relations: list[tuple[str, str, str]], accept: float
) -> tuple[np.ndarray, np.ndarray]:
    """(genuine gaps, fraud gaps): claimed score minus the best relative score, per accept-band trial."""
    by_subject = subject_index(faces)
    kin: dict[str, set[str]] = {}
    for a, b, rel in relations:
        if rel != "spouse" and a in by_subject and b in by_subject:
            kin.setdefault(a, set()).add(b)
            kin.setdefault(b, set()).add(a)
    emb = faces.embeddings
    genuine: list[float] = []
    fraud: list[float] = []
    for a, relatives in kin.items():
        ia = by_subject[a]
        templates = np.stack([_templates(faces, by_subject[r]) for r in sorted(relatives)])
        sims = emb[ia] @ emb[ia].T
        to_rel = (emb[ia] @ templates.T).max(axis=1)
        for i in range(len(ia)):
            for j in range(len(ia)):
                if i != j and sims[i, j] >= accept:
                    genuine.append(float(sims[i, j] - to_rel[i]))
        for r in sorted(relatives):
            ir = by_subject[r]
            if len(ir) < 2:
                continue
            for k, probe in enumerate(ir):
                own = _templates(faces, np.delete(ir, k))
                claimed = emb[ia] @ emb[probe]
                for c in claimed[claimed >= accept]:
                    fraud.append(float(c - float(own @ emb[probe])))
    return np.asarray(genuine), np.asarray(fraud)


def margin_table(genuine: np.ndarray, fraud: np.ndarray) -> list[dict[str, Any]]:
    """Per margin: share of accept-band genuine trials sent to review, share of accept-band frauds caught."""
    return [
        {
            "margin": m,
            "genuine_trials": len(genuine),
            "genuine_to_review": round(float(np.mean(genuine <= m)), 4) if len(genuine) else None,
            "fraud_trials": len(fraud),
            "fraud_caught": round(float(np.mean(fraud <= m)), 4) if len(fraud) else None,
        }
        for m in MARGINS
    ]
