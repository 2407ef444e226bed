"""The first hour of a new operator, as the README and docs/operations.md lead them (docs/security.md Part AD):
the first staff account made from a terminal or a script, a model download that fails, the daily run that
nothing schedules by itself. Each test runs the real command line (or the documented lines) in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from service.adapters.cli.common import EXIT_CODES, EXIT_CONFIG, EXIT_INPUT, EXIT_MODEL
from service.features.console.auth import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, USERNAME_MAX_CHARS
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.servers import free_port

REPO = Path(__file__).resolve().parents[4]
STRONG = "river cabinet lantern 47"
INTERNALS = ("Traceback", "Warning", ".py:", "getpass")


def console(var_dir: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """`pension-cert console …` without a terminal (stdin from /dev/null, no controlling tty): a script or cron."""
    env = {k: v for k, v in os.environ.items() if k != "PENSION_CERT_CONSOLE_PASSWORD"}
    env["PENSION_CERT_VAR_DIR"] = str(var_dir)
    if password is not None:
        env["PENSION_CERT_CONSOLE_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "service.adapters.cli", "console", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal: getpass cannot fall back to /dev/tty
    )


def on_a_terminal(var_dir: Path, args: list[str], answers: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run `pension-cert …` on a pseudo-terminal (its controlling tty, as an operator's shell), typing the next
    answer at each prompt (a line ending in ': '). Returns the exit code and everything the terminal showed."""
    env = {k: v for k, v in os.environ.items() if k != "PENSION_CERT_CONSOLE_PASSWORD"}
    env["PENSION_CERT_VAR_DIR"] = str(var_dir)
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once (nothing else may run in a forked pytest)
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "service.adapters.cli", *args], env)
    shown, pending = b"", [a.encode() + b"\n" for a in answers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal (exited)
            break
        if not chunk:
            break
        shown += chunk
        if pending and shown.rstrip(b" ").endswith(b":"):
            os.write(fd, pending.pop(0))
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


def staff_names(var_dir: Path) -> list[str]:
    db = var_dir / "pension_cert.db"
    if not db.exists():
        return []
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        names = list(conn.execute(text("SELECT username FROM staff_users ORDER BY id")).scalars())
    engine.dispose()
    return names


def test_create_user_without_a_terminal_is_one_line_saying_what_to_set(tmp_path: Path) -> None:
    """A script without PENSION_CERT_CONSOLE_PASSWORD: one line naming the variable, before any prompt; it
    showed Python's GetPassWarning (a file path and line of getpass.py), an echo warning and a prompt first."""
    proc = console(tmp_path, "create-user", "--username", "admin", "--role", "admin")
    assert proc.returncode == EXIT_INPUT and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("pension-cert: ") and "PENSION_CERT_CONSOLE_PASSWORD" in proc.stderr
    assert not any(bad in proc.stderr for bad in INTERNALS), proc.stderr
    assert "密码" not in proc.stderr  # no prompt that nobody can answer (密码 / password:)
    assert staff_names(tmp_path) == []


def test_a_prompted_password_is_asked_twice_and_a_typo_creates_nobody(tmp_path: Path) -> None:
    """The password is typed blind (no echo): it was asked once, so a typo made an admin account whose password
    nobody knows. Now it is asked again and a mismatch creates nothing; the same twice creates the account."""
    args = ["console", "create-user", "--username", "admin", "--role", "admin"]
    code, shown = on_a_terminal(tmp_path, args, [STRONG, STRONG + "x"])
    assert code == EXIT_INPUT, shown
    assert "do not match" in shown and STRONG not in shown and "Traceback" not in shown
    assert staff_names(tmp_path) == []
    code, shown = on_a_terminal(tmp_path, args, [STRONG, STRONG])
    assert code == 0, shown
    assert json.loads(shown.strip().splitlines()[-1])["username"] == "admin" and STRONG not in shown
    assert staff_names(tmp_path) == ["admin"]


def test_an_existing_username_has_its_code_and_the_next_step(tmp_path: Path) -> None:
    """`user admin exists` said neither its reason code nor what to do (another name; a forgotten password is
    reset on the console's users page)."""
    made = console(tmp_path, "create-user", "--username", "admin", "--role", "admin", password=STRONG)
    assert made.returncode == 0, made.stderr
    again = console(tmp_path, "create-user", "--username", " admin ", "--role", "admin", password=STRONG)
    assert again.returncode == EXIT_INPUT and again.stdout == ""
    line = again.stderr.strip()
    assert line.startswith("pension-cert: USER_EXISTS: user admin exists"), line
    assert "/console/users" in line and "--username" in line
    assert staff_names(tmp_path) == ["admin"]


def test_create_user_help_says_the_password_rule_and_who_must_change_it(cli: CliRunner) -> None:
    proc = cli("console", "create-user", "--help")
    assert proc.returncode == 0
    out = " ".join(proc.stdout.split())  # argparse wraps lines
    # The figures of the console's own rule (auth.py is too heavy for --help to import: the text repeats them).
    assert "PENSION_CERT_CONSOLE_PASSWORD" in out and "typed twice" in out
    assert f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters" in out
    assert "first account" in out and "change its password at its first login" in out
    assert f"1 to {USERNAME_MAX_CHARS} characters" in out  # --username
    assert "/console/users" in out  # a forgotten password


def test_a_failed_model_fetch_says_why_and_what_to_do(cli: CliRunner, tmp_path: Path) -> None:
    """`scripts/start.sh` hides `models fetch`'s JSON lines (stdout): its one stderr line was all an operator
    saw, `5 of 5 model(s) could not be fetched`, without the cause or the fix."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PENSION_CERT_MODELS_DIR": str(tmp_path / "models"), "HOME": str(tmp_path)}
    proc = cli("models", "fetch", "--pack", "default", "--from", str(empty), env=env)
    assert proc.returncode == EXIT_MODEL
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("pension-cert: MODEL_UNAVAILABLE: 5 of 5 model(s) could not be fetched"), line
    assert str(empty) in line and "yunet" in line  # the first failure's cause: where it looked, for what
    assert "PENSION_CERT_MODELS_DIR" in line  # and the way out


def daily_run_block() -> str:
    doc = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    at = doc.index("## The daily run")
    m = re.compile(r"```bash\n(.*?)```", re.S).search(doc, at)
    assert m is not None
    return m.group(1)


def test_operations_daily_run_block_runs_as_written(tmp_path: Path) -> None:
    """The daily run over HTTP, for a scheduler on another host (the embedded thread, Celery beat and
    `pension-cert cycle-run` start it otherwise: tests/service/test_daily_run.py). docs/operations.md's block runs
    here, verbatim, against a real `pension-cert serve` on the development keys, and the run is audited."""
    port = free_port()
    env = {
        **os.environ,
        "PENSION_CERT_ENV": "development",
        "PENSION_CERT_VAR_DIR": str(tmp_path),
        "PENSION_CERT_WORKER_MODE": "none",
    }
    for name in ("PENSION_CERT_DATABASE_URL", "PENSION_CERT_ADMIN_API_KEYS", "PENSION_CERT_BROKER_URL"):
        env.pop(name, None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "service.adapters.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stderr is not None
        for line in serve.stderr:
            if "listening on" in line:
                break
        else:
            raise AssertionError("serve did not start")
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", daily_run_block()],
            env={**env, "BASE": f"http://127.0.0.1:{port}", "HOME": str(tmp_path)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        serve.terminate()
        serve.wait(60)
    assert run.returncode == 0, run.stdout + run.stderr
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["suspended"] == 0 and answer["date"]
    assert (tmp_path / ".pension-cert-admin.header").stat().st_mode & 0o777 == 0o600  # the key: this account's only
    engine = create_engine(f"sqlite:///{tmp_path / 'pension_cert.db'}")
    with engine.connect() as conn:
        actions = list(conn.execute(text("SELECT action FROM audit_entries")).scalars())
    engine.dispose()
    assert "cycle.run" in actions


def test_demo_ready_says_how_to_reach_this_server_and_its_kit(tmp_path: Path, data_dir: Path) -> None:
    """`PORT=8080 bash scripts/start.sh` (README) said `Try: bash scripts/demo_walkthrough.sh`, which goes to port
    8000 and looks for the kit in ./var/demo: `curl: (7) Failed to connect`. The line now names BASE and KIT
    where they are not the walk-through's defaults; run as printed, from the checkout, it certifies the kit."""
    port = free_port()
    env = {
        **os.environ,
        "PENSION_CERT_ENV": "development",
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_DATA_DIR": str(data_dir),
        "PENSION_CERT_WORKER_PROCESSES": "1",
        "PENSION_CERT_ORT_THREADS": "1",
    }
    for name in ("PENSION_CERT_DATABASE_URL", "PENSION_CERT_API_KEYS", "PENSION_CERT_ADMIN_API_KEYS", "BASE", "KIT"):
        env.pop(name, None)
    env.pop("PENSION_CERT_WORKER_MODE", None)
    env.pop("PENSION_CERT_BROKER_URL", None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "service.adapters.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stderr is not None
        ready = next((line for line in serve.stderr if "demo ready" in line), "")
        m = re.search(r"Try: (.*?) \(docs/service\.md", ready)
        assert m is not None, ready
        command = m.group(1)
        assert f"BASE=http://127.0.0.1:{port}" in command and f"KIT={tmp_path / 'var' / 'demo'}" in command
        run = subprocess.run(
            ["bash", "-c", command],
            env={k: v for k, v in env.items() if k not in ("PENSION_CERT_VAR_DIR", "PENSION_CERT_DATA_DIR")},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        serve.terminate()
        serve.wait(60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "decision: accept, reasons: []" in run.stdout


def test_top_level_help_says_what_each_exit_code_means_and_where_to_start(cli: CliRunner) -> None:
    """A cron job's author reads `pension-cert --help`: the exit codes were only in the README."""
    proc = cli("--help")
    assert proc.returncode == 0
    out = " ".join(proc.stdout.split())
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {' '.join(meaning.split())}" in out, (code, out)
    assert "pension-cert serve" in out and "pension-cert console create-user" in out


def test_a_models_directory_that_cannot_be_made_is_said_in_words(cli: CliRunner, tmp_path: Path) -> None:
    """PENSION_CERT_MODELS_DIR naming a file (a typo): the error was Python's `[Errno 20] Not a directory: '…'`."""
    not_a_dir = tmp_path / "models"
    not_a_dir.write_text("")
    source = tmp_path / "empty"
    source.mkdir()
    proc = cli(
        "models", "fetch", "yunet_2023mar", "--from", str(source), env={"PENSION_CERT_MODELS_DIR": str(not_a_dir)}
    )
    # A setting's mistake (exit 4, as every other one: Part AX), said before any model is tried.
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "Errno" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert f"PENSION_CERT_MODELS_DIR={not_a_dir}: is a file, not a folder" in proc.stderr, proc.stderr
