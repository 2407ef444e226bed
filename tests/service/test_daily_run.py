"""The daily run starts by itself: Celery beat's `pension_cert.daily_run` and the embedded service's daily thread
run the cycle (suspensions) at CYCLE_RUN_HOUR, once a day, audited; a run the spike guard refuses is audited,
counted and not retried.

Found by the first-hour walkthrough: nothing suspended the overdue unless an operator scheduled
`POST /api/v1/cycle/run` (beat ran the sweep, WeChat and the storage upkeep; the embedded service nothing daily).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from service.adapters.workers import tasks
from service.adapters.workers.daily import DailyRunThread, install_daily_run
from service.certification import retention
from service.certification.context import ServiceContext
from service.certification.daily_run import SCHEDULE_ACTOR, business_day, daily_run, ran_on
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, Beneficiary, CertSession, CycleEvent, utcnow
from service.infra.config import Settings
from service.infra.observability import metrics
from tests.service import factories
from tests.service.conftest import make_settings
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)

CHINA = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 12, 5)


def overdue(ctx: ServiceContext, n: int, current: int = 0) -> None:
    """`n` beneficiaries whose validity ended before DAY, and `current` still valid for a year."""
    with ctx.db() as db:
        for _ in range(n):
            factories.beneficiary(db, ctx.keyring, valid_until=DAY - dt.timedelta(days=3))
        for _ in range(current):
            factories.beneficiary(db, ctx.keyring, valid_until=DAY + dt.timedelta(days=365))


def entries(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def suspended(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        count = db.scalar(select(func.count()).select_from(Beneficiary).where(Beneficiary.status == "suspended"))
        return int(count or 0)


@pytest.fixture
def on_day(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dt.datetime]]:
    """The bureau's clock (service/infra/clock.py), set by the test: 00:30 on DAY in China to start."""
    now = [dt.datetime(2026, 12, 5, 0, 30, tzinfo=CHINA)]
    monkeypatch.setattr("service.infra.clock.now_utc", lambda: now[0].astimezone(dt.UTC))
    yield now


def refused_count() -> float:
    return float(metrics.CYCLE_REFUSED._value.get())


def test_the_celery_task_runs_the_cycle_audits_it_and_a_second_run_suspends_nobody_new(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, on_day: list[dt.datetime]
) -> None:
    overdue(ctx, 2, current=20)
    monkeypatch.setattr(tasks, "_worker_ctx", lambda: ctx)
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)  # beat's hour (CYCLE_RUN_HOUR)
    first = tasks.daily_run()  # the body beat's entry runs (run in-process, as a worker does)
    assert first == {"refused": False, "date": "2026-12-05", "suspended": 2}
    assert suspended(ctx) == 2
    assert tasks.daily_run() == {"done": True, "date": "2026-12-05"}  # beat's next hour: the day is done
    again = daily_run(ctx, SCHEDULE_ACTOR)  # run again all the same (the operator's route): nobody new
    assert again.suspended == 0
    runs = entries(ctx, "cycle.run")
    assert [(e.actor, e.target, e.detail["suspended"]) for e in runs] == [
        (SCHEDULE_ACTOR, "2026-12-05", 2),
        (SCHEDULE_ACTOR, "2026-12-05", 0),
    ]


def test_a_spike_is_refused_audited_counted_and_never_retried_by_the_task(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, on_day: list[dt.datetime]
) -> None:
    overdue(ctx, 12, current=3)  # 12 of 15 (over 20 %, over 10): a wrong clock or a roster without dates
    monkeypatch.setattr(tasks, "_worker_ctx", lambda: ctx)
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    before = refused_count()
    assert tasks.daily_run() == {"refused": True, "would_suspend": 12, "active": 15}
    assert suspended(ctx) == 0  # nothing changed
    assert refused_count() == before + 1
    [entry] = entries(ctx, "cycle.refused")
    assert entry.actor == SCHEDULE_ACTOR and entry.detail == {"would_suspend": 12, "active": 15}
    # No retry: the task does not raise (a raise would be retried by whoever configured autoretry), and retries on
    # nothing by itself.
    task: Any = tasks.daily_run
    assert not getattr(task, "autoretry_for", ())
    # The operator forces it, through the same run.
    assert daily_run(ctx, "test-operator", force=True).suspended == 12


