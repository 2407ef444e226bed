"""Embedded worker threads (WORKER_MODE=thread) each have a name of their own: in their claims, their heartbeat
rows and their log lines. Before, every thread of the process claimed as ``host:pid`` and the process wrote one
heartbeat row while any thread lived: an operator could not tell which thread held a job, and a live thread's
heartbeat kept a dead thread's claim alive until its lease (300 s) ran out."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

import service.schema
from service.adapters.workers.worker import PollingWorker
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import CertSession, Channel, SessionState, WorkerHeartbeat
from service.certification.processing import claim
from service.certification.sessions import create_session
from tests.service import factories
from tests.service.certifiers import FixedCertifier
from tests.service.conftest import make_settings
from tests.service.live import fresh_database


class WorkerKilled(BaseException):
    """Not an Exception: the worker loop does not survive it, the thread ends."""


class Gate:
    """Holds every job in ``run`` until released; the job whose video is ``doomed`` kills its thread on ``kill``."""

    def __init__(self, doomed: bytes) -> None:
        self.doomed, self.kill, self.release = doomed, threading.Event(), threading.Event()

    def run(self, card: bytes, video: bytes, *rest: Any) -> Any:
        if video == self.doomed:
            self.kill.wait(30)
            raise WorkerKilled("the decoder took the thread down")
        self.release.wait(30)
        return FixedCertifier().run(card, video, *rest)


def thread_ctx(tmp_path: Path) -> ServiceContext:
    url = fresh_database({"database_url": f"sqlite:///{tmp_path / 'w.db'}"}, tmp_path)
    settings = make_settings(
        tmp_path / "var",
        database_url=url,
        poll_interval_s=0.05,
        worker_heartbeat_s=0.2,
        worker_stale_s=1.0,
        worker_restart_backoff_s=0.2,
    )
    return ServiceContext(settings, schema=service.schema.metadata)


def queued(ctx: ServiceContext, video: bytes) -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, video)
        s.state = SessionState.QUEUED
        return s.id


def holders(ctx: ServiceContext, *sids: str) -> list[tuple[str, str | None, str | None]]:
    with ctx.db() as db:
        rows = [db.get(CertSession, sid) for sid in sids]
        return [(r.state, r.worker_id, r.worker_process) for r in rows if r is not None]


def wait_until(what: str, predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_each_worker_thread_claims_and_beats_under_its_own_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = thread_ctx(tmp_path)
    gate = Gate(doomed=b"video-x")
    worker = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, gate))
    x, y = queued(ctx, b"video-x"), queued(ctx, b"video-y")
    caplog.set_level("INFO", logger="service.adapters.workers.worker")
    worker.start(2)
    try:
        wait_until("both jobs claimed", lambda: all(h[0] == "processing" for h in holders(ctx, x, y)))
        (_, wx, px), (_, wy, py) = holders(ctx, x, y)
        assert wx and wy and wx != wy  # before: both "host:pid"
        assert px and py and px != py  # before: both the process's one heartbeat row
        with ctx.db() as db:
            beats = {h.name: h for h in db.scalars(select(WorkerHeartbeat))}
        assert {px, py} <= set(beats) and beats[px].kind == beats[py].kind == "thread"
        polling = [r.getMessage() for r in caplog.records if "polling" in r.getMessage()]
        assert any(wx in m for m in polling) and any(wy in m for m in polling), polling

        # The thread holding x dies and nobody cleans up after it (the supervisor's hand-back failed, say): only
        # its own heartbeat vouched for x, so x is free once that is stale; y's thread beats on and keeps y.
        worker.supervisor.stop()  # type: ignore[union-attr]
        gate.kill.set()
        wait_until("x free once its thread's heartbeat is stale", lambda: claim(ctx, x, "other") == x, timeout=5)
        assert claim(ctx, y, "other") is None
        assert holders(ctx, y)[0][1] == wy
    finally:
        gate.release.set()
        worker.stop(timeout=10)


def test_a_replaced_thread_gets_a_new_name_and_its_predecessor_is_marked_stopped(tmp_path: Path) -> None:
    ctx = thread_ctx(tmp_path)
    gate = Gate(doomed=b"video-x")
    gate.kill.set()
    worker = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, gate))
    x = queued(ctx, b"video-x")
    worker.start(1)
    try:
        supervisor = worker.supervisor
        attempts = ctx.settings.workers.job_max_attempts
        # Every attempt kills its thread: handed back, then given up after the attempts; each thread replaced.
        wait_until(
            "every attempt's thread replaced",
            lambda: holders(ctx, x)[0][0] == "failed" and supervisor is not None and supervisor.restarts >= attempts,
        )
        with ctx.db() as db:
            rows = {h.name: h.stopped_at for h in db.scalars(select(WorkerHeartbeat))}
        # One row per thread (the dead ones marked stopped, so their jobs were free at once), one alive.
        assert len(rows) == attempts + 1, rows  # before: one row for the process
        assert sum(stopped is None for stopped in rows.values()) == 1
        assert holders(ctx, x)[0][2] in rows and rows[holders(ctx, x)[0][2] or ""] is not None
    finally:
        gate.release.set()
        worker.stop(timeout=10)
