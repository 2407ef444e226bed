"""Session API without a worker: challenge, uploads and every bad input as a clear 4xx that leaves the
stored data as it was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, CertSession, utcnow
from service.infra.clock import local_date
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_card, put_video
from tests.service.conftest import ADMIN
from tests.service.media import LIVE_VIDEO, SPOOF_VIDEO


def media_files(ctx: ServiceContext) -> list[Path]:
    return sorted(ctx.settings.effective_media_dir.rglob("*.enc"))


def session_row(ctx: ServiceContext, sid: str) -> CertSession:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        return s


def test_create_session_issues_the_challenge(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    s = open_session(client, ext)
    assert s["challenge"]["actions"] == ["turn_left", "turn_right", "nod"] and len(s["challenge"]["nonce"]) >= 16
    status = client.get(f"/api/v1/sessions/{s['session_id']}", headers={"Authorization": f"Bearer {s['token']}"})
    assert status.json()["state"] == "open"
    # Another citizen's token does not open this session.
    other = open_session(client, ext)
    r = client.get(f"/api/v1/sessions/{s['session_id']}", headers={"Authorization": f"Bearer {other['token']}"})
    assert r.status_code == 401


def test_unknown_and_deceased_beneficiaries(client: TestClient, ctx: ServiceContext) -> None:
    r = client.post("/api/v1/sessions", json={"external_id": "NOBODY"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "BENEFICIARY_UNKNOWN"
    assert r.json()["error"]["message"] == "未找到待遇领取人信息"
    r = client.post("/api/v1/sessions", json={"id_number": factories.id_number()})
    assert r.status_code == 404
    dead = beneficiary_with_number(ctx, factories.id_number(), status="deceased")
    r = client.post("/api/v1/sessions", json={"external_id": dead})
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED"


def test_bad_uploads_are_refused_and_change_nothing(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    s = open_session(client, ext)
    card = (data_dir / "idcard/synthetic/card_001.jpg").read_bytes()
    video = (data_dir / LIVE_VIDEO).read_bytes()

    checks = [
        (put_card(client, s, b"%PDF-1.7\n1 0 obj", ctype="image/jpeg"), 415, "MEDIA_UNSUPPORTED"),  # bytes decide
        (put_card(client, s, b"\xff\xd8\xff\xe0 garbage that is not a JPEG"), 422, "MEDIA_CORRUPT"),
        (put_card(client, s, b""), 422, "MEDIA_CORRUPT"),
        (put_card(client, s, b"\0" * (ctx.settings.uploads.max_image_bytes + 1)), 413, "MEDIA_TOO_LARGE"),
        (put_video(client, s, b"just some text", ctype="video/mp4"), 415, "MEDIA_UNSUPPORTED"),
        (put_video(client, s, card, ctype="video/mp4"), 415, "MEDIA_UNSUPPORTED"),  # a JPEG posing as video
        (put_video(client, s, video, nonce="a-nonce-from-another-session"), 409, "NONCE_REUSED"),
    ]
    for response, status, code in checks:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert media_files(ctx) == []
    row = session_row(ctx, s["session_id"])
    assert row.state == "open" and row.id_card_key is None and row.video_key is None and row.nonce_used_at is None


def test_uploads_are_idempotent_and_queue_the_session(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    s = open_session(client, ext)
    card = (data_dir / "idcard/synthetic/card_002.jpg").read_bytes()
    video = (data_dir / LIVE_VIDEO).read_bytes()
    first = put_card(client, s, card, rid="card-request-1")
    assert first.status_code == 200 and first.json()["uploads"]["id_card"] is True
    stored = media_files(ctx)
    # The client retries after a lost answer: same request id, same answer, nothing stored twice.
    again = put_card(client, s, card, rid="card-request-1")
    assert again.status_code == 200 and again.json() == first.json() and media_files(ctx) == stored
    # A second, different card for the same session is a conflict, not a silent overwrite.
    other = put_card(client, s, (data_dir / "idcard/synthetic/card_003.jpg").read_bytes(), rid="card-request-2")
    assert other.status_code == 409 and other.json()["error"]["code"] == "UPLOAD_CONFLICT"
    assert ctx.storage.get(f"sessions/{s['session_id']}/id_card") == card

    v = put_video(client, s, video, rid="video-request-1")
    assert v.status_code == 200 and v.json()["state"] == "queued"
    assert put_video(client, s, video, rid="video-request-1").status_code == 200
    # The nonce is single-use: a new recording under the same challenge is refused.
    replay = put_video(client, s, (data_dir / SPOOF_VIDEO).read_bytes(), rid="video-request-2")
    assert replay.status_code == 409
    assert ctx.storage.get(f"sessions/{s['session_id']}/video") == video

    # The same video submitted in a new session of the same person is a duplicate.
    s2 = open_session(client, ext)
    dup = put_video(client, s2, video)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "VIDEO_DUPLICATE"
    assert session_row(ctx, s2["session_id"]).video_key is None


def test_expired_challenge(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None
        row.nonce_expires_at = utcnow() - dt.timedelta(seconds=1)
    r = put_video(client, s, (data_dir / "spoof/videos/lestari15_real.mp4").read_bytes(), ctype="video/mp4")
    assert r.status_code == 410 and r.json()["error"]["code"] == "NONCE_EXPIRED"


def test_daily_failures_offer_staff_review(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    for _ in range(ctx.settings.certification.failures_per_day):
        s = open_session(client, ext)
        with ctx.db() as db:
            row = db.get(CertSession, s["session_id"])
            assert row is not None
            row.state, row.decision, row.decided_at = "decided", "reject", utcnow()
    r = client.post("/api/v1/sessions", json={"external_id": ext})
    assert r.status_code == 429 and r.json()["error"]["code"] == "ATTEMPTS_EXCEEDED"
    assert r.json()["error"]["staff_review"] is True
    staff = client.post("/api/v1/sessions", json={"external_id": ext, "channel": "staff"}, headers=ADMIN)
    assert staff.status_code == 201
    with ctx.db() as db:
        count = db.scalar(select(func.count()).select_from(CertSession))
        assert count is not None and count >= 4


def test_retention_purges_media_after_the_final_decision(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    assert put_card(client, s, (data_dir / "idcard/synthetic/card_004.jpg").read_bytes()).status_code == 200
    key = f"sessions/{s['session_id']}/id_card"
    decided = utcnow()
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None
        row.state, row.decision, row.decided_at = "decided", "reject", decided
    days = ctx.settings.storage.retention_days
    # The run's `today` is the bureau's date; the decision's UTC date (as before) is the day before it from 16:00 to
    # 24:00 UTC, and `late` was then within the retention.
    decided_day = local_date(ctx.settings, decided)
    # Each run also deletes what would pass the period before the next one (retention.PURGE_AHEAD, a day and an
    # hour): the run of day `days - 1` takes media decided in the first hour of the bureau's day (16:00-17:00 UTC,
    # where this test failed CI), so the run that must keep them is the day before that.
    early = (decided_day + dt.timedelta(days=days - 2)).isoformat()
    assert client.post("/api/v1/cycle/run", params={"today": early}, headers=ADMIN).json()["media_purged"] == 0
    assert ctx.storage.exists(key)
    late = (decided_day + dt.timedelta(days=days + 1)).isoformat()
    assert client.post("/api/v1/cycle/run", params={"today": late}, headers=ADMIN).json()["media_purged"] == 1
    assert not ctx.storage.exists(key)
    row = session_row(ctx, s["session_id"])
    assert row.media_purged_at is not None and row.decision == "reject"  # the decision itself stays


def test_oversize_body_is_refused_before_it_is_read(client: TestClient, ctx: ServiceContext) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    huge = str(ctx.settings.uploads.max_video_bytes * 4)
    r = client.post(
        f"/api/v1/sessions/{s['session_id']}/video",
        headers={"Authorization": f"Bearer {s['token']}", "Idempotency-Key": "x" * 12, "Content-Length": huge},
        content=b"tiny",
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "MEDIA_TOO_LARGE"
    assert media_files(ctx) == []


def test_staff_settle_a_review(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number(), status="suspended")
    s = open_session(client, ext)
    url = f"/api/v1/sessions/{s['session_id']}/review"
    body = {"decision": "accept", "reviewer": "窗口3-李", "note": "证件照较旧, 核对无误"}
    assert client.post(url, json=body, headers=ADMIN).status_code == 409  # still open: nothing to review
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None
        row.state, row.decision, row.decided_at = "decided", "review", utcnow()
        row.result = factories.review_result()
    r = client.post(url, json=body, headers=ADMIN)
    assert r.status_code == 200 and r.json()["review"]["machine_decision"] == "review"
    b = client.get(f"/api/v1/beneficiaries/{ext}").json()
    assert b["status"] == "active" and b["cycle_state"] == "certified"
    assert client.post(url, json=body, headers=ADMIN).status_code == 409  # settled once


def test_a_retried_review_is_answered_as_the_first(client: TestClient, ctx: ServiceContext) -> None:
    """The bureau's back office timed out after the commit and sent the review again: it got 409 SESSION_STATE and
    recorded a failure for a decision that was applied (outside review 2026-12-06, finding 5). Under the same
    Idempotency-Key the retry is the first answer, `replayed`; the same key asking otherwise is a 409
    IDEMPOTENCY_MISMATCH (the revocation's rule, request_replay.py)."""
    ext = beneficiary_with_number(ctx, factories.id_number(), status="suspended")
    sid = open_session(client, ext)["session_id"]
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        row.state, row.decision, row.decided_at = "decided", "review", utcnow()
        row.result = factories.review_result()
    url, key = f"/api/v1/sessions/{sid}/review", {**ADMIN, "Idempotency-Key": "review-0001"}
    body = {"decision": "accept", "reviewer": "窗口3-李", "note": "核对无误"}
    first = client.post(url, json=body, headers=key)
    assert first.status_code == 200 and first.json()["replayed"] is False, first.text

    again = client.post(url, json=body, headers=key)

    assert again.status_code == 200 and again.json() == {**first.json(), "replayed": True}, again.text
    for other in ({**body, "decision": "reject"}, {**body, "note": "另一个"}, {**body, "reviewer": "窗口4-王"}):
        r = client.post(url, json=other, headers=key)
        assert r.status_code == 409 and r.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH", r.text
    r = client.post(url, json=body, headers={**ADMIN, "Idempotency-Key": "review-0002"})  # another request
    assert r.status_code == 409 and r.json()["error"]["code"] == "SESSION_STATE", r.text
    with ctx.db() as db:
        reviews = db.scalar(select(func.count()).where(AuditEntry.action == "session.review", AuditEntry.target == sid))
    assert reviews == 1  # settled once


def test_a_review_decision_outside_the_enum_is_an_invalid_field(client: TestClient, ctx: ServiceContext) -> None:
    """ "ACCEPT" or "approve" was a 422 with SESSION_STATE, the code of a 409 ("the case moved on")."""
    sid = open_session(client, beneficiary_with_number(ctx, factories.id_number()))["session_id"]
    for decision in ("ACCEPT", "approve"):
        r = client.post(f"/api/v1/sessions/{sid}/review", json={"decision": decision, "reviewer": "x"}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["error"]["code"] == "FIELD_INVALID", r.text
        assert r.json()["error"]["fields"][0]["field"] == "decision", r.text


def test_abandoned_sessions_expire_and_their_media_go(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    assert put_card(client, s, (data_dir / "idcard/synthetic/card_005.jpg").read_bytes()).status_code == 200
    row = session_row(ctx, s["session_id"])
    # The bureau's day after the one the session expires on: the run expires as of that day's local midnight. The
    # UTC date (as before) failed each day from 15:00 to 16:00 UTC, when the session's hour ran past Beijing's midnight.
    day_after = local_date(ctx.settings, row.expires_at) + dt.timedelta(days=1)
    run = client.post("/api/v1/cycle/run", params={"today": day_after.isoformat()}, headers=ADMIN).json()
    assert run["sessions_expired"] >= 1
    assert session_row(ctx, s["session_id"]).state == "expired"
    late = day_after + dt.timedelta(days=ctx.settings.storage.retention_days + 1)
    client.post("/api/v1/cycle/run", params={"today": late.isoformat()}, headers=ADMIN)
    assert not ctx.storage.exists(f"sessions/{s['session_id']}/id_card")
    # An expired session takes no more uploads.
    r = put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes())
    assert r.status_code == 409 and r.json()["error"]["code"] == "SESSION_STATE"
