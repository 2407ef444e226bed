"""`pension-cert cycle-run`: the daily run for cron where nothing runs it by itself (WORKER_MODE=none, or
CYCLE_RUN_HOUR=-1): exit 0 with the run as JSON, exit 1 when the spike guard refuses (audited, nothing changed),
exit 2 for a bad date; audited as the command line with the account that ran it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.adapters.cli import main
from service.adapters.cli.common import EXIT_FAILED, EXIT_INPUT, os_user
from service.certification.context import ServiceContext
from service.certification.contract import FeatureHooks
from service.certification.models import AuditEntry, Beneficiary
from tests.service import factories
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.sqlite_service import sqlite_service
from tests.service.adapters.cli.test_cli_contract import assert_clean

DAY = dt.date(2026, 12, 5)


def setup(tmp_path: Path, overdue: int, current: int) -> tuple[dict[str, str], ServiceContext]:
    """A SQLite database with `overdue` people lapsed before DAY and `current` valid, and the command's env."""
    env, ctx = sqlite_service(tmp_path, tmp_path / "cycle.db")
    with ctx.db() as db:
        for i in range(overdue + current):
            lapsed = DAY - dt.timedelta(days=2) if i < overdue else DAY + dt.timedelta(days=300)
            factories.beneficiary(db, ctx.keyring, valid_until=lapsed)
    return env, ctx


def audited(ctx: ServiceContext) -> list[tuple[str, str, str, dict[str, object]]]:
    with ctx.db() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.action.like("cycle.%")).order_by(AuditEntry.id))
        return [(e.actor, e.action, e.target, dict(e.detail or {})) for e in rows]


def suspended(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        count = db.scalar(select(func.count()).select_from(Beneficiary).where(Beneficiary.status == "suspended"))
        return int(count or 0)


def test_cycle_run_suspends_the_overdue_once_and_is_audited_as_the_command_line(cli: CliRunner, tmp_path: Path) -> None:
    env, ctx = setup(tmp_path, overdue=2, current=20)
    first = cli("cycle-run", "--today", DAY.isoformat(), env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "date": "2026-12-05",
        "suspended": 2,
        "sessions_expired": 0,
        "media_purged": 0,
        "media_orphans_removed": 0,
        "forced": False,
    }
    again = cli("cycle-run", "--today", DAY.isoformat(), env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["suspended"] == 0  # idempotent
    assert suspended(ctx) == 2
    who = {"os_user": os_user(), "simulated": "true"}  # --today: never counted as that real day's run
    done = ("cli:cycle-run", "cycle.completed", "2026-12-05", {"sessions_expired": 0, **who})
    assert audited(ctx) == [
        ("cli:cycle-run", "cycle.run", "2026-12-05", {"suspended": 2, "forced": False, **who}),
        done,
        ("cli:cycle-run", "cycle.run", "2026-12-05", {"suspended": 0, "forced": False, **who}),
        done,
    ]
    ctx.engine.dispose()


def test_a_refused_run_exits_1_changes_nothing_and_force_runs_it(cli: CliRunner, tmp_path: Path) -> None:
    env, ctx = setup(tmp_path, overdue=12, current=3)
    refused = cli("cycle-run", "--today", DAY.isoformat(), env=env)
    assert refused.returncode == EXIT_FAILED and refused.stdout == ""
    assert "ALERT cycle 2026-12-05 refused" in refused.stderr  # the log line alerting rules watch for
    assert_clean(refused.stderr.strip().splitlines()[-1])
    assert "CYCLE_SUSPENSION_SPIKE: the run would suspend 12 of 15 active beneficiaries" in refused.stderr
    assert "--force" in refused.stderr
    assert suspended(ctx) == 0
    forced = cli("cycle-run", "--today", DAY.isoformat(), "--force", env=env)
    assert forced.returncode == 0 and json.loads(forced.stdout)["suspended"] == 12
    assert [(a, action) for a, action, _t, _d in audited(ctx)] == [
        ("cli:cycle-run", "cycle.refused"),
        ("cli:cycle-run", "cycle.run"),
        ("cli:cycle-run", "cycle.completed"),
    ]
    ctx.engine.dispose()


def test_a_bad_date_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    env, ctx = setup(tmp_path, overdue=0, current=1)
    ctx.engine.dispose()
    for when, text in (("1900-01-01", "INVALID_DATE: today must be between"), ("05/12/2026", "invalid")):
        proc = cli("cycle-run", "--today", when, env=env)
        assert proc.returncode == EXIT_INPUT and proc.stdout == "", proc.stderr
        assert text in proc.stderr, proc.stderr


def test_the_command_runs_every_features_daily_upkeep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review: the command built its context without the features, so cron's daily run (WORKER_MODE=none) ran no
    feature's upkeep: closed assist requests kept their phone numbers past retention, pending proxy bindings never
    expired. In-process (as the subprocess runs it), the hooks the run called recorded."""
    env, ctx = setup(tmp_path, overdue=0, current=1)
    ctx.engine.dispose()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ran: list[list[str]] = []
    real = FeatureHooks.daily_upkeep

    def spy(self: FeatureHooks, c: ServiceContext, at: dt.datetime) -> dict[str, int]:
        ran.append(sorted(self.upkeep))
        return real(self, c, at)

    monkeypatch.setattr(FeatureHooks, "daily_upkeep", spy)
    assert main(["cycle-run", "--today", DAY.isoformat()]) == 0
    assert json.loads(capsys.readouterr().out)["date"] == DAY.isoformat()
    assert ran == [
        [
            "console",
            "console.audit",
            "console.review_hold",
            "proxy",
            "proxy.claims",
            "proxy.deceased",
            "proxy.deceased_bindings",
        ]
    ]