def test_the_embedded_thread_runs_once_a_day_from_its_hour(ctx: ServiceContext, on_day: list[dt.datetime]) -> None:
    overdue(ctx, 1, current=20)
    thread = DailyRunThread(ctx)  # not started: the test calls its tick as the loop does each minute
    assert ctx.settings.cycle.cycle_run_hour == 1
    assert thread.tick() is None and suspended(ctx) == 0  # 00:30: not yet
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    run = thread.tick()
    assert run is not None and run.date == DAY and run.suspended == 1
    on_day[0] = dt.datetime(2026, 12, 5, 1, 1, tzinfo=CHINA)
    assert thread.tick() is None  # once a day
    # A restart the same day (a new thread, nothing in memory): the audited run counts, no second run.
    assert DailyRunThread(ctx).tick() is None
    on_day[0] = dt.datetime(2026, 12, 6, 0, 59, tzinfo=CHINA)
    assert thread.tick() is None
    on_day[0] = dt.datetime(2026, 12, 6, 9, 0, tzinfo=CHINA)  # the service was down at 01:00: run when back
    run = thread.tick()
    assert run is not None and run.date == dt.date(2026, 12, 6)
    assert [e.target for e in entries(ctx, "cycle.run")] == ["2026-12-05", "2026-12-06"]


def test_the_embedded_thread_does_not_retry_a_refused_run(ctx: ServiceContext, on_day: list[dt.datetime]) -> None:
    overdue(ctx, 12, current=3)
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    before = refused_count()
    thread = DailyRunThread(ctx)
    for minute in range(3):
        on_day[0] = on_day[0] + dt.timedelta(minutes=minute)
        assert thread.tick() is None
    assert DailyRunThread(ctx).tick() is None  # nor after a restart
    assert len(entries(ctx, "cycle.refused")) == 1 and refused_count() == before + 1
    assert suspended(ctx) == 0


def test_a_refused_run_of_the_embedded_thread_still_does_the_retention_upkeep(
    ctx: ServiceContext, on_day: list[dt.datetime]
) -> None:
    """The embedded set-up has no upkeep schedule but the daily run's. Before: a refused cycle skipped the expiry
    and the upkeep too, every day until forced: media kept past retention, a deceased person's template kept."""
    overdue(ctx, 12, current=3)
    with ctx.db() as db:
        dead = factories.beneficiary(db, ctx.keyring, status="deceased")
        factories.enrol_template(ctx.keyring, dead, np.ones(512, np.float32), "test-recognizer")
        old = utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 5)
        s = factories.session_row(dead.id, state="decided", decision="reject", decided_at=old)
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        db.add(s)
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        dead_id, sid, keys = dead.id, s.id, [s.id_card_key, s.video_key]
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    assert DailyRunThread(ctx).tick() is None  # refused
    assert len(entries(ctx, "cycle.refused")) == 1 and suspended(ctx) == 0
    with ctx.db() as db:
        b, session = db.get(Beneficiary, dead_id), db.get(CertSession, sid)
        assert b is not None and b.template is None
        assert session is not None and session.media_purged_at is not None
    assert not any(ctx.storage.exists(k) for k in keys)


def test_the_thread_starts_only_in_the_embedded_modes_and_not_when_switched_off(tmp_path: Path) -> None:
    def wrapped(**overrides: Any) -> bool:
        settings: Settings = make_settings(tmp_path, **overrides)
        app = FastAPI()
        app.state.ctx = ServiceContext(settings, schema=None)
        before = app.router.lifespan_context
        install_daily_run(app)
        return app.router.lifespan_context is not before

    assert wrapped(worker_mode="process") and wrapped(worker_mode="thread")
    assert not wrapped(worker_mode="celery")  # beat runs it
    assert not wrapped(worker_mode="none")  # whoever runs the workers schedules it
    assert not wrapped(worker_mode="process", cycle_run_hour=-1)


def test_a_simulated_date_stays_a_development_and_test_thing() -> None:
    with pytest.raises(ServiceError) as err:
        business_day(Settings(env="production"), DAY)  # the route's, the command line's and the schedule's rule
    assert err.value.code == "DATE_OVERRIDE_FORBIDDEN"


