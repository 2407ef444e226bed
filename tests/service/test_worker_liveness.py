"""Worker heartbeats on the real database: which claimed jobs are free to take (a stale or stopped worker's,
not a live worker's long job; the lease stays the hard bound), /readyz naming dead workers, and an in-process
worker thread that dies being replaced, its job handed back and decided."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.orm import Session

from service.certification import heartbeat
from service.certification.context import ServiceContext
from service.certification.models import CertSession, WorkerHeartbeat, utcnow
from service.certification.processing import claim
from tests.service import factories
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.adapters.http.ops import ops_app
from tests.service.conftest import ADMIN, API_KEY, make_settings
from tests.service.faults.helpers import assert_decided_once
from tests.service.live import fresh_database, wait_decided
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.test_e2e import roster


def worker_row(db: Session, host: str, pid: int) -> str:
    """The heartbeat row of a worker process elsewhere, just written. Returns its name."""
    name, now = f"{host}:{pid}:{uuid.uuid4().hex[:8]}", utcnow()
    db.add(WorkerHeartbeat(name=name, kind="process", host=host, pid=pid, started_at=now, last_seen=now))
    db.commit()
    return name


def age(ctx: ServiceContext, name: str, seconds: float) -> None:
    """The heartbeat of ``name`` was last written ``seconds`` ago (a process that stopped writing then)."""
    with ctx.db() as db:
        db.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.name == name)
            .values(last_seen=utcnow() - dt.timedelta(seconds=seconds))
        )


def test_a_live_workers_long_job_is_not_taken_a_dead_ones_is(ctx: ServiceContext, db: Session) -> None:
    stale = ctx.settings.workers.worker_stale_s
    w = worker_row(db, "hostA", 101)
    sid = factories.held_job(db, ctx, w)
    # Its process beats: neither the next claim nor a claim naming the job takes it, however long it runs.
    assert claim(ctx, None, "thief") is None
    assert claim(ctx, sid, "thief") is None
    age(ctx, w, stale - 5)
    assert claim(ctx, sid, "thief") is None

    age(ctx, w, stale + 1)  # silent past the limit: dead, although its lease has 300 s left
    assert claim(ctx, None, "thief") == sid
    db.expire_all()
    s = db.get(CertSession, sid)
    assert s is not None and s.worker_id == "thief" and s.job_attempts == 2
    assert s.worker_process == heartbeat.process_name()  # now vouched for by this process


def test_stopped_unknown_and_expired(ctx: ServiceContext, db: Session) -> None:
    # A worker whose supervisor saw it die (or that stopped cleanly): its job is free at once.
    stopped_by = worker_row(db, "hostA", 202)
    stopped = factories.held_job(db, ctx, stopped_by)
    assert heartbeat.mark_stopped(ctx, stopped_by) == 1
    assert claim(ctx, stopped, "thief") == stopped

    # No heartbeat row at all (`worker --once`, an older worker): the lease decides, as before.
    unknown = factories.held_job(db, ctx, "hostB:303:cccc")
    assert claim(ctx, unknown, "thief") is None
    legacy = factories.held_job(db, ctx, None)
    assert claim(ctx, legacy, "thief") is None

    # The lease stays the hard upper bound: expired, the job is taken even from a beating worker.
    expired = factories.held_job(db, ctx, worker_row(db, "hostC", 404), lease_s=-1)
    assert claim(ctx, expired, "thief") == expired


def test_dead_workers_job_on_its_last_attempt_goes_to_staff(
    ctx: ServiceContext, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    failed = {"cause": "worker_lost"}
    before = REGISTRY.get_sample_value("pension_cert_jobs_failed_total", failed) or 0.0
    w = worker_row(db, "hostA", 505)
    sid = factories.held_job(db, ctx, w, attempts=ctx.settings.workers.job_max_attempts)
    age(ctx, w, ctx.settings.workers.worker_stale_s + 1)
    with caplog.at_level(logging.ERROR, logger="service.certification.processing"):
        assert claim(ctx, sid, "thief") is None
    db.expire_all()
    s = db.get(CertSession, sid)
    assert s is not None and s.state == "failed" and s.last_error
    # Before: FAILED without a log line or a metric moving (a worker-killing input, job after job).
    assert REGISTRY.get_sample_value("pension_cert_jobs_failed_total", failed) == before + 1
    assert [r.levelname for r in caplog.records if sid in r.getMessage() and "worker_lost" in r.getMessage()] == [
        "ERROR"
    ]


def test_heartbeat_interval_must_stay_well_below_the_staleness_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="WORKER_HEARTBEAT_S"):
        make_settings(tmp_path, worker_heartbeat_s=20, worker_stale_s=30)


def test_restart_backoff_doubles_for_a_crash_loop_and_resets_after_a_stable_run(tmp_path: Path) -> None:
    from service.adapters.workers.supervisor import Supervisor

    settings = make_settings(
        tmp_path, worker_restart_backoff_s=0.05, worker_restart_backoff_max_s=0.2, worker_stable_s=0.5
    )
    workers: list[list[bool]] = []
    dead: list[list[bool]] = []

    def spawn(_i: int) -> list[bool]:
        workers.append([True])
        return workers[-1]

    sup: Supervisor[list[bool]] = Supervisor(
        settings, "thread", 1, spawn, lambda h: h[0], lambda h: "fake", dead.append
    )
    assert [sup.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.05, 0.1, 0.2, 0.2, 0.2]

    def dies_and_waits(expected: float) -> bool:
        """The worker dies now; the supervisor schedules its restart ``expected`` seconds later."""
        workers[-1][0] = False
        before = time.monotonic()
        sup.check()
        after = time.monotonic()
        slot = sup.slots[0]
        return slot.handle is None and before + expected <= slot.restart_at <= after + expected

    sup.spawn_all()
    for expected in (0.05, 0.1, 0.2, 0.2):  # dies at once, four times in a row
        assert dies_and_waits(expected)
        slot = sup.slots[0]
        time.sleep(slot.restart_at - time.monotonic() + 0.01)
        sup.check()
        assert slot.handle is workers[-1]
    assert sup.restarts == 4 and len(dead) == 4
    time.sleep(0.55)  # the fifth one ran longer than WORKER_STABLE_S: the next death starts over
    assert dies_and_waits(0.05)


def readyz(c: TestClient) -> tuple[int, dict[str, Any]]:
    r = c.get("/readyz")
    return r.status_code, r.json()


def test_readyz_needs_a_fresh_worker_heartbeat(tmp_path: Path) -> None:
    app = ops_app(tmp_path, worker_mode="process", worker_stale_s=30)
    ctx: ServiceContext = app.state.ctx
    c = TestClient(app)  # no lifespan: no worker of its own; we play the worker processes
    code, body = readyz(c)
    assert code == 503 and body["failing"] == ["workers"]
    assert body["checks"]["workers"] == {"ok": False, "error": "NoLiveWorkerError"}

    heartbeat.beat(ctx, "process", "w1")
    assert readyz(c)[0] == 200
    age(ctx, "w1", 31)
    code, body = readyz(c)
    assert code == 503 and body["failing"] == ["workers"]
    heartbeat.beat(ctx, "celery", "w2")  # any worker on this database counts (a celery worker here)
    assert readyz(c)[0] == 200
    heartbeat.mark_stopped(ctx, "w2")
    assert readyz(c)[0] == 503

    # WORKER_MODE=none: this API runs no workers and relies on none it knows of.
    code, body = readyz(TestClient(ops_app(tmp_path / "none", worker_mode="none")))
    assert code == 200 and "workers" not in body["checks"]


def test_readyz_follows_the_in_process_workers(tmp_path: Path) -> None:
    app = ops_app(tmp_path, worker_mode="thread", worker_heartbeat_s=0.2, worker_stale_s=1.0)
    with TestClient(app) as c:
        assert readyz(c)[0] == 200  # the first beat is written before the workers start
        worker = app.state.worker
        assert worker.heartbeats  # one per worker thread
        for beat in worker.heartbeats:
            beat.stop(mark=False)  # the process hangs: its heartbeats go silent
        time.sleep(1.3)
        code, body = readyz(c)
        assert code == 503 and body["failing"] == ["workers"]
    # Started again in the same process on the same database (its row was marked stopped at the end): alive
    # again; and a clean stop is recorded at once.
    app = ops_app(tmp_path, worker_mode="thread", worker_heartbeat_s=0.2, worker_stale_s=1.0)
    with TestClient(app) as c:
        assert readyz(c)[0] == 200
        app.state.worker.stop(timeout=5)
        assert readyz(c)[0] == 503


def restarts(mode: str) -> float:
    """pension_cert_worker_restarts_total{mode} of this (test) process."""
    return REGISTRY.get_sample_value("pension_cert_worker_restarts_total", {"mode": mode}) or 0.0


class WorkerKilled(BaseException):
    """Not an Exception: the worker loop does not survive it, the thread ends."""


@pytest.mark.slow
def test_dead_worker_thread_is_replaced_and_its_job_decided(tmp_path: Path, data_dir: Path) -> None:
    from service.adapters.http.app import create_app
    from service.adapters.workers.worker import shared_certifier

    url = fresh_database({"database_url": f"sqlite:///{tmp_path / 'x.db'}"}, tmp_path)
    settings = make_settings(
        tmp_path / "var", database_url=url, worker_mode="thread", poll_interval_s=0.2, worker_restart_backoff_s=0.2
    )
    calls: list[int] = []

    def certifier() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise WorkerKilled("first job kills its thread")
        return shared_certifier(settings.certification)

    factory: Callable[[], Any] = certifier
    restarts0 = restarts("thread")
    app = create_app(settings, certifier_factory=factory)
    with TestClient(app) as client:
        client.headers["X-API-Key"] = API_KEY
        card, fields = card_for_video(data_dir, LIVE_VIDEO)
        row = ["THR-1", fields.id_number, fields.name, "", "enterprise_pension", "", ""]
        r = client.post("/api/v1/roster", files={"file": ("r.csv", roster([row]))}, headers=ADMIN)
        assert r.status_code == 200, r.text
        s = open_session(client, "THR-1")
        assert put_card(client, s, card).status_code == 200
        t0 = time.monotonic()
        assert put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes()).json()["state"] == "queued"
        result = wait_decided(client, s, timeout=60)
        elapsed = time.monotonic() - t0
        assert result["decision"] == "accept", result
        assert elapsed < 60  # the job lease (300 s) played no part
        supervisor = app.state.worker.supervisor
        assert supervisor.restarts == 1 and all(t.is_alive() for t in supervisor.handles)
        assert restarts("thread") == restarts0 + 1
        assert 'pension_cert_worker_restarts_total{mode="thread"}' in client.get("/metrics").text
        assert readyz(client)[0] == 200
        ctx: ServiceContext = app.state.ctx
        with ctx.db() as db:
            session_row = db.get(CertSession, s["session_id"])
            assert session_row is not None and session_row.job_attempts == 2
        assert_decided_once(ctx, [s["session_id"]])
