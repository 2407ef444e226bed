"""The demo kit and the walk-throughs of the docs, run as written (issue 24 items 5–6):

- `pension-cert certify` on the demo kit (a card rendered around the face of a development clip) accepts;
- `bash scripts/start.sh` on a first run starts a real `pension-cert serve --demo`, which writes the kit, imports
  its beneficiary and fixes the challenge; the README's first-hour block, run verbatim against it, takes one
  certification over HTTP from session to verified certificate with the curl walk-through of docs/service.md
  (scripts/demo_walkthrough.sh, shown verbatim in the doc), then accepts the same kit offline with `certify`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.adapters.cli.demo import DEMO_ACTIONS, DEMO_EXTERNAL_ID, DemoKit, write_kit
from tests.service.servers import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WALKTHROUGH = REPO / "scripts" / "demo_walkthrough.sh"


def fenced_bash_after(doc: Path, heading: str) -> str:
    """The first ```bash block after `heading` in `doc`."""
    text = doc.read_text(encoding="utf-8")
    at = text.index(heading)
    m = re.compile(r"```bash\n(.*?)```", re.S).search(text, at)
    assert m is not None, f"no bash block after {heading!r} in {doc}"
    return m.group(1)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> DemoKit:
    return write_kit(data_dir, tmp_path_factory.mktemp("kit"))


def test_kit_is_small_consistent_and_kept(kit: DemoKit, data_dir: Path) -> None:
    assert Path(kit.card).stat().st_size < 400_000 and kit.actions == DEMO_ACTIONS
    roster = Path(kit.roster).read_text(encoding="utf-8").splitlines()
    assert roster[1].split(",")[:3] == [DEMO_EXTERNAL_ID, kit.id_number, kit.name]
    before = Path(kit.card).stat().st_mtime_ns
    assert write_kit(data_dir, Path(kit.dir)) == kit  # a current kit is not rendered again
    assert Path(kit.card).stat().st_mtime_ns == before


def test_offline_certify_accepts_the_demo_kit(kit: DemoKit) -> None:
    cmd = [sys.executable, "-m", "service.adapters.cli", "certify", "--id-card", kit.card, "--video", kit.video]
    cmd += ["--challenge", ",".join(kit.actions), "--beneficiary-id", kit.id_number]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["decision"] == "accept" and result["reasons"] == []
    assert result["scores"]["card_similarity"] >= result["thresholds"]["face_accept"]


class Served:
    """`pension-cert serve --demo` in its own process; its stderr lines collected as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [ln for ln in self.lines if needle in ln]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} not seen; serve said: {self.lines[-20:]}")


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Served]]:
    """The README's first command, `bash scripts/start.sh`, on a fresh var folder and a free port: on a first run
    it starts `pension-cert serve --demo` (setup.sh finds everything installed by the test run's own set-up)."""
    var = tmp_path_factory.mktemp("demo-var")
    port = free_port()
    env = {
        **os.environ,
        "PENSION_CERT_ENV": "development",  # the walk-through uses the development keys, as a new user would
        "PENSION_CERT_VAR_DIR": str(var),
        "PORT": str(port),
        "PENSION_CERT_WORKER_PROCESSES": "1",
        "PENSION_CERT_ORT_THREADS": "1",
    }
    for name in ("PENSION_CERT_DATABASE_URL", "PENSION_CERT_API_KEYS", "PENSION_CERT_ADMIN_API_KEYS", "HOST"):
        env.pop(name, None)
    cmd = ["bash", str(REPO / "scripts" / "start.sh")]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        yield f"http://127.0.0.1:{port}", var, Served(proc)
    finally:
        proc.terminate()  # start.sh exec'd pension-cert: the signal reaches serve itself
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serve_says_where_it_listens_and_how_to_stop(demo_server: tuple[str, Path, Served]) -> None:
    base, _, served = demo_server
    line = served.wait_for("listening on")
    assert f"listening on {base}" in line and "Ctrl-C" in line and f"{base}/docs" in line


def readme_workdir(tmp: Path, var: Path) -> Path:
    """A checkout-shaped folder for the README block: its `.venv` and `scripts`, `var` = the demo server's
    var folder (so `var/demo` is its kit) and `../shared/models` = the models the tests use."""
    (tmp / "shared").mkdir()
    (tmp / "shared" / "models").symlink_to(Path(os.environ["PENSION_CERT_MODELS_DIR"]).resolve())
    work = tmp / "checkout"
    work.mkdir()
    for name in (".venv", "scripts"):
        (work / name).symlink_to(REPO / name)
    (work / "var").symlink_to(var)
    return work


def test_readme_first_hour_runs_as_written(demo_server: tuple[str, Path, Served], tmp_path: Path, kit: DemoKit) -> None:
    """The README's first-hour block, verbatim (only BASE says where the test's server listens): the curl
    walk-through over HTTP accepts and its certificate verifies, then `certify` accepts the same kit offline."""
    base, var, served = demo_server
    ready = served.wait_for("demo ready")
    assert DEMO_EXTERNAL_ID in ready and "demo_walkthrough.sh" in ready
    block = fenced_bash_after(REPO / "README.md", "### The first hour")
    env = {k: v for k, v in os.environ.items() if k != "PENSION_CERT_MODELS_DIR"}
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env={**env, "BASE": base},
        cwd=readme_workdir(tmp_path, var),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0] == "challenge: " + json.dumps(DEMO_ACTIONS)
    assert lines[1] == "decision: accept, reasons: []"
    verified = json.loads(lines[3])
    assert verified["valid"] is True and verified["id_masked"].endswith(kit.id_number[-4:])
    offline = json.loads(lines[4])
    assert offline["decision"] == "accept" and offline["reasons"] == []


def test_docs_show_the_walkthrough_verbatim() -> None:
    """docs/service.md shows exactly the lines the test above runs (after the script's header)."""
    script = WALKTHROUGH.read_text(encoding="utf-8")
    body = script.split("set -euo pipefail\n", 1)[1]
    assert fenced_bash_after(REPO / "docs" / "service.md", "### Walk-through with curl") == body
