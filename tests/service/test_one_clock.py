"""One clock for "now" (docs/security.md Part AT): every stored time (`models.utcnow`, the columns' defaults) and
every bureau date (`clock.local_today`) read the service's clock, `service/infra/clock.now_utc`, so a clock held
still (tests, replays) moves both. Each test failed on the code before, where the stored times read the machine's
clock apart; they run on SQLite and on PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from service.certification import review
from service.certification.context import ServiceContext
from service.certification.daily_run import daily_run
from service.certification.models import Certification, CertSession, Channel, SessionState, utcnow
from service.certification.sessions import create_session
from service.infra import clock
from tests.service import factories

INSTANT = dt.datetime(2031, 3, 9, 23, 30, tzinfo=dt.UTC)  # 2031-03-10 07:30 in Beijing, years from the machine's
STORED = INSTANT.replace(tzinfo=None)  # as the columns keep it: naive UTC


def hold(monkeypatch: pytest.MonkeyPatch, at: dt.datetime) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: at)


def test_models_utcnow_reads_the_service_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    hold(monkeypatch, INSTANT)
    assert utcnow() == STORED
    hold(monkeypatch, dt.datetime(2031, 3, 10, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))))  # the same instant
    assert utcnow() == STORED


def test_a_staff_decision_is_stamped_on_the_day_it_is_dated(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the service's clock at 07:30 on 10 March 2031 in Beijing (the day the daily run, the registry and the
    reminders took for today), a staff accept was dated the machine's day: `certified_on` is the bureau's date of
    `decided_at`, which the machine's clock stamped, as it did the certification's `created_at` (test_clock.py had
    to hold `review.utcnow` apart)."""
    hold(monkeypatch, INSTANT)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.state, s.decision, s.reasons = SessionState.DECIDED, "review", ["SPOOF_SUSPECTED"]
        s.result = factories.review_result(reasons=["SPOOF_SUSPECTED"])
        db.flush()
        review.settle(db, ctx, s, "accept", "rev1", "本人", "staff:rev1")
        cert = db.scalar(select(Certification).where(Certification.beneficiary_id == b.id))
        assert cert is not None and cert.certified_on == dt.date(2031, 3, 10)
        assert s.created_at == STORED and s.decided_at == STORED and cert.created_at == STORED
        assert clock.local_date(ctx.settings, cert.created_at) == cert.certified_on


def test_the_daily_run_expires_sessions_by_the_service_clock(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session opened on the service's clock and left open two days: the day's run (its day taken from the
    service's clock) expired it only by the machine's clock, by which the session was opened just now (its
    `expires_at` the machine's now plus the lifetime): still open after the run two days on."""
    hold(monkeypatch, INSTANT)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2032, 3, 1))
        sid = create_session(db, ctx, b, Channel.SELF, False, "test").session.id
    hold(monkeypatch, INSTANT + dt.timedelta(days=2))
    run = daily_run(ctx, "test")
    assert run.date == dt.date(2031, 3, 12) and run.sessions_expired == 1
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.state == SessionState.EXPIRED
        assert s.decided_at == STORED + dt.timedelta(days=2)


def test_a_sessions_challenge_lasts_its_lifetime_on_the_service_clock(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The challenge's end (`nonce_expires_at`) was taken from the machine's clock (pipelines' `issue_challenge`
    reads it when given no time) and judged at the upload by the stored clock's: with the clock held years ahead,
    every challenge had ended before it was issued (`NONCE_EXPIRED`); held behind, none would ever end."""
    hold(monkeypatch, INSTANT)
    ttl = dt.timedelta(seconds=ctx.settings.certification.challenge_ttl_s)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        assert s.nonce_expires_at == STORED + ttl
