from __future__ import annotations

import csv
import fcntl
import os
import pickle
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


def _embed_dev_faces(matcher: FaceMatcher, faces_dir: Path, face_paths: list[str]) -> DevFaces:
    detections: dict[str, int] = {}
    embeddings: dict[str, np.ndarray] = {}
    for rel in face_paths:
        image = load_image(faces_dir / rel)
        dets = matcher.detect(image)  # most prominent first
        detections[rel] = len(dets)
        if dets:
            embeddings[rel] = matcher.observe(image, detection=dets[0]).embedding
    return DevFaces(detections, embeddings)


@pytest.fixture(scope="session")
def dev_faces(
    matcher: FaceMatcher, faces_dir: Path, face_paths: list[str], tmp_path_factory: pytest.TempPathFactory
) -> DevFaces:
    """Under pytest-xdist, the first worker to ask embeds the dev faces (about 40 s of CPU) and the others, waiting on
    its lock, read its result: one run's file (named by the run's id), in the run's shared temporary folder."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return _embed_dev_faces(matcher, faces_dir, face_paths)
    shared = tmp_path_factory.getbasetemp().parent / f"dev_faces-{run}.pickle"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        if shared.exists():
            with shared.open("rb") as fh:
                found: DevFaces = pickle.load(fh)  # this run's own file, written by another worker
                return found
        faces = _embed_dev_faces(matcher, faces_dir, face_paths)
        with shared.open("wb") as fh:
            pickle.dump(faces, fh)
        return faces
