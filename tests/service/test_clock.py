"""The bureau's calendar (service/infra/clock.py): at 23:30 UTC it is already 07:30 the next day in China, and every
calendar date the service derives is that day: a staff decision's certification date, the daily cycle's
"today", the registry's default date, the date in a WeChat message."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification import review
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, Channel, SessionState
from service.certification.sessions import create_session
from service.features.wechat.messages import decision_message
from service.features.wechat.template_fit import fit
from service.infra import clock
from service.infra.config import Settings
from tests.service import factories
from tests.service.conftest import ADMIN

INSTANT = dt.datetime(2026, 12, 4, 23, 30, tzinfo=dt.UTC)  # 2026-12-05 07:30 in Beijing
UTC_DAY, LOCAL_DAY = dt.date(2026, 12, 4), dt.date(2026, 12, 5)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The instant is outside our control: fixed where the service reads it, its one clock (clock.now_utc, which
    models.utcnow reads too: Part AT)."""
    monkeypatch.setattr(clock, "now_utc", lambda: INSTANT)
    yield


def test_local_today_is_the_bureaus_date() -> None:
    china = Settings(time_zone="Asia/Shanghai")
    assert clock.local_today(china, INSTANT) == LOCAL_DAY
    assert clock.local_date(china, INSTANT.replace(tzinfo=None)) == LOCAL_DAY  # stored times are naive UTC
    assert clock.local_today(china, dt.datetime(2026, 12, 4, 15, 59, tzinfo=dt.UTC)) == UTC_DAY  # 23:59 there
    assert clock.local_today(Settings(time_zone="UTC"), INSTANT) == UTC_DAY


def test_an_unknown_time_zone_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings(time_zone="Asia/Beijing")


def test_a_staff_accept_at_0730_china_time_is_dated_that_day(ctx: ServiceContext, fixed_clock: None) -> None:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.state, s.decision, s.reasons = SessionState.DECIDED, "review", ["SPOOF_SUSPECTED"]
        s.result = factories.review_result(reasons=["SPOOF_SUSPECTED"])
        db.flush()
        review.settle(db, ctx, s, "accept", "rev1", "本人", "staff:rev1")
        cert = db.scalar(select(Certification).where(Certification.beneficiary_id == b.id))
        assert cert is not None and cert.certified_on == LOCAL_DAY
        message = decision_message(db, s, b, True, "https://x.test", ctx.settings)
        assert message is not None and fit("date3", "decided_on", message.fields["decided_on"]) == "2026年12月5日"


def test_the_daily_run_and_the_registry_use_the_bureaus_today(
    ctx: ServiceContext, client: TestClient, fixed_clock: None
) -> None:
    """Valid until 4 December: at 07:30 on the 5th (Beijing) the person is overdue and the run suspends them that
    day; by the UTC date (still the 4th) they would be neither."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, valid_until=UTC_DAY)
        others = [
            factories.beneficiary(db, ctx.keyring, valid_until=LOCAL_DAY + dt.timedelta(days=200)).id for _ in range(30)
        ]  # so that one suspension is an ordinary share of the roster
        bid, ext = b.id, b.external_id
    assert others
    view = client.get(f"/api/v1/beneficiaries/{ext}")
    assert view.status_code == 200, view.text
    assert view.json()["cycle_state"] == "overdue", view.json()
    r = client.post("/api/v1/cycle/run", headers=ADMIN)
    assert r.status_code == 200, r.text
    with ctx.db() as db:
        b2 = db.get(Beneficiary, bid)
        assert b2 is not None and b2.status == "suspended" and b2.suspended_on == LOCAL_DAY


def test_the_daily_attempt_count_starts_at_local_midnight(ctx: ServiceContext) -> None:
    """A rejection at 06:00 China time (22:00 UTC the day before) counts in that China day, and one from the
    evening before (15:00 UTC = 23:00 China) does not: the daily limit resets at the bureau's midnight."""
    from service.certification import attempts

    china = Settings(time_zone="Asia/Shanghai")
    assert clock.local_day_start(china, INSTANT) == dt.datetime(2026, 12, 4, 16, 0)  # 00:00 on the 5th there
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        decided = {"early": dt.datetime(2026, 12, 4, 22, 0), "evening_before": dt.datetime(2026, 12, 4, 15, 0)}
        ids = {}
        for name, at in decided.items():
            s = create_session(db, ctx, b, Channel.SELF, False, "test").session
            s.state, s.decision, s.decided_at = SessionState.DECIDED, "reject", at
            ids[name] = s.id
        db.flush()
        counted = [sid for sid, _ in attempts.rejected_today(db, china, b.id, INSTANT.replace(tzinfo=None))]
        assert counted == [ids["early"]]
