"""An outside review of dates and time zones (docs/security.md Part AJ): the pensioners' day is the bureau's
(Asia/Shanghai, UTC+8), the database keeps naive UTC. Each test failed on the code before its fix; they run on
SQLite and on PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.certification.daily_run import daily_run
from service.certification.models import CertSession, Channel, CycleEvent, SessionState
from service.certification.sessions import create_session
from service.features.console.alt_cert import certify_alternative
from service.infra import clock
from tests.service import factories
from tests.service.adapters.http.test_ratelimit import redis_url  # noqa: F401 (a fixture: a Redis server)
from tests.service.conftest import ADMIN


def exported(client: TestClient, kind: str, since: dt.date) -> str:
    r = client.get(f"/api/v1/exports/{kind}.csv", params={"since": since.isoformat()}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return str(r.text)


def test_a_resumption_recorded_today_for_an_earlier_visit_is_in_todays_payment_file(
    ctx: ServiceContext, client: TestClient
) -> None:
    """A home visit made two days ago, entered today, resumes a pension suspended five days ago: the `resumed`
    event is dated by the visit. The payment system that fetched yesterday's file asks today for what came since
    today, and must find it there: dated two days ago, it was in no file at all, and the pension stayed
    suspended in the payment system for good."""
    today = clock.local_today(ctx.settings)
    suspended_on, visit = today - dt.timedelta(days=5), today - dt.timedelta(days=2)
    with ctx.db() as db:
        b = factories.beneficiary(
            db,
            ctx.keyring,
            status="suspended",
            valid_until=suspended_on - dt.timedelta(days=1),
            suspended_on=suspended_on,
            last_certified_on=suspended_on - dt.timedelta(days=366),
        )
        at = dt.datetime.combine(suspended_on, dt.time())  # 08:00 that day in Beijing (naive UTC, as stored)
        db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=suspended_on, created_at=at))
        ext = b.external_id
    # The payment system's fetch of the day before: nothing resumed yet.
    assert ext not in exported(client, "resumptions", today - dt.timedelta(days=1))
    with ctx.db() as db:
        b2 = db.get(type(b), b.id)
        assert b2 is not None
        certify_alternative(db, ctx, b2, "home_visit", visit, None, {"note": "上门核验，本人在家"})
        assert b2.status == "active"
    rows = [line for line in exported(client, "resumptions", today).splitlines() if line.startswith(ext + ",")]
    assert len(rows) == 1 and f",{visit.isoformat()},{suspended_on.isoformat()}" in rows[0], rows
    # A file since tomorrow has none of it; the suspension stays in the file of its own day only.
    assert ext not in exported(client, "resumptions", today + dt.timedelta(days=1))
    assert ext not in exported(client, "suspensions", today)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_per_day_rate_limit_counts_the_bureaus_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, backend: str
) -> None:
    """`N/day` (RATE_LIMIT_*) is a day in Beijing: windows cut at UTC midnight gave a fresh allowance at 08:00
    there, in the middle of the morning when pensioners certify (two days' worth between 07:00 and 09:00). In
    this process's counters and in Redis's, shared by every API process."""
    from service.adapters.http import limits
    from tests.service.adapters.http.ops import ops_app

    shared: dict[str, object] = {}
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        shared = {"rate_limit_backend": "redis", "rate_limit_redis_url": url, "rate_limit_redis_timeout_s": 5.0}

    def at(utc: dt.datetime) -> None:
        monkeypatch.setattr(limits, "_clock", lambda: utc.replace(tzinfo=dt.UTC).timestamp())

    verify = "/api/v1/certificates/verify?code=nothing"  # public: answers 400 (bad code) unless limited
    with TestClient(ops_app(tmp_path, rate_limit_ip="2/day", **shared)) as c:
        at(dt.datetime(2026, 12, 4, 23, 30))  # 07:30 on 5 December in Beijing
        assert [c.get(verify).status_code for _ in range(2)] == [400, 400]
        r = c.get(verify)
        assert r.status_code == 429 and int(r.headers["retry-after"]) == 16 * 3600 + 30 * 60  # to midnight there
        at(dt.datetime(2026, 12, 5, 1, 0))  # 09:00 the same day in Beijing, a new day by UTC
        assert c.get(verify).status_code == 429
        at(dt.datetime(2026, 12, 5, 16, 0))  # 00:00 on 6 December in Beijing
        assert [c.get(verify).status_code for _ in range(3)] == [400, 400, 429]


def test_a_simulated_days_run_expires_sessions_as_of_midnight_in_beijing(ctx: ServiceContext) -> None:
    """A run for a simulated date (development, test) does the expiry "as of its midnight": the bureau's, 16:00 UTC
    the day before. It took UTC's, 08:00 in Beijing, and expired a session still open at midnight there."""
    day = clock.local_today(ctx.settings) + dt.timedelta(days=3)
    midnight = clock.local_midnight(ctx.settings, day)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, valid_until=day + dt.timedelta(days=200))
        still_open = create_session(db, ctx, b, Channel.SELF, False, "test").session
        still_open.expires_at = midnight + dt.timedelta(hours=2)  # 02:00 that day in Beijing
        lapsed = create_session(db, ctx, b, Channel.SELF, False, "test").session
        lapsed.expires_at = midnight - dt.timedelta(minutes=1)  # 23:59 the day before
        ids = still_open.id, lapsed.id
    run = daily_run(ctx, "test", today=day)
    assert run.date == day and run.sessions_expired == 1
    with ctx.db() as db:
        states = [db.get(CertSession, sid).state for sid in ids]  # type: ignore[union-attr]
    assert states == [SessionState.OPEN, SessionState.EXPIRED]


def test_the_payment_files_rows_carry_a_stable_event_id_to_deduplicate_on(
    ctx: ServiceContext, client: TestClient
) -> None:
    """A row may come again in a later file (an event recorded today but dated earlier is in today's file and,
    fetched since its date, in another): without an id of its own a payment system that is not idempotent paid a
    back-payment twice. Each row now ends with the event's id, the same in every file."""
    today = clock.local_today(ctx.settings)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, status="suspended", suspended_on=today - dt.timedelta(days=3))
        event = CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=today - dt.timedelta(days=3))
        db.add(event)
        db.flush()
        event_id, ext = event.id, b.external_id
    files = [exported(client, "suspensions", today - dt.timedelta(days=d)) for d in (3, 0)]
    for text in files:
        header, *rows = text.splitlines()
        assert header.split(",")[-1] == "event_id", header
        [mine] = [r for r in rows if r.startswith(ext + ",")]
        assert mine.split(",")[-1] == str(event_id), mine


@pytest.mark.parametrize("since", ["0001-01-01", "1899-12-31"])
def test_a_since_before_1900_is_a_clear_422_not_a_500(client: TestClient, since: str) -> None:
    """since=0001-01-01 overflowed the bureau's midnight (UTC+8 before year 1), a 500."""
    r = client.get("/api/v1/exports/resumptions.csv", params={"since": since}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "INVALID_DATE" and "1900-01-01" in r.text, r.text
