"""Celery beat's daily upkeep (media past retention purged, orphans removed, the audit chain anchored) runs every
day, whenever beat was last (re)started.

Found by review: the entry was an interval of 86,400 s, and beat counts an interval from its own start for an entry
it has no stored last run of (its schedule file in /tmp of a container recreated on each deploy, or a new
deployment): a beat restarted more often than daily never ran the purge.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import BaseSchedule, maybe_schedule

from service.adapters.workers.tasks import PROCESS_TASK, make_celery
from tests.service.conftest import make_settings


def waits_after_start(tmp_path: Path, start: dt.datetime) -> dt.timedelta:
    """How long a beat started at ``start`` (nothing stored of earlier runs) waits before its first upkeep."""
    app = make_celery(make_settings(tmp_path))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app, "now", lambda: start)  # beat's clock at its start; a new entry's last run is its start
        schedule = maybe_schedule(app.conf.beat_schedule["storage_upkeep"]["schedule"], app=app)
        assert isinstance(schedule, BaseSchedule)
        wait = schedule.remaining_estimate(start)
    assert isinstance(wait, dt.timedelta)
    return wait


def test_the_daily_upkeep_runs_although_beat_restarts_every_twelve_hours(tmp_path: Path) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    for hour in range(12):
        starts = [dt.datetime(2026, 12, 5, hour, 17, tzinfo=zone) + dt.timedelta(hours=12 * i) for i in range(2)]
        waits = [waits_after_start(tmp_path, s) for s in starts]
        assert all(w <= dt.timedelta(days=1) for w in waits)
        # Restarted 12 h after each start: one of the two runs must come first (before: both waited 24 h).
        assert min(waits) < dt.timedelta(hours=12), (hour, waits)


def test_the_daily_upkeep_runs_at_night_in_the_bureaus_time_zone(tmp_path: Path) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    start = dt.datetime(2026, 12, 5, 12, 0, tzinfo=zone)
    runs_at = (start + waits_after_start(tmp_path, start)).astimezone(zone)
    assert runs_at.date() == dt.date(2026, 12, 6) and runs_at.hour < 6


def test_the_task_limits_follow_the_settings_and_a_hard_limit_past_the_lease_is_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_celery(make_settings(tmp_path, task_soft_time_limit_s=20, task_time_limit_s=25))
    assert app.conf.task_annotations[PROCESS_TASK] == {"soft_time_limit": 20, "time_limit": 25}
    assert "announced again" not in caplog.text
    # A task still running when its lease ends is announced again by the sweep: said when the worker starts.
    app = make_celery(make_settings(tmp_path, task_soft_time_limit_s=300, task_time_limit_s=300, job_lease_s=300))
    assert app.conf.task_annotations[PROCESS_TASK] == {"soft_time_limit": None, "time_limit": 300}  # no soft phase
    assert "TASK_TIME_LIMIT_S 300s is not below JOB_LEASE_S 300s" in caplog.text


def next_daily_run(tmp_path: Path, start: dt.datetime, **overrides: object) -> dt.datetime:
    """When a beat started at ``start`` first sends the daily run, in the bureau's time."""
    app = make_celery(make_settings(tmp_path, **overrides))
    entry = app.conf.beat_schedule["daily_run"]
    assert entry["task"] == "pension_cert.daily_run"
    schedule = maybe_schedule(entry["schedule"], app=app)
    assert isinstance(schedule, BaseSchedule)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app, "now", lambda: start)
        wait = schedule.remaining_estimate(start)
    assert isinstance(wait, dt.timedelta)
    return (start + wait).astimezone(start.tzinfo)


def test_beat_runs_the_daily_cycle_at_the_configured_hour_of_the_bureau(tmp_path: Path) -> None:
    """Nothing suspended the overdue unless the operator scheduled POST /api/v1/cycle/run: beat had no entry."""
    zone = ZoneInfo("Asia/Shanghai")
    for hour, expected in ((None, 1), (5, 5)):
        overrides = {} if hour is None else {"cycle_run_hour": hour}
        runs_at = next_daily_run(tmp_path, dt.datetime(2026, 12, 5, 0, 10, tzinfo=zone), **overrides)
        assert (runs_at.date(), runs_at.hour, runs_at.minute) == (dt.date(2026, 12, 5), expected, 0)


def test_beat_sends_the_daily_run_again_each_hour_of_the_day_after_its_hour(tmp_path: Path) -> None:
    """Review: one send at the hour only, so a database down at 01:00, or beat restarted across it, left the day
    without its run. Each later hour sends it again (the task is a no-op once the day is done:
    tests/service/test_daily_run.py); none before the hour."""
    zone = ZoneInfo("Asia/Shanghai")
    for start_hour, (day, hour) in ((1, (5, 2)), (12, (5, 13)), (23, (6, 1))):
        runs_at = next_daily_run(tmp_path, dt.datetime(2026, 12, 5, start_hour, 10, tzinfo=zone))
        assert (runs_at.day, runs_at.hour, runs_at.minute) == (day, hour, 0)


def test_the_daily_cycle_entry_is_left_out_when_switched_off(tmp_path: Path) -> None:
    app = make_celery(make_settings(tmp_path, cycle_run_hour=-1))  # the benefit system calls the route itself
    assert "daily_run" not in app.conf.beat_schedule
    assert "storage_upkeep" in app.conf.beat_schedule  # the purge still runs
