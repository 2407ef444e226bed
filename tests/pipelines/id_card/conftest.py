"""Session-wide ID-card reader and card generator: the OCR and face models load once for all tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.id_card import IdCardReader
from pipelines.id_card.synthetic import CardGenerator


@pytest.fixture(scope="session")
def reader(models_dir: Path) -> IdCardReader:
    return IdCardReader()


@pytest.fixture(scope="session")
def generator(data_dir: Path) -> CardGenerator:
    return CardGenerator(data_dir, seed=2024)


@pytest.fixture(scope="session")
def idcard_dir(data_dir: Path) -> Path:
    return data_dir / "idcard"
