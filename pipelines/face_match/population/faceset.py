"""A labelled set of embedded faces (identity, family, source, age, ethnicity): read, embed, save, load."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import PipelineError
from pipelines.face_match.matcher import FaceMatcher
from pipelines.media import load_image

log = logging.getLogger(__name__)

LABELS = ("id", "source", "subject", "family", "role", "age", "gender", "ethnicity")
# Added by embedding: the quality flags the matcher raised ("" when the face passes its quality gate).
QUALITY = "quality_flags"
# Also added: the quality measures themselves, so that a stricter gate can be studied without re-embedding.
MEASURES = ("interocular_px", "sharpness", "yaw_deg", "pitch_deg", "brightness")


@dataclass(frozen=True)
class FaceSet:
    """Faces in rows: ``labels[name][i]`` describes ``embeddings[i]`` (L2-normalised)."""

    labels: dict[str, np.ndarray]
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.embeddings)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.labels[name]

    def quality_ok(self) -> np.ndarray:
        """Faces that pass the matcher's quality gate: only these can reach the accept band."""
        return np.asarray(self.labels[QUALITY] == "")

    def ages(self) -> np.ndarray:
        """Labelled age in years, NaN where the source gives none."""
        return np.asarray([float(a) if a else np.nan for a in self.labels["age"]])

    def subset(self, mask: np.ndarray) -> FaceSet:
        return FaceSet({k: v[mask] for k, v in self.labels.items()}, self.embeddings[mask])

    def save(self, path: Path, meta: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {f"label_{k}": v.astype(str) for k, v in self.labels.items()}
        arrays.update({f"meta_{k}": np.asarray(v) for k, v in meta.items()})
        arrays["embeddings"] = self.embeddings.astype(np.float32)
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> tuple[FaceSet, dict[str, str]]:
        with np.load(path) as z:
            labels = {k[6:]: z[k] for k in z.files if k.startswith("label_")}
            meta = {k[5:]: str(z[k]) for k in z.files if k.startswith("meta_")}
            return cls(labels, z["embeddings"].astype(np.float32)), meta


def read_index(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def embed_rows(matcher: FaceMatcher, root: Path, rows: Sequence[dict[str, str]]) -> tuple[FaceSet, dict[str, str]]:
    """Embed the most prominent face of each row's image; returns the set and ``id → reason`` of the failures."""
    kept: list[dict[str, str]] = []
    flags: list[str] = []
    measures: list[list[float]] = []
    vectors: list[np.ndarray] = []
    errors: dict[str, str] = {}
    for i, row in enumerate(rows):
        try:
            # Crops cut from group photos may hold part of a neighbour: the central, larger face is the one meant.
            obs = matcher.observe(load_image(root / row["path"]), allow_multiple=True)
        except PipelineError as exc:
            errors[row["id"]] = exc.reason.value
            continue
        kept.append(row)
        vectors.append(obs.embedding)
        flags.append(" ".join(sorted(f.value for f in obs.quality.flags)))
        measures.append([float(getattr(obs.quality, m)) for m in MEASURES])
        if (i + 1) % 500 == 0:
            log.info("embedded %d/%d faces", i + 1, len(rows))
    labels = {k: np.asarray([r.get(k, "") for r in kept], dtype=str) for k in LABELS}
    labels[QUALITY] = np.asarray(flags, dtype=str)
    for j, m in enumerate(MEASURES):
        labels[m] = np.asarray([f"{row[j]:.2f}" for row in measures], dtype=str)
    emb = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)
    return FaceSet(labels, emb), errors
