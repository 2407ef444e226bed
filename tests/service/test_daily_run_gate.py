"""One gate for the scheduled daily run (service/certification/daily_run.py, ``schedule_gate``): Celery beat's task
and the embedded service's daily thread ask the same question, "is today's run due?" (CYCLE_RUN_HOUR reached in
the bureau's time zone, no run of the day audited). Review (Part AI): each wrote its own; the task had no hour
check at all, so a message beat queued late (a busy worker, a broker back after an outage) ran the new day's
run past midnight, hours before its hour, where the thread waited."""

from __future__ import annotations

import datetime as dt

import pytest

from service.adapters.workers import tasks
from service.adapters.workers.daily import DailyRunThread
from service.certification import daily_run as daily_run_module
from service.certification.context import ServiceContext
from tests.service.test_daily_run import CHINA, entries, on_day, overdue, suspended  # noqa: F401  (on_day: the bureau's clock)


def test_the_celery_task_waits_for_the_hour_as_the_thread_does(
    ctx: ServiceContext,
    monkeypatch: pytest.MonkeyPatch,
    on_day: list[dt.datetime],  # noqa: F811
) -> None:
    overdue(ctx, 1, current=20)
    monkeypatch.setattr(tasks, "_worker_ctx", lambda: ctx)
    on_day[0] = dt.datetime(2026, 12, 5, 0, 30, tzinfo=CHINA)  # before CYCLE_RUN_HOUR (1)
    assert ctx.settings.cycle.cycle_run_hour == 1
    assert tasks.daily_run() == {"due": False, "date": "2026-12-05"}
    assert DailyRunThread(ctx).tick() is None
    assert suspended(ctx) == 0 and entries(ctx, "cycle.run") == []
    on_day[0] = dt.datetime(2026, 12, 5, 1, 0, tzinfo=CHINA)
    assert tasks.daily_run() == {"refused": False, "date": "2026-12-05", "suspended": 1}
    assert DailyRunThread(ctx).tick() is None  # the day is done, whoever ran it
    assert tasks.daily_run() == {"done": True, "date": "2026-12-05"}


def test_the_task_and_the_thread_ask_the_one_gate(
    ctx: ServiceContext,
    monkeypatch: pytest.MonkeyPatch,
    on_day: list[dt.datetime],  # noqa: F811
) -> None:
    """Whatever the gate answers, both schedulers follow it: the rule lives in one place."""
    overdue(ctx, 1, current=20)
    monkeypatch.setattr(tasks, "_worker_ctx", lambda: ctx)
    on_day[0] = dt.datetime(2026, 12, 5, 9, 0, tzinfo=CHINA)  # past the hour, nothing run yet
    asked: list[str] = []

    def gate(c: ServiceContext, now: dt.datetime | None = None, done: dt.date | None = None) -> tuple[dt.date, str]:
        asked.append("gate")
        return dt.date(2026, 12, 5), daily_run_module.NOT_YET

    monkeypatch.setattr(daily_run_module, "schedule_gate", gate)
    assert tasks.daily_run() == {"due": False, "date": "2026-12-05"}
    assert DailyRunThread(ctx).tick() is None
    assert asked == ["gate", "gate"] and suspended(ctx) == 0
