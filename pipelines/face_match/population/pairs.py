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


def subject_index(faces: FaceSet) -> dict[str, np.ndarray]:
    """Row indices of each subject's faces."""
    subjects, inverse = np.unique(faces["subject"], return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(subjects)))[:-1]
    return {str(s): idx for s, idx in zip(subjects, np.split(order, bounds), strict=True)}


def impostor_pairs(faces: FaceSet) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (a, b) of every pair of faces of different families (upper triangle)."""
    units = _unit_ids(faces)
    iu = np.triu_indices(len(faces), k=1)
    keep = units[iu[0]] != units[iu[1]]
    return iu[0][keep], iu[1][keep]


def genuine_pairs(faces: FaceSet) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (a, b) of every pair of two images of the same subject, subject by subject."""
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    for idx in subject_index(faces).values():
        iu = np.triu_indices(len(idx), k=1)
        a.append(idx[iu[0]])
        b.append(idx[iu[1]])
    return (np.concatenate(a), np.concatenate(b)) if a else (np.zeros(0, int), np.zeros(0, int))


def impostor_scores(faces: FaceSet) -> Scores:
    """Every pair of faces of different families (upper triangle)."""
    units = _unit_ids(faces)
    a, b = impostor_pairs(faces)
    sims = faces.embeddings @ faces.embeddings.T
    return Scores(sims[a, b].astype(np.float32), units[a], units[b])


def genuine_scores(faces: FaceSet) -> Scores:
    """Every pair of two images of the same subject (in the order of ``genuine_pairs``)."""
    units = _unit_ids(faces)
    values: list[np.ndarray] = []
    for idx in subject_index(faces).values():
        emb = faces.embeddings[idx]
        values.append((emb @ emb.T)[np.triu_indices(len(idx), k=1)])
    a, _ = genuine_pairs(faces)
    if not len(a):
        return Scores.empty()
    return Scores(np.concatenate(values).astype(np.float32), units[a], units[a])


def read_relations(path: Path) -> list[tuple[str, str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [(r["subject_a"], r["subject_b"], r["relation"]) for r in csv.DictReader(fh)]


def kin_scores(faces: FaceSet, relations: list[tuple[str, str, str]]) -> dict[str, Scores]:
    """Every image pair of two related subjects, by relation (parent_child, siblings, grandparent, spouse)."""
    units = _unit_ids(faces)
    by_subject = subject_index(faces)
    acc: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for a, b, rel in relations:
        ia, ib = by_subject.get(a), by_subject.get(b)
        if ia is None or ib is None:
            continue
        sims = (faces.embeddings[ia] @ faces.embeddings[ib].T).ravel()
        acc.setdefault(rel, []).append((sims, np.full(len(sims), units[ia[0]])))
    return {
        rel: Scores(
            np.concatenate([v for v, _ in parts]).astype(np.float32),
            np.concatenate([u for _, u in parts]),
            np.concatenate([u for _, u in parts]),
        )
        for rel, parts in sorted(acc.items())
    }


def split_half(faces: FaceSet, salt: str = "face-population-v1") -> np.ndarray:
    """Calibration (False) / evaluation (True) by a hash of the family: subject- and family-disjoint, stable."""
    return np.asarray(
        [int(hashlib.sha256(f"{salt}:{f}".encode()).hexdigest()[:8], 16) % 2 == 1 for f in faces["family"]]
    )
