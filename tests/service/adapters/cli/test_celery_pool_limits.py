"""The certification task's time limits hold in Celery's prefork pool only (docs/operations.md, Celery time
limits; docs/security.md, Part BM): a worker started with another pool (`--pool=solo`, `threads`, `gevent`,
`eventlet`) runs a task that hangs the decoder for ever. It starts (the benchmarks run `--pool=solo`) but says so
at start, in one line naming the pool and the limits. Run as the operator runs it: the real `celery worker`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WARNING = "pension-cert: warning: TASK_TIME_LIMITS_NOT_ENFORCED"


def worker_stderr(
    pool: str | None, models_dir: Path, tmp_path: Path, wait_s: float = 45, logfile: Path | None = None, **more: str
) -> str:
    """The worker's standard error until it tries the (closed) broker (said in `logfile` when given, its log's
    file), then it is stopped. `more`: more environment variables."""
    env = {
        **os.environ,
        "PENSION_CERT_MODELS_DIR": str(models_dir),
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens: the worker retries, we stop it
        **more,
    }
    command = [sys.executable, "-m", "celery", "-A", "service.adapters.workers.tasks", "worker", "--concurrency=1"]
    command += [f"--pool={pool}"] if pool else []
    command += [f"--logfile={logfile}"] if logfile else []
    err = tmp_path / f"stderr-{pool}.txt"
    said = logfile or err
    with err.open("w") as sink:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        try:
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and "Cannot connect to redis" not in text_of(said):
                if proc.poll() is not None:
                    break
                time.sleep(0.3)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    text = err.read_text()
    assert "Cannot connect to redis" in text_of(said), text + text_of(said)  # it got past its start-up checks
    return text


def text_of(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_a_worker_without_the_prefork_pool_says_its_time_limits_do_not_hold(
    pool: str, models_dir: Path, tmp_path: Path
) -> None:
    text = worker_stderr(pool, models_dir, tmp_path)
    [line] = [x for x in text.splitlines() if x.startswith(WARNING)]
    assert f"--pool={pool}" in line and "PENSION_CERT_TASK_TIME_LIMIT_S (270 s)" in line, line
    assert "prefork" in line, line


def test_the_prefork_worker_says_nothing_of_its_limits(models_dir: Path, tmp_path: Path) -> None:
    assert WARNING not in worker_stderr(None, models_dir, tmp_path)  # Celery's default pool


def test_a_detached_worker_logs_the_warning_where_its_log_goes_as_json(models_dir: Path, tmp_path: Path) -> None:
    """The warning went to the raw standard error only: lost under `--detach` or `celery multi` (their standard
    error is /dev/null, the log goes to `--logfile`), and a plain line among the JSON ones under
    `PENSION_CERT_LOG_FORMAT=json`. It is now a WARNING record too, once the worker's logging is set up: in its
    log file, as one JSON object; the raw line stays for the plain text format only."""
    logfile = tmp_path / "worker.log"
    stderr = worker_stderr("solo", models_dir, tmp_path, logfile=logfile, PENSION_CERT_LOG_FORMAT="json")
    records = [json.loads(line) for line in logfile.read_text().splitlines() if line.startswith("{")]
    [record] = [r for r in records if r["message"].startswith("TASK_TIME_LIMITS_NOT_ENFORCED")]
    assert record["level"] == "WARNING" and "--pool=solo" in record["message"], record
    assert "PENSION_CERT_TASK_TIME_LIMIT_S (270 s)" in record["message"], record
    assert WARNING not in stderr, stderr  # no plain line among JSON ones
