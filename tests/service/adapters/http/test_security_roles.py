"""Holes an outsider found (issue #22), each closed: channel keys against operator actions, the cycle's simulated
date, a suspension spike, media of open review cases, certified beneficiaries and the cycle, the staff channel,
lax consent flags, a reused Idempotency-Key, and non-finite JSON numbers."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.cycle import run_cycle
from service.certification.models import AuditEntry, Beneficiary, CertSession, Channel, CycleEvent, utcnow
from service.certification.processing import accept_session
from service.certification.sessions import create_session
from service.features.install import install_features
from service.infra.clock import local_today
from service.infra.config import DEV_ADMIN_API_KEY
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_card, put_video
from tests.service.conftest import ADMIN, ADMIN_API_KEY, make_settings
from tests.service.features.proxy.helpers import P, bearer, login
from tests.service.live import fresh_database
from tests.service.media import LIVE_VIDEO
from tests.service.test_e2e import roster

FAR = "2200-12-31"


def status_of(ctx: ServiceContext, ext: str) -> str:
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert b is not None
        return b.status


def suspension_events(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.count()).select_from(CycleEvent)) or 0)


def decide(ctx: ServiceContext, sid: str, state: str, decision: str | None, at: dt.datetime) -> None:
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        row.state, row.decision, row.decided_at = state, decision, at
        row.result = factories.review_result(decision=decision)  # the machine compared the face


def error_code(r: Any) -> str:
    code: str = r.json()["error"]["code"]
    return code


# 1. Operator actions need an operator key.


def test_channel_key_cannot_run_the_cycle_import_the_roster_or_settle_reviews(
    client: TestClient, ctx: ServiceContext
) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())  # never certified: the cycle would suspend them
    r = client.post("/api/v1/cycle/run", params={"today": FAR})
    assert r.status_code == 403 and error_code(r) == "ADMIN_KEY_REQUIRED" and r.json()["error"]["message"]
    assert status_of(ctx, ext) == "active" and suspension_events(ctx) == 0

    # The roster rewrites ID numbers, deaths and validity dates: the benefit system's back office only.
    row = [ext, factories.id_number(), "冒名顶替", "", "enterprise_pension", "", "2199-12-31"]
    r = client.post("/api/v1/roster", files={"file": ("r.csv", roster([row]), "text/csv")})
    assert r.status_code == 403 and error_code(r) == "ADMIN_KEY_REQUIRED"
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert b is not None and b.name == "张秀英" and b.valid_until is None

    s = open_session(client, ext)
    decide(ctx, s["session_id"], "decided", "review", utcnow())
    settle = {"decision": "accept", "reviewer": "anyone"}
    r = client.post(f"/api/v1/sessions/{s['session_id']}/review", json=settle)
    assert r.status_code == 403 and error_code(r) == "ADMIN_KEY_REQUIRED"

    # The operator key does all three.
    assert client.post(f"/api/v1/sessions/{s['session_id']}/review", json=settle, headers=ADMIN).status_code == 200
    run = client.post("/api/v1/cycle/run", params={"today": FAR}, headers=ADMIN)
    assert run.status_code == 200 and run.json()["suspended"] == 1
    with ctx.db() as db:
        actors = db.scalars(select(AuditEntry.actor).where(AuditEntry.action == "cycle.run")).all()
    assert actors and all(a.startswith("admin:") for a in actors)


def test_development_admin_key_only_works_in_development(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx.settings.security, "admin_api_keys", [DEV_ADMIN_API_KEY, ADMIN_API_KEY])
    dev = {"X-API-Key": DEV_ADMIN_API_KEY}
    r = client.post("/api/v1/cycle/run", headers=dev)
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"  # env "test": the public key is no key
    assert client.post("/api/v1/cycle/run", headers=ADMIN).status_code == 200
    monkeypatch.setattr(ctx.settings, "env", "development")
    assert client.post("/api/v1/cycle/run", headers=dev).status_code == 200  # scripts/start.sh, the demo


def test_simulated_date_only_in_development_and_test(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number(), valid_until=dt.date.today() + dt.timedelta(days=90))
    s = open_session(client, ext)
    assert put_card(client, s, (data_dir / "idcard/synthetic/card_004.jpg").read_bytes()).status_code == 200
    decide(ctx, s["session_id"], "decided", "reject", utcnow())
    monkeypatch.setattr(ctx.settings, "env", "production")
    r = client.post("/api/v1/cycle/run", params={"today": FAR}, headers=ADMIN)
    assert r.status_code == 403 and error_code(r) == "DATE_OVERRIDE_FORBIDDEN"
    assert status_of(ctx, ext) == "active"
    assert ctx.storage.exists(f"sessions/{s['session_id']}/id_card")
    # Read routes refuse a simulated date too (one rule for every route), and answer on the real date.
    for path in (f"/api/v1/beneficiaries/{ext}", "/api/v1/lists/overdue"):
        r = client.get(path, params={"today": FAR}, headers=ADMIN)
        assert r.status_code == 403 and error_code(r) == "DATE_OVERRIDE_FORBIDDEN", path
        assert client.get(path, headers=ADMIN).status_code == 200
    # The real date still runs (and suspends nobody certified).
    run = client.post("/api/v1/cycle/run", headers=ADMIN)
    assert run.status_code == 200 and run.json()["date"] == local_today(ctx.settings).isoformat()  # the bureau's
    assert status_of(ctx, ext) == "active" and ctx.storage.exists(f"sessions/{s['session_id']}/id_card")


def test_unusual_share_of_suspensions_stops_the_run_and_alerts(
    client: TestClient, ctx: ServiceContext, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard_min = ctx.settings.cycle.cycle_guard_min_suspensions
    day = dt.date(2026, 6, 1)
    with ctx.db() as db:
        lapsed = [
            factories.beneficiary(db, ctx.keyring, valid_until=day - dt.timedelta(days=1)).external_id
            for _ in range(guard_min + 1)
        ]
    # Media past retention: purged by a refused run all the same (the upkeep does not depend on the suspensions;
    # before, a refused run skipped it, and in the embedded set-up nothing else ran it until someone forced it).
    old = open_session(client, lapsed[0])
    assert put_card(client, old, (data_dir / "idcard/synthetic/card_005.jpg").read_bytes()).status_code == 200
    decide(ctx, old["session_id"], "decided", "reject", dt.datetime(2026, 1, 1))

    with caplog.at_level(logging.ERROR, logger="service.certification.cycle"):
        r = client.post("/api/v1/cycle/run", params={"today": day.isoformat()}, headers=ADMIN)
    assert r.status_code == 409 and error_code(r) == "CYCLE_SUSPENSION_SPIKE", r.text
    err = r.json()["error"]
    assert err["would_suspend"] == guard_min + 1 and err["active"] == guard_min + 1 and err["message"]
    assert any("ALERT" in rec.getMessage() for rec in caplog.records)
    assert all(status_of(ctx, e) == "active" for e in lapsed) and suspension_events(ctx) == 0
    assert not ctx.storage.exists(f"sessions/{old['session_id']}/id_card")
    with ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "cycle.refused")).all()
    assert [a.detail["would_suspend"] for a in refused] == [guard_min + 1]

    # An operator who checked forces it.
    forced = client.post("/api/v1/cycle/run", params={"today": day.isoformat(), "force": "true"}, headers=ADMIN)
    assert forced.status_code == 200 and forced.json()["suspended"] == guard_min + 1
    assert forced.json()["media_purged"] == 0  # purged by the refused run already
    assert all(status_of(ctx, e) == "suspended" for e in lapsed)


def test_an_ordinary_share_of_suspensions_runs(client: TestClient, ctx: ServiceContext) -> None:
    guard_min = ctx.settings.cycle.cycle_guard_min_suspensions
    share = ctx.settings.cycle.cycle_max_suspend_share
    day = dt.date(2026, 6, 1)
    n_lapsed = guard_min + 1
    n_certified = int(n_lapsed / share)  # n_lapsed / (n_lapsed + n_certified) < share
    with ctx.db() as db:
        for _ in range(n_lapsed):
            factories.beneficiary(db, ctx.keyring, valid_until=day - dt.timedelta(days=1))
        for _ in range(n_certified):
            factories.beneficiary(db, ctx.keyring, valid_until=day + dt.timedelta(days=100))
    r = client.post("/api/v1/cycle/run", params={"today": day.isoformat()}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["suspended"] == n_lapsed


def test_undecided_review_cases_keep_their_media_past_retention(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    card = (data_dir / "idcard/synthetic/card_004.jpg").read_bytes()
    long_ago = utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 5)
    review = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    failed = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    rejected = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    for s in (review, failed, rejected):
        assert put_card(client, s, card).status_code == 200
    decide(ctx, review["session_id"], "decided", "review", long_ago)  # waiting for staff
    decide(ctx, failed["session_id"], "failed", None, long_ago)  # the job gave up: staff look at it
    decide(ctx, rejected["session_id"], "decided", "reject", long_ago)  # final: its media go

    # The bureau's date, as the run reads its `today`: the UTC date (as before) put the staff decision below on the
    # run's "today" from 16:00 to 24:00 UTC, and `later` was then one day short of the retention.
    bureau_today = local_today(ctx.settings)
    today = bureau_today.isoformat()
    run = client.post("/api/v1/cycle/run", params={"today": today}, headers=ADMIN).json()
    assert run["media_purged"] == 1
    assert not ctx.storage.exists(f"sessions/{rejected['session_id']}/id_card")
    for s in (review, failed):
        assert ctx.storage.exists(f"sessions/{s['session_id']}/id_card")
        with ctx.db() as db:
            row = db.get(CertSession, s["session_id"])
            assert row is not None and row.media_purged_at is None

    # Once staff decide, the retention clock starts from their decision.
    settle = {"decision": "reject", "reviewer": "窗口1-周"}
    assert client.post(f"/api/v1/sessions/{review['session_id']}/review", json=settle, headers=ADMIN).status_code == 200
    assert client.post("/api/v1/cycle/run", params={"today": today}, headers=ADMIN).json()["media_purged"] == 0
    later = (bureau_today + dt.timedelta(days=ctx.settings.storage.retention_days + 1)).isoformat()
    assert client.post("/api/v1/cycle/run", params={"today": later}, headers=ADMIN).json()["media_purged"] == 1
    assert not ctx.storage.exists(f"sessions/{review['session_id']}/id_card")
    assert ctx.storage.exists(f"sessions/{failed['session_id']}/id_card")


def test_cycle_never_suspends_a_beneficiary_certified_for_the_cycle(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    s = open_session(client, ext)
    today = local_today(ctx.settings)
    decide(ctx, s["session_id"], "decided", "accept", utcnow())
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert row is not None and b is not None
        accept_session(db, ctx, row, b, today, None)  # what the worker does with an accept
        until = b.valid_until
        assert until is not None and until > today
        b.valid_until = None  # a stale row (a concurrent write, a bad import): the certification still counts

    run = client.post("/api/v1/cycle/run", params={"today": today.isoformat()}, headers=ADMIN).json()
    assert run["suspended"] == 0 and status_of(ctx, ext) == "active"
    run = client.post("/api/v1/cycle/run", params={"today": until.isoformat()}, headers=ADMIN).json()
    assert run["suspended"] == 0 and status_of(ctx, ext) == "active"  # the last valid day
    day_after = (until + dt.timedelta(days=1)).isoformat()
    run = client.post("/api/v1/cycle/run", params={"today": day_after}, headers=ADMIN).json()
    assert run["suspended"] == 1 and status_of(ctx, ext) == "suspended"  # lapsed: the rule still bites


def test_a_certification_applied_during_the_cycle_run_resumes_the_beneficiary(
    backend_urls: dict[str, str], tmp_path: Path
) -> None:
    """The run has locked and suspended the row when the worker applies an accept: the worker waits, then sees
    the suspension and resumes. Before, it wrote the new validity over a stale row: certified, yet suspended."""
    if backend_urls["database_url"].startswith("sqlite"):
        pytest.skip("row locks: PostgreSQL (SQLite serialises the two writers)")
    ctx = ServiceContext(make_settings(tmp_path / "var", database_url=fresh_database(backend_urls, tmp_path)),
                         schema=None)  # fmt: skip
    install_features(ctx)  # as the worker's context: accept_session runs the features' accept hooks
    day = local_today(ctx.settings)
    try:
        with ctx.db() as db:
            b = factories.beneficiary(db, ctx.keyring, valid_until=day - dt.timedelta(days=1))
            s = create_session(db, ctx, b, Channel.SELF, False, "test").session
            s.state, s.decision, s.decided_at = "decided", "accept", utcnow()
            bid, sid = b.id, s.id
        cycle = ctx.session_factory()
        assert run_cycle(cycle, day, ctx.rules, cases=ctx.hooks.case_sources()) == [bid]
        cycle.flush()  # the row is suspended and locked, not committed yet
        done = threading.Event()

        def apply_accept() -> None:
            with ctx.db() as db:
                row, ben = db.get(CertSession, sid), db.get(Beneficiary, bid)
                assert row is not None and ben is not None
                accept_session(db, ctx, row, ben, day, None)
            done.set()

        worker = threading.Thread(target=apply_accept)
        worker.start()
        assert not done.wait(1.0)  # waiting for the run's row lock
        cycle.commit()
        cycle.close()
        worker.join(30)
        assert done.is_set()
        with ctx.db() as db:
            ben = db.get(Beneficiary, bid)
            assert ben is not None and ben.valid_until is not None and ben.valid_until > day
            assert ben.status == "active" and ben.suspended_on is None
            kinds = db.scalars(select(CycleEvent.kind).where(CycleEvent.beneficiary_id == bid).order_by(CycleEvent.id))
            assert list(kinds) == ["suspended", "resumed"]
    finally:
        ctx.engine.dispose()


# 2. The staff channel (no daily failure limit) is for operator keys only.


def test_channel_key_cannot_open_staff_channel_sessions(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    r = client.post("/api/v1/sessions", json={"external_id": ext, "channel": "staff"})
    assert r.status_code == 403 and error_code(r) == "STAFF_CHANNEL_FORBIDDEN" and r.json()["error"]["message"]
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(CertSession).where(CertSession.channel == "staff")) == 0
    r = client.post("/api/v1/sessions", json={"external_id": ext, "channel": "staff"}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["session_id"]


def test_no_key_opens_a_proxy_channel_session_here(client: TestClient, ctx: ServiceContext) -> None:
    """A session with channel "proxy" had no relative behind it (no binding, no consent, none of the proxy rules)
    and its certificate said 亲属代办认证: only the proxy API opens one, linked to its binding."""
    ext = beneficiary_with_number(ctx, factories.id_number())
    for headers in ({}, ADMIN):
        r = client.post("/api/v1/sessions", json={"external_id": ext, "channel": "proxy"}, headers=headers)
        assert r.status_code == 403 and error_code(r) == "PROXY_CHANNEL_FORBIDDEN" and r.json()["error"]["message"]
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(CertSession).where(CertSession.channel == "proxy")) == 0


# 3. Consent is a JSON boolean, nothing else.


@pytest.mark.parametrize("value", ["yes", "true", "1", "on", 1, 0, "false", None])
def test_consent_flags_must_be_booleans(client: TestClient, ctx: ServiceContext, value: object) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    r = client.post("/api/v1/sessions", json={"external_id": ext, "template_consent": value})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "FIELD_INVALID" and error["fields"][0]["field"] == "template_consent"
    op = login(client)
    body = {"id_number": factories.id_number(region="110101"), "name": "李建国", "template_consent": value}
    r = client.post(f"{P}/operators/me/verification", json=body, headers=bearer(op["token"]))
    assert r.status_code == 422, r.text
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(CertSession).where(CertSession.template_consent)) == 0


def test_boolean_consent_still_accepted(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    s = open_session(client, ext, consent=True)
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None and row.template_consent is True
    op = login(client)
    body = {"id_number": factories.id_number(region="110101"), "name": "李建国", "template_consent": True}
    assert client.post(f"{P}/operators/me/verification", json=body, headers=bearer(op["token"])).status_code == 201


# 4. An Idempotency-Key is bound to the content it first carried.


def test_idempotency_key_reused_for_other_content_is_a_conflict(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    first = (data_dir / "idcard/synthetic/card_001.jpg").read_bytes()
    other = (data_dir / "idcard/synthetic/card_002.jpg").read_bytes()
    assert put_card(client, s, first, rid="card-key-0001").status_code == 200
    r = put_card(client, s, other, rid="card-key-0001")
    assert r.status_code == 409 and error_code(r) == "IDEMPOTENCY_MISMATCH" and r.json()["error"]["message"]
    assert put_card(client, s, first, rid="card-key-0001").status_code == 200  # a true retry stays idempotent
    assert ctx.storage.get(f"sessions/{s['session_id']}/id_card") == first  # the first content, untouched

    video = (data_dir / LIVE_VIDEO).read_bytes()
    assert put_video(client, s, video, rid="video-key-0001").json()["state"] == "queued"
    r = put_video(client, s, video + b"\0other", rid="video-key-0001")
    assert r.status_code == 409 and error_code(r) == "IDEMPOTENCY_MISMATCH"
    r = put_video(client, s, video, rid="video-key-0001", nonce="not-the-nonce")
    assert r.status_code == 409 and error_code(r) == "IDEMPOTENCY_MISMATCH"
    again = put_video(client, s, video, rid="video-key-0001")
    assert again.status_code == 200 and again.json()["state"] == "queued"
    # Another key for an upload already stored stays the conflict it was.
    r = put_card(client, s, first, rid="card-key-0002")
    assert r.status_code == 409 and error_code(r) == "UPLOAD_CONFLICT"


# 5. NaN and Infinity are not JSON: a 422 with the normal validation body, never a 500.


@pytest.mark.parametrize(
    "body", ['{"external_id": NaN}', '{"external_id": Infinity}', '{"id_number": -Infinity}', '{"external_id": 1e999}']
)
def test_non_finite_numbers_are_a_422(client: TestClient, body: str) -> None:
    r = client.post("/api/v1/sessions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    field = r.json()["error"]["fields"][0]  # the answer is valid JSON: the number is never echoed as a float
    assert field["type"] == "string_type" and field["location"] == "body"


def test_non_finite_numbers_anywhere_in_a_body_are_a_422(client: TestClient) -> None:
    r = client.post(f"{P}/operators", content='{"channel": "wechat", "channel_id": NaN}',
                    headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422, r.text
    r = client.post("/api/v1/sessions/x/review", content='{"decision": NaN, "reviewer": Infinity}',
                    headers={"content-type": "application/json", **ADMIN})  # fmt: skip
    assert r.status_code == 422, r.text
