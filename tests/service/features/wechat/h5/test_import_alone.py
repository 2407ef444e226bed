"""Each H5 module imports on its own, in a fresh interpreter (a script, a REPL, a test that imports it first).
Before: `import service.features.wechat.h5.voice` failed with "partially initialized module ... has no
attribute 'router'": the HTTP kit's package (service/adapters/http/__init__.py) imported the whole app, whose
WeChat routes import voice again before it had its router; it worked only when the app was imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[5]


# voice: the module of the report; vendor and pages: the cycle through the same package, by another way in.
@pytest.mark.parametrize("module", ["voice", "vendor", "pages"])
def test_an_h5_module_imports_alone(module: str) -> None:
    name = f"service.features.wechat.h5.{module}"
    done = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_app_is_still_found_under_the_package() -> None:
    # `from service.adapters.http import create_app` (the tests, uvicorn's factory) keeps working.
    done = subprocess.run(
        [sys.executable, "-c", "from service.adapters.http import create_app; print(create_app.__module__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "service.adapters.http.app"
