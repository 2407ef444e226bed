"""Reminders spread over the days of a campaign (集中认证): every due reminder used to go out in the first minutes
of 08:00, so the pensioners they reached certified together in one morning's peak, beyond the workers (and beyond
WeChat's daily quota: test_peak_quota.py). `WECHAT_REMINDERS_PER_DAY` now caps them, spread over the reminder hours;
those not reached today are reached the next days, the earliest date first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, BeneficiaryStatus
from service.features.wechat.notify import run_notifications
from service.infra import clock
from service.infra.config import Settings
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel
from tests.service.features.wechat.test_notify_hours import china


@pytest.fixture
def settings(tmp_path: Path, backend_urls: dict[str, str], fake_wx: FakeWeChat) -> Settings:
    return wechat_settings(fake_wx, tmp_path, database_url=backend_urls["database_url"], wechat_reminders_per_day=24)


def test_the_default_cap() -> None:
    assert Settings().wechat.reminders_per_day == 20000


def test_reminders_are_spread_over_the_day_and_the_rest_reached_the_next_days_oldest_due_first(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`WECHAT_REMINDERS_PER_DAY` (24 here) spread over the reminder hours: every due reminder went out in the first
    minutes of 08:00, and the pensioners they reached certified together in the morning's peak."""
    # Due soon from 22 November, none lapsing by the 24th (an overdue notice would be one more), latest first.
    later_first = [dt.date(2026, 12, 21) - dt.timedelta(days=i) for i in range(28)]
    owners = {}
    for i, until in enumerate(later_first):
        b = factories.beneficiary(db, ctx.keyring, valid_until=until)
        owners[f"o-spread-{i:02d}"] = until
        certified_by(db, ctx, b, f"o-spread-{i:02d}")
    db.commit()
    api = channel(ctx).api

    def run_at(instant: dt.datetime) -> int:
        monkeypatch.setattr(clock, "now_utc", lambda: instant)
        return run_notifications(ctx, api, clock.local_today(ctx.settings, instant), instant).sent

    # The schedule runs hourly here (WECHAT_SCHEDULE_S 3600): each run may reach its share up to the next one.
    assert run_at(china(22, 8, 0)) == 2  # 24 × 1 h / 12 h
    assert run_at(china(22, 8, 1)) == 0  # not again within the hour
    assert run_at(china(22, 14, 0)) == 12  # 24 × 7 h / 12 h, less the 2 sent
    assert run_at(china(22, 19, 30)) == 10  # the day's 24, no more
    assert run_at(china(22, 19, 59)) == 0
    assert run_at(china(23, 8, 0)) == 2  # the next day, again from the start of its share
    assert run_at(china(23, 20, 0)) == 0  # the evening: nothing (the reminder hours)
    assert run_at(china(24, 19, 0)) == 2  # the last ones
    got = [m["touser"] for m in fake_wx.state.sent_templates]
    assert len(got) == len(set(got)) == 28
    assert [owners[o] for o in got] == sorted(owners.values())  # the earliest date first


def test_under_the_cap_the_most_urgent_reminder_goes_first_a_suspension_before_later_due_soon_ones(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One reminder a day: a pensioner suspended overnight heard of it last, after three whose date was weeks away,
    because a reminder that changes kind (due soon → overdue → suspended) is recorded at the back of the backlog and
    the capped days sent in record order. The capped day now picks the most urgent: suspended, overdue, due soon,
    then the earliest date (the reviewer's reproduction, /tmp/r4/test_r4_order.py)."""
    monkeypatch.setattr(ctx.settings.wechat, "reminders_per_day", 1)
    monkeypatch.setitem(ctx.settings.wechat.templates, "suspended", "tpl-susp")
    s = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2026, 11, 22))
    certified_by(db, ctx, s, "o-S")
    for i, until in enumerate([dt.date(2026, 12, 15), dt.date(2026, 12, 16), dt.date(2026, 12, 17)]):
        certified_by(db, ctx, factories.beneficiary(db, ctx.keyring, valid_until=until), f"o-D{i}")
    db.commit()
    api = channel(ctx).api

    def run_at(instant: dt.datetime) -> int:
        monkeypatch.setattr(clock, "now_utc", lambda: instant)
        return run_notifications(ctx, api, clock.local_today(ctx.settings, instant), instant).sent

    assert run_at(china(22, 19, 30)) == 1  # the day's one: S's date is the earliest
    with ctx.db() as unit:  # the night's cycle run suspends S
        b = unit.get(Beneficiary, s.id)
        assert b is not None
        b.status, b.suspended_on = BeneficiaryStatus.SUSPENDED, dt.date(2026, 11, 23)
    for day in (23, 24, 25, 26):
        assert run_at(china(day, 19, 30)) == 1
    got = [(m["touser"], m["template_id"]) for m in fake_wx.state.sent_templates]
    assert got == [
        ("o-S", "tpl-due"),
        ("o-S", "tpl-susp"),
        ("o-D0", "tpl-due"),
        ("o-D1", "tpl-due"),
        ("o-D2", "tpl-due"),
    ]
