"""Test set-up: real model files from ../shared/models and real data from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("PENSION_CERT_MODELS_DIR", str(SHARED / "models"))
os.environ.setdefault("PENSION_CERT_DATA_DIR", str(SHARED / "data"))
# Two cores on CI: one intra-op thread per session keeps parallel test workers from oversubscribing.
os.environ.setdefault("PENSION_CERT_ORT_THREADS", "1")

MODELS_DIR = Path(os.environ["PENSION_CERT_MODELS_DIR"])
DATA_DIR = Path(os.environ["PENSION_CERT_DATA_DIR"])


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not MODELS_DIR.is_dir():
        pytest.fail(f"models directory {MODELS_DIR} is missing: set PENSION_CERT_MODELS_DIR")
    return MODELS_DIR


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"data directory {DATA_DIR} is missing: set PENSION_CERT_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def faces_dir(data_dir: Path) -> Path:
    return data_dir / "faces"
