"""scripts/setup.sh (sourced by start.sh and test.sh) on a machine where the account running it may not install
system packages (not root, no sudo): docs/security.md Part Q."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fake(bin_dir: Path, name: str, body: str) -> None:
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    tool.chmod(0o755)


def test_an_account_that_cannot_install_packages_is_told_what_to_ask_for(tmp_path: Path) -> None:
    """apt-get failed (no root, no sudo) and `set -e` stopped the set-up there: `scripts/start.sh` could not start
    the service at all, though none of the missing packages is needed to run it. The set-up now names the
    packages to ask an administrator for, and goes on."""
    if shutil.which("sudo"):  # it would run the real apt-get as root (sudo resets PATH)
        pytest.skip("this machine has sudo: the case is an account without it")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    _fake(bin_dir, "dpkg-query", "exit 1")  # nothing installed
    _fake(bin_dir, "id", 'if [ "$1" = "-u" ]; then echo 1000; else exec /usr/bin/id "$@"; fi')  # not root
    _fake(
        bin_dir,
        "apt-get",
        f'echo "$@" >>{calls}; echo "E: Could not open lock file - open (13: Permission denied)" >&2; exit 100',
    )
    web = tmp_path / "web" / "onnxruntime-web-1.31.1"
    web.mkdir(parents=True)
    (web / ".complete").write_text("", encoding="utf-8")  # the H5 bundle is there: no npm
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PENSION_CERT_WEB_DIR": str(tmp_path / "web")}
    done = subprocess.run(
        # As start.sh sources it: a plain command, so that its `set -e` applies (in an `&&` list bash ignores it).
        ["bash", "-c", 'source scripts/setup.sh\necho "models=$PENSION_CERT_MODELS_DIR"'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "models=" in done.stdout  # the rest of the set-up ran
    assert "apt-get install" in done.stderr and "fonts-noto-cjk" in done.stderr
    assert not calls.exists()  # apt-get is not tried where it cannot work


def _sourced(tmp_path: Path, before: str) -> str:
    """What a shell reports of its options after `before` and sourcing the set-up (its stdout)."""
    web = tmp_path / "web" / "onnxruntime-web-1.31.1"
    web.mkdir(parents=True, exist_ok=True)
    (web / ".complete").write_text("", encoding="utf-8")  # the H5 bundle is there: no npm
    script = f'{before}\nsource scripts/setup.sh >/dev/null\necho "flags=$-"\nshopt -qo pipefail && echo pipefail\n'
    done = subprocess.run(
        ["bash", "-c", script + 'false\necho "went on=${UNSET_IN_THIS_TEST:-}"'],
        cwd=ROOT,
        env={**os.environ, "PENSION_CERT_WEB_DIR": str(tmp_path / "web")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout


def test_sourcing_the_set_up_gives_the_caller_its_shell_options_back(tmp_path: Path) -> None:
    """Before, the set-up's `set -euo pipefail` stayed on in the shell that sourced it: an interactive shell (or a
    script of its own) then ended at its next failing command, or at an unset variable. Strict callers (start.sh,
    test.sh, test_at.sh) set it themselves and keep it."""
    lax = _sourced(tmp_path, "set +euo pipefail")
    flags = lax.split("flags=", 1)[1].split()[0]
    assert "e" not in flags and "u" not in flags and "pipefail" not in lax.split(), lax
    assert "went on=" in lax  # `false` did not end it
    strict = _sourced(tmp_path, "set -euo pipefail")
    flags = strict.split("flags=", 1)[1].split()[0]
    assert "e" in flags and "u" in flags and "pipefail" in strict.split(), strict
    assert "went on=" not in strict  # its own `set -e` still stops it


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version.strip(), f"constraints.txt: {line!r} is not name==version"
            pins[_canonical(name)] = version.strip()
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned_and_installed_at_its_pin() -> None:
    """Before, pyproject.toml gave lower bounds only: a fresh machine took the newest ruff, mypy, pytest or FastAPI
    of the day, so the checks (and the service) could change overnight with no change of ours. Each dependency,
    the dev tools' too, now has its exact version in constraints.txt, which the set-up installs with; this venv,
    set up by scripts/setup.sh, holds exactly those versions."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = _pins()
    names = [_canonical(re.split(r"[\[<>=!~;\s]", spec, maxsplit=1)[0]) for spec in declared]
    assert [n for n in names if n not in pins] == [], "declared but not in constraints.txt"
    installed = {_canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    differs = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    assert differs == {}, "constraints.txt (pinned, installed); rerun scripts/setup.sh"