def test_two_beats_running_the_same_day_at_once_suspend_each_person_once(
    pg_ctx: ServiceContext,  # noqa: F811
    on_day: list[dt.datetime],
) -> None:
    overdue(pg_ctx, 8, current=40)
    results: list[int] = []
    gate = threading.Barrier(2)

    def run() -> None:
        gate.wait()
        results.append(daily_run(pg_ctx, SCHEDULE_ACTOR).suspended)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and sum(results) == 8, results  # the second waited on the rows, found them suspended
    with pg_ctx.db() as db:
        events = db.scalar(select(func.count()).select_from(CycleEvent).where(CycleEvent.kind == "suspended"))
    assert events == 8  # one suspension event each, not two
    assert suspended(pg_ctx) == 8


def test_an_upkeep_that_fails_is_run_again_the_same_day(
    ctx: ServiceContext, on_day: list[dt.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: the cycle's audit committed before the expiry and the upkeep, so an upkeep failing at 01:00 (the
    bucket down) left the day counted as run: the thread never tried the upkeep again that day."""
    overdue(ctx, 1, current=20)
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    real, calls = retention.storage_upkeep, []

    def upkeep_down_once(c: ServiceContext, at: dt.datetime | None = None) -> dict[str, int]:
        calls.append(at)
        if len(calls) == 1:
            raise OSError("bucket unreachable")
        return real(c, at)

    monkeypatch.setattr("service.certification.daily_run.storage_upkeep", upkeep_down_once)
    thread = DailyRunThread(ctx)
    with pytest.raises(OSError):
        thread.tick()
    assert suspended(ctx) == 1 and not ran_on(ctx, DAY)  # the cycle stays done; the day is not
    on_day[0] = dt.datetime(2026, 12, 5, 1, 1, tzinfo=CHINA)
    run = thread.tick()  # the next minute: run again, suspending nobody new, the upkeep this time
    assert run is not None and run.suspended == 0 and len(calls) == 2
    assert ran_on(ctx, DAY) and thread.tick() is None and len(calls) == 2


def test_a_simulated_run_does_not_count_as_that_days_run(ctx: ServiceContext, on_day: list[dt.datetime]) -> None:
    """Review: a development run for a simulated date (`--today`, `?today=`) was counted as that real day's run,
    so the thread skipped the real one."""
    overdue(ctx, 1, current=20)
    daily_run(ctx, "test-operator", today=DAY)
    assert not ran_on(ctx, DAY)
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    run = DailyRunThread(ctx).tick()
    assert run is not None and run.date == DAY
    assert ran_on(ctx, DAY)


def test_the_celery_task_is_a_no_op_once_the_day_is_done(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, on_day: list[dt.datetime]
) -> None:
    """Review: beat ran the task once, at the hour: a database down then, or beat restarted across it, and nobody
    was suspended that day. Beat now runs it hourly from the hour on; a done day is not run again."""
    overdue(ctx, 1, current=20)
    monkeypatch.setattr(tasks, "_worker_ctx", lambda: ctx)
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    assert tasks.daily_run() == {"refused": False, "date": "2026-12-05", "suspended": 1}
    upkeeps: list[object] = []
    monkeypatch.setattr("service.certification.daily_run.storage_upkeep", lambda c, at=None: upkeeps.append(at))
    on_day[0] = dt.datetime(2026, 12, 5, 2, 0, tzinfo=CHINA)
    assert tasks.daily_run() == {"done": True, "date": "2026-12-05"}
    assert upkeeps == [] and len(entries(ctx, "cycle.run")) == 1
    on_day[0] = dt.datetime(2026, 12, 5, 0, 30, tzinfo=CHINA)  # before the hour (a manual call): nothing
    assert tasks.daily_run() == {"due": False, "date": "2026-12-05"}


def test_a_failed_run_is_tried_again_after_the_retry_wait_not_every_minute(
    ctx: ServiceContext, on_day: list[dt.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each try of a run that fails part-way audits a `cycle.run` (its suspensions committed): with the bucket down
    for hours, one entry a minute. The thread waits its retry time after a failure (RETRY_S, 10 minutes)."""
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    tries: list[float] = []

    def bucket_down(*_args: object, **_kwargs: object) -> None:
        tries.append(time.monotonic())
        raise OSError("bucket unreachable")

    monkeypatch.setattr("service.adapters.workers.daily.daily_run", bucket_down)
    thread = DailyRunThread(ctx, interval_s=0.05, retry_s=0.6)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(tries) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        thread.stop()
    assert len(tries) >= 2 and tries[1] - tries[0] >= 0.55, tries  # the retry wait, not the 0.05 s interval
