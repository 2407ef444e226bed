"""Score sets of a face set: impostors across families, genuine pairs within a subject, kin pairs by relation.

Relatives are never counted as ordinary impostors (they resemble each other); they are scored on their own.
Scores carry the family of each side, so that intervals can resample families (pairs are not independent).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.face_match.population.faceset import FaceSet


@dataclass(frozen=True)
class Scores:
    """Cosine scores with the family (resampling unit) of each side: ``unit_a[i]``, ``unit_b[i]``."""

    values: np.ndarray
    unit_a: np.ndarray
    unit_b: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def empty(cls) -> Scores:
        return cls(np.zeros(0, np.float32), np.zeros(0, int), np.zeros(0, int))

    def subset(self, mask: np.ndarray) -> Scores:
        return Scores(self.values[mask], self.unit_a[mask], self.unit_b[mask])


def _unit_ids(faces: FaceSet) -> np.ndarray:
    _, inverse = np.unique(faces["family"], return_inverse=True)
    return np.asarray(inverse, dtype=int)


def impostor_scores(faces: FaceSet) -> Scores:
    """Every pair of faces of different families (upper triangle)."""
    units = _unit_ids(faces)
    sims = faces.embeddings @ faces.embeddings.T
    iu = np.triu_indices(len(faces), k=1)
    keep = units[iu[0]] != units[iu[1]]
    a, b = iu[0][keep], iu[1][keep]
    return Scores(sims[a, b].astype(np.float32), units[a], units[b])


def genuine_scores(faces: FaceSet) -> Scores:
    """Every pair of two images of the same subject."""
    units = _unit_ids(faces)
    out_v: list[np.ndarray] = []
    out_u: list[np.ndarray] = []
    subjects = faces["subject"]
    for s in np.unique(subjects):
        idx = np.flatnonzero(subjects == s)
        if len(idx) < 2:
            continue
        emb = faces.embeddings[idx]
        iu = np.triu_indices(len(idx), k=1)
        out_v.append((emb @ emb.T)[iu])
        out_u.append(np.full(len(iu[0]), units[idx[0]]))
    if not out_v:
        return Scores.empty()
    u = np.concatenate(out_u)
    return Scores(np.concatenate(out_v).astype(np.float32), u, u)


def read_relations(path: Path) -> list[tuple[str, str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [(r["subject_a"], r["subject_b"], r["relation"]) for r in csv.DictReader(fh)]


def kin_scores(faces: FaceSet, relations: list[tuple[str, str, str]]) -> dict[str, Scores]:
    """Every image pair of two related subjects, by relation (parent_child, siblings, grandparent, spouse)."""
    units = _unit_ids(faces)
    by_subject: dict[str, np.ndarray] = {}
    for i, s in enumerate(faces["subject"]):
        by_subject.setdefault(str(s), np.zeros(0, int))
        by_subject[str(s)] = np.append(by_subject[str(s)], i)
    acc: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for a, b, rel in relations:
        ia, ib = by_subject.get(a), by_subject.get(b)
        if ia is None or ib is None:
            continue
        sims = (faces.embeddings[ia] @ faces.embeddings[ib].T).ravel()
        acc.setdefault(rel, []).append((sims, np.full(len(sims), units[ia[0]])))
    return {
        rel: Scores(np.concatenate([v for v, _ in parts]).astype(np.float32), np.concatenate([u for _, u in parts]),
                    np.concatenate([u for _, u in parts]))
        for rel, parts in sorted(acc.items())
    }


def split_half(faces: FaceSet, salt: str = "face-population-v1") -> np.ndarray:
    """Calibration (False) / evaluation (True) by a hash of the family: subject- and family-disjoint, stable."""
    return np.asarray(
        [int(hashlib.sha256(f"{salt}:{f}".encode()).hexdigest()[:8], 16) % 2 == 1 for f in faces["family"]]
    )
