"""Test set-up: real model files from ../shared/models and real data from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import shared_type_adapters

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("PENSION_CERT_MODELS_DIR", str(SHARED / "models"))
os.environ.setdefault("PENSION_CERT_DATA_DIR", str(SHARED / "data"))
# Two cores on CI: one intra-op thread per session keeps parallel test workers from oversubscribing.
os.environ.setdefault("PENSION_CERT_ORT_THREADS", "1")

# Every app the suite builds shares its routes' pydantic TypeAdapters (tests/shared_type_adapters.py says why).
shared_type_adapters.install()

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


# Where the suite's time goes, file by file (setup, call and teardown summed over each file's tests): printed after
# --durations' per-test list, so every CI log says which files to look at when the run grows. Under pytest-xdist
# the controller receives each worker's reports here.
_FILE_SECONDS: dict[str, list[float]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _FILE_SECONDS.setdefault(report.nodeid.split("::", 1)[0], [0.0, 0])
    entry[0] += report.duration
    entry[1] += report.when == "call"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FILE_SECONDS or terminalreporter.config.getoption("collectonly"):
        return
    total = sum(seconds for seconds, _n in _FILE_SECONDS.values())
    terminalreporter.write_sep("=", f"slowest 25 files (of {total:.0f} s on all workers)")
    ranked = sorted(_FILE_SECONDS.items(), key=lambda item: item[1][0], reverse=True)
    for path, (seconds, tests) in ranked[:25]:
        terminalreporter.write_line(f"{seconds:8.1f}s {int(tests):4d} tests  {path}")
