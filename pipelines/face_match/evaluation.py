"""Scoring labelled data sets with a matcher: shared by calibration and the benchmark."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import PipelineError
from pipelines.face_match.matcher import FaceMatcher
from pipelines.media import load_image


@dataclass(frozen=True)
class LabelledPair:
    path_a: str
    path_b: str
    genuine: bool


def read_pairs(path: Path) -> list[LabelledPair]:
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: Excel writes a byte-order mark
        return [LabelledPair(r["path_a"], r["path_b"], r["label"].strip() == "1") for r in csv.DictReader(fh)]


def read_identities(path: Path, source: str | None) -> dict[str, str]:
    """image path → identity, optionally only one source (identities are only unique within a source)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: Excel writes a byte-order mark
        return {r["path"]: r["identity"] for r in csv.DictReader(fh) if source is None or r["source"] == source}


def embed_paths(matcher: FaceMatcher, root: Path, paths: Iterable[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embedding per image path, and the reason code of each image that gave no usable face."""
    embeddings: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    for rel in dict.fromkeys(paths):
        try:
            embeddings[rel] = matcher.observe(load_image(root / rel)).embedding
        except PipelineError as exc:
            errors[rel] = exc.reason.value
    return embeddings, errors


def pair_scores(pairs: list[LabelledPair], emb: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    genuine: list[float] = []
    impostor: list[float] = []
    for p in pairs:
        if p.path_a in emb and p.path_b in emb:
            s = float(np.dot(emb[p.path_a], emb[p.path_b]))
            (genuine if p.genuine else impostor).append(s)
    return np.asarray(genuine), np.asarray(impostor)


def all_vs_all(identities: dict[str, str], emb: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor cosine scores of every pair of embedded images (upper triangle)."""
    paths = [p for p in identities if p in emb]
    if len(paths) < 2:
        return np.zeros(0), np.zeros(0)
    mat = np.stack([emb[p] for p in paths])
    ids = np.asarray([identities[p] for p in paths])
    sims = mat @ mat.T
    iu = np.triu_indices(len(paths), k=1)
    same = ids[iu[0]] == ids[iu[1]]
    scores = sims[iu]
    return scores[same], scores[~same]
