"""Scale-out with its own PostgreSQL, stopped (`pg_ctl stop -m fast`) while a `celery worker` holds a job and
restarted on the same port and data directory. Meanwhile the API answers a quick 503 DB_UNAVAILABLE (never a
500, never a hang) and stores nothing; afterwards the same API process serves again (no restart), and the
job whose database writes failed mid-processing is redone once by the task's own retry: one decision."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.certification.catalog import SERVICE_MESSAGES_ZH
from service.certification.context import ServiceContext
from service.certification.models import CertSession
from tests.service.adapters.http.helpers import auth, open_session, put_card, put_video
from tests.service.faults.helpers import (
    LONG,
    QUICK_S,
    assert_decided_once,
    enrol,
    state_of,
    video_copy,
    wait_for,
    wait_worker_ready,
)
from tests.service.faults.servers import postgres_server, redis_server
from tests.service.live import celery_worker, live_service, wait_decided
from tests.service.servers import postgres_available, redis_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.faults,
    pytest.mark.skipif(
        not (postgres_available() and redis_available()), reason="needs the postgresql and redis-server binaries"
    ),
]

RESTARTS = 3 if LONG else 1


def assert_unavailable(r: Any, took: float) -> None:
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "DB_UNAVAILABLE" and err["message"] == SERVICE_MESSAGES_ZH["DB_UNAVAILABLE"], err
    assert r.headers.get("Retry-After")
    assert took < QUICK_S, f"answered after {took:.1f}s with the database down"


def timed(call: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    r = call()
    return r, time.monotonic() - t0


def one_restart(
    client: TestClient, ctx: ServiceContext, pg: Any, log: Path, ext: str, card: bytes, video: bytes, i: int
) -> dict[str, Any]:
    """Stop PostgreSQL while the worker holds one job; returns the job's session."""
    s = open_session(client, ext)
    later = open_session(client, ext)  # its card upload is refused during the outage, re-sent after
    assert put_card(client, s, card).status_code == 200
    assert put_video(client, s, video).json()["state"] == "queued"
    sid = s["session_id"]
    wait_for(lambda: state_of(ctx, sid) == "processing", 120, "worker claims the job", interval=0.01)
    retries_before = log.read_text(errors="replace").count("retry: Retry in")
    pg.stop()

    # While down: quick, coded 503 answers for the citizen and the channel; nothing stored.
    r, took = timed(lambda: client.get(f"/api/v1/sessions/{sid}", headers=auth(s)))
    assert_unavailable(r, took)
    r, took = timed(lambda: client.post("/api/v1/sessions", json={"external_id": ext}))
    assert_unavailable(r, took)
    rid = f"during-outage-{i}"
    media_before = sorted(p.name for p in ctx.settings.effective_media_dir.rglob("*"))
    r, took = timed(lambda: put_card(client, later, card, rid=rid))
    assert_unavailable(r, took)
    assert sorted(p.name for p in ctx.settings.effective_media_dir.rglob("*")) == media_before

    # The worker's database writes fail: the task retries (Celery autoretry), it does not give up or decide.
    wait_for(
        lambda: log.read_text(errors="replace").count("retry: Retry in") > retries_before,
        180,
        "the task retries on the database error",
        interval=0.2,
    )
    pg.start()
    # The same API process serves again: the pool replaces its dead connections (pre-ping).
    r = client.get(f"/api/v1/sessions/{sid}", headers=auth(s))
    assert r.status_code == 200 and r.json()["state"] in ("processing", "queued", "decided"), r.text
    r = put_card(client, later, card, rid=rid)  # the refused request, re-sent: now stored
    assert r.status_code == 200 and r.json()["uploads"]["id_card"] is True, r.text
    return s


def test_postgres_restart_mid_job_redoes_it_once(tmp_path: Path, data_dir: Path) -> None:
    with postgres_server() as pg, redis_server(tmp_path / "redis") as redis:
        backend = {"database_url": pg.url, "broker_url": redis.url, "worker_mode": "celery"}
        with live_service(backend, tmp_path, worker_mode="celery", sweep_interval_s=2, start_worker=False) as (
            client,
            settings,
        ):
            ctx = ServiceContext(settings, schema=None)
            people = enrol(client, data_dir, "PG", RESTARTS)
            log = tmp_path / "celery.log"
            sids: list[str] = []
            with celery_worker(settings, log, beat=True) as worker:
                wait_worker_ready(log)
                for i, (ext, card) in enumerate(people):
                    s = one_restart(client, ctx, pg, log, ext, card, video_copy(data_dir, i), i)
                    result = wait_decided(client, s, timeout=240)
                    assert result["decision"] == "accept", result
                    sids.append(s["session_id"])
                assert worker.poll() is None, "the worker exited while the database was down"
            assert_decided_once(ctx, sids)
            with ctx.db() as db:
                for sid in sids:
                    row = db.get(CertSession, sid)
                    # First claim, then the retry's reclaim: redone once, not left for a lease to expire; the
                    # outage spent no attempt (before: 2, a few outages made a good video a FAILED job).
                    assert row is not None and row.job_attempts == 1, (sid, row and row.job_attempts)


def test_postgres_restart_mid_job_polling_worker_takes_its_job_back(tmp_path: Path, data_dir: Path) -> None:
    """The embedded default's `pension-cert worker`: its decision write fails while PostgreSQL is down; once
    the database is back it reclaims that job itself (spending no attempt), long before the 300 s lease expires."""
    from tests.service.faults.test_worker_sigkill import start_worker
    from tests.service.live import settings_env

    with postgres_server() as pg:
        backend = {"database_url": pg.url, "broker_url": "", "worker_mode": "none"}
        with live_service(backend, tmp_path, worker_mode="none") as (client, settings):
            assert settings.workers.job_lease_s >= 300
            ctx = ServiceContext(settings, schema=None)
            ((ext, card),) = enrol(client, data_dir, "PGPOLL", 1)
            s = open_session(client, ext)
            assert put_card(client, s, card).status_code == 200
            assert put_video(client, s, video_copy(data_dir, 0)).json()["state"] == "queued"
            log = tmp_path / "worker.log"
            worker = start_worker(settings_env(settings), log)
            try:
                sid = s["session_id"]
                wait_for(lambda: state_of(ctx, sid) == "processing", 120, "worker claims the job", interval=0.01)
                pg.stop()
                wait_for(
                    lambda: "processing failed" in log.read_text(errors="replace"),
                    120,
                    "the worker's write fails",
                    interval=0.1,
                )
                pg.start()
                t0 = time.monotonic()
                result = wait_decided(client, s, timeout=120)
                assert time.monotonic() - t0 < 100, "redone only after the lease expired"
                assert result["decision"] == "accept", result
                assert worker.poll() is None, "the worker exited while the database was down"
            finally:
                worker.terminate()
                worker.wait(20)
            assert_decided_once(ctx, [sid])
            with ctx.db() as db:
                row = db.get(CertSession, sid)
                assert row is not None and row.job_attempts == 1, (sid, row and row.job_attempts)  # outage: free
