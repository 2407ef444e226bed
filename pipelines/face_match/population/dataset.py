"""The population data of one recognizer: embedded once (cached beside the data), links and labels applied."""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import PipelineError
from pipelines.face_match.matcher import FaceMatcher
from pipelines.face_match.population.ethnicity import east_asian_mask
from pipelines.face_match.population.faceset import FaceSet, embed_rows, read_index
from pipelines.face_match.population.identities import merge_families
from pipelines.face_match.population.pairs import read_relations
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)

INDEX = "index.csv"
LINKS = "links.csv"
RELATIONS = "relations.csv"
FETCH_HINT = "bash scripts/fetch_face_data.sh"


@dataclass(frozen=True)
class PopulationData:
    faces: FaceSet  # families of same-person links merged
    east_asian: np.ndarray
    relations: list[tuple[str, str, str]]
    root: Path
    failures: int


def embedding_key(matcher: FaceMatcher, index: Path) -> str:
    """What cached embeddings must have been made from: this index file and this detector.

    The detector and its landmarks shape every aligned crop: another detector means other embeddings."""
    return f"{hashlib.sha256(index.read_bytes()).hexdigest()[:16]}:{matcher.detector.version}"


def embeddings_for(matcher: FaceMatcher, root: Path) -> FaceSet:
    """The matcher's embeddings of every indexed face, cached in ``root/embeddings`` per recognizer and index."""
    index = root / INDEX
    if not index.is_file():
        raise PipelineError(ReasonCode.MODEL_UNAVAILABLE, f"{index} is missing: fill the face cache with {FETCH_HINT}")
    key = matcher.thresholds.recognizer
    digest = embedding_key(matcher, index)
    cached = root / "embeddings" / f"{key.replace('@', '_').replace('+', '_')}.npz"
    if cached.is_file():
        faces, meta = FaceSet.load(cached)
        if meta.get("recognizer") == key and meta.get("index") == digest:
            return faces
    log.info("embedding the faces of %s with %s (cached in %s)", root, key, cached)
    faces, errors = embed_rows(matcher, root, read_index(index))
    faces.save(cached, {"recognizer": key, "index": digest, "failures": str(len(errors))})
    return faces


def read_links(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [(r["id_a"], r["id_b"]) for r in csv.DictReader(fh)]


def load_population_data(matcher: FaceMatcher, root: Path) -> PopulationData:
    raw = embeddings_for(matcher, root)
    faces = merge_families(raw, read_links(root / LINKS))
    n_index = sum(1 for _ in (root / INDEX).open(encoding="utf-8")) - 1
    return PopulationData(faces, east_asian_mask(faces), read_relations(root / RELATIONS), root, n_index - len(raw))
