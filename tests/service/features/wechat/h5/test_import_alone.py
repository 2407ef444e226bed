"""Each H5 module imports on its own, in a fresh interpreter (a script, a REPL, a test that imports it first).
Before: `import service.features.wechat.h5.voice` failed with "partially initialized module ... has no
attribute 'router'": the HTTP kit's package (service/adapters/http/__init__.py) imported the whole app, whose
WeChat routes import voice again before it had its router; it worked only when the app was imported first."""

from __future__ import annotations

import ast
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


def test_the_http_package_runs_nothing_of_the_app() -> None:
    # Every import of the HTTP kit (deps, errors, upload) runs service/adapters/http/__init__.py first: it imports
    # nothing, not even lazily (the app is imported from its module, service.adapters.http.app), so no import of
    # the kit can start the app's import chain again.
    init = ROOT / "service" / "adapters" / "http" / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    assert [type(n).__name__ for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)] == []
    assert [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)] == []  # no module __getattr__
    code = "import sys, service.adapters.http; print(' '.join(sorted(m for m in sys.modules if 'service' in m)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["service", "service.adapters", "service.adapters.http"]
