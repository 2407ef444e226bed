"""Dead workers, for real: an embedded worker process SIGKILLed is replaced and its job done at once; a
standalone worker SIGKILLed has its job taken over when its heartbeat goes stale, while a live worker's long
job is left alone; a Celery worker's heartbeat gates /readyz. The job lease stays at its default 300 s
throughout: none of this waits for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.heartbeat import live_workers
from service.certification.models import CertSession, WorkerHeartbeat
from tests.service.adapters.http.helpers import open_session
from tests.service.conftest import API_KEY, make_settings
from tests.service.faults.helpers import assert_decided_once, enrol, timed_upload, video_copy, wait_for
from tests.service.live import REPO, celery_worker, fresh_database, live_service, settings_env, wait_decided

pytestmark = [pytest.mark.slow, pytest.mark.faults]

# Far beyond any wait below: a job taken over was freed by the heartbeat or the supervisor, not the lease.
LEASE_S = 300
# After the kill, the job must be decided within this (a new worker loads its models, then certifies).
RECOVERY_S = 60.0


def job(ctx: ServiceContext, session_id: str) -> CertSession:
    with ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None
        return s


def held_by(ctx: ServiceContext, session_id: str, pid: int) -> bool:
    s = job(ctx, session_id)
    return s.state == "processing" and f":{pid}:" in (s.worker_process or "")


def test_killed_embedded_worker_process_is_replaced_and_its_job_done(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.adapters.http.app import create_app

    url = fresh_database({"database_url": f"sqlite:///{tmp_path / 'x.db'}"}, tmp_path)
    settings = make_settings(
        tmp_path / "var",
        database_url=url,
        worker_mode="process",
        worker_processes=1,
        poll_interval_s=0.2,
        worker_heartbeat_s=0.5,
        job_lease_s=LEASE_S,
    )
    for key, value in settings_env(settings).items():  # `serve` starts its workers with its own environment
        if key.startswith("PENSION_CERT_") or key == "PYTHONPATH":
            monkeypatch.setenv(key, value)
    restarts0 = REGISTRY.get_sample_value("pension_cert_worker_restarts_total", {"mode": "process"}) or 0.0
    app = create_app(settings)
    with TestClient(app) as client:
        client.headers["X-API-Key"] = API_KEY
        ctx: ServiceContext = app.state.ctx
        supervisor = app.state.worker_supervisor
        (first,) = supervisor.handles
        wait_for(lambda: client.get("/readyz").status_code == 200, 60, "the worker's first heartbeat")

        ((ext, card),) = enrol(client, data_dir, "SUP", 1)
        s = open_session(client, ext)
        timed_upload(client, s, card, video_copy(data_dir, 0))
        wait_for(lambda: held_by(ctx, s["session_id"], first.pid), 120, "the worker holds the job", 0.02)
        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()

        result = wait_decided(client, s, timeout=RECOVERY_S + 30)
        took = time.monotonic() - killed
        assert result["decision"] == "accept", result
        assert took < RECOVERY_S, took
        (second,) = supervisor.handles
        assert second.pid != first.pid and second.poll() is None
        done = job(ctx, s["session_id"])
        assert done.job_attempts == 2 and f":{second.pid}:" in (done.worker_process or "")
        assert_decided_once(ctx, [s["session_id"]])
        with ctx.db() as db:  # the supervisor recorded the death: the job did not wait for staleness either
            dead = db.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.pid == first.pid)).one()
            assert dead.stopped_at is not None
        assert supervisor.restarts == 1
        restarts = REGISTRY.get_sample_value("pension_cert_worker_restarts_total", {"mode": "process"})
        assert restarts == restarts0 + 1
        assert 'pension_cert_worker_restarts_total{mode="process"}' in client.get("/metrics").text
        assert client.get("/readyz").status_code == 200


# A `pension-cert worker` whose certifications take SLOW_S longer (a long job, e.g. a big video on a busy CPU).
SLOW_WORKER = """
import os, sys, time
from pipelines.decision.runner import Certifier
run = Certifier.run
def slow(self, *args, **kwargs):
    time.sleep(float(os.environ["SLOW_S"]))
    return run(self, *args, **kwargs)
