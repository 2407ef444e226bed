from __future__ import annotations

import csv
from pathlib import Path

import pytest

from models.packs import load_pack
from pipelines.face_match import FaceMatcher


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
