from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from models.packs import load_pack
from pipelines.face_match import FaceMatcher
from pipelines.media import load_image


@dataclass(frozen=True)
class DevFaces:
    """Every dev face image run once through the default pack: faces found, and the main face's embedding."""

    detections: dict[str, int]
    embeddings: dict[str, np.ndarray]


@pytest.fixture(scope="session")
def matcher() -> FaceMatcher:
    return FaceMatcher(load_pack("default"))


@pytest.fixture(scope="session")
def insightface_matcher() -> FaceMatcher:
    return FaceMatcher(load_pack("insightface"))


@pytest.fixture(scope="session")
def face_paths(faces_dir: Path) -> list[str]:
    with (faces_dir / "faces.csv").open(newline="", encoding="utf-8") as fh:
        return [r["path"] for r in csv.DictReader(fh)]


@pytest.fixture(scope="session")
def dev_faces(matcher: FaceMatcher, faces_dir: Path, face_paths: list[str]) -> DevFaces:
    detections: dict[str, int] = {}
    embeddings: dict[str, np.ndarray] = {}
    for rel in face_paths:
        image = load_image(faces_dir / rel)
        dets = matcher.detect(image)  # most prominent first
        detections[rel] = len(dets)
        if dets:
            embeddings[rel] = matcher.observe(image, detection=dets[0]).embedding
    return DevFaces(detections, embeddings)