Certifier.run = slow
from service.adapters.cli import main
sys.exit(main(["-v", "worker"]))
"""


def test_standalone_worker_long_job_kept_then_taken_over_when_its_heartbeat_stops(
    tmp_path: Path, data_dir: Path
) -> None:
    stale_s = 1.5
    backend = {"database_url": f"sqlite:///{tmp_path / 'x.db'}", "broker_url": "", "worker_mode": "none"}
    with live_service(backend, tmp_path, worker_heartbeat_s=0.3, worker_stale_s=stale_s, job_lease_s=LEASE_S) as (
        client,
        settings,
    ):
        ctx = ServiceContext(settings, schema=None)
        env = settings_env(settings)
        logs = {n: tmp_path / f"worker-{n}.log" for n in ("slow", "other")}
        procs: list[subprocess.Popen[bytes]] = []

        def start(name: str, cmd: list[str], extra: dict[str, str]) -> subprocess.Popen[bytes]:
            with logs[name].open("wb") as fh:
                p = subprocess.Popen(cmd, env={**env, **extra}, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
            procs.append(p)
            return p

        try:
            slow = start("slow", [sys.executable, "-c", SLOW_WORKER], {"SLOW_S": "30"})
            wait_for(lambda: "polling" in logs["slow"].read_text(errors="replace"), 120, "slow worker polling")
            ((ext, card),) = enrol(client, data_dir, "HB", 1)
            s = open_session(client, ext)
            timed_upload(client, s, card, video_copy(data_dir, 1))
            wait_for(lambda: held_by(ctx, s["session_id"], slow.pid), 60, "the slow worker holds the job", 0.02)
            claimed = time.monotonic()

            other = start("other", [sys.executable, "-m", "service.adapters.cli", "-v", "worker"], {})
            wait_for(lambda: "polling" in logs["other"].read_text(errors="replace"), 120, "second worker polling")
            # The second worker polls (every 0.2 s) for a while, and the job is older than 3x the staleness
            # limit: a live worker's long job is not taken.
            time.sleep(max(1.0, claimed + 3 * stale_s - time.monotonic()))
            assert slow.poll() is None, logs["slow"].read_text(errors="replace")
            held = job(ctx, s["session_id"])
            assert held_by(ctx, s["session_id"], slow.pid) and held.job_attempts == 1, (held.state, held.worker_id)
            assert live_workers(ctx) == 2

            os.kill(slow.pid, signal.SIGKILL)
            slow.wait(10)
            killed = time.monotonic()
            wait_for(lambda: held_by(ctx, s["session_id"], other.pid), 5 * stale_s + 5, "taken over", 0.05)
            taken = time.monotonic() - killed
            result = wait_decided(client, s, timeout=RECOVERY_S)
            assert result["decision"] == "accept", result
            assert taken < 3 * stale_s + 2, taken  # stale after stale_s, claimed at the next poll
            done = job(ctx, s["session_id"])
            assert done.job_attempts == 2 and (done.worker_id or "").endswith(f":{other.pid}")
            assert_decided_once(ctx, [s["session_id"]])
            assert live_workers(ctx) == 1
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        p.kill()


def test_celery_worker_heartbeat_gates_readiness(scaleout_urls: dict[str, str], tmp_path: Path) -> None:
    with live_service(scaleout_urls, tmp_path, start_worker=False, worker_heartbeat_s=0.3, worker_stale_s=1.5) as (
        client,
        settings,
    ):
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["failing"] == ["workers"], r.text
        ctx = ServiceContext(settings, schema=None)
        with celery_worker(settings, tmp_path / "celery.log") as proc:
            wait_for(lambda: client.get("/readyz").status_code == 200, 90, "the celery worker's heartbeat", 0.2)
            with ctx.db() as db:
                row = db.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.pid == proc.pid)).one()
                assert row.kind == "celery" and row.stopped_at is None
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            killed = time.monotonic()
            wait_for(lambda: client.get("/readyz").status_code == 503, 10, "readiness notices the dead worker", 0.1)
            assert time.monotonic() - killed < 5
            assert client.get("/readyz").json()["failing"] == ["workers"]
