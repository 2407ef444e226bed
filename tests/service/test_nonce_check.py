"""The one nonce check (service.certification.sessions): the video upload must carry this session's challenge
nonce, once, before it expires. A refused upload stores nothing and leaves the nonce unspent.

The liveness checker's own nonce path (pipelines.liveness.replay.nonce_reasons and its in-memory store) was
never used by the service and is gone; this is the check every channel (API, H5, proxy) goes through."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import CertSession, UploadKind, utcnow
from tests.service import factories
from tests.service.adapters.http.helpers import auth, beneficiary_with_number, open_session, put_video
from tests.service.media import LIVE_VIDEO, SPOOF_VIDEO


def _unspent(ctx: ServiceContext, sid: str) -> bool:
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        return row.nonce_used_at is None and row.video_key is None


def test_a_wrong_or_absent_nonce_is_refused(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    video = (data_dir / LIVE_VIDEO).read_bytes()
    for nonce in ("a-nonce-from-another-session", s["challenge"]["nonce"] + "x"):
        r = put_video(client, s, video, nonce=nonce)
        assert r.status_code == 409 and r.json()["error"]["code"] == "NONCE_REUSED", (nonce, r.text)
        assert r.json()["error"]["detail"] == "nonce does not belong to this session"
    # An empty or missing nonce field: the form is incomplete, refused before the session is touched.
    assert put_video(client, s, video, nonce="").json()["error"]["code"] == "FIELD_MISSING"
    url = f"/api/v1/sessions/{s['session_id']}/video"
    missing = client.post(url, headers=auth(s, None), files={"file": ("selfie.webm", video, "video/webm")})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "FIELD_MISSING"
    # Callers other than the API form (H5, proxy) reach the same check with no nonce at all.
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None
        with pytest.raises(ServiceError) as refused:
            sessions.upload(db, ctx, row, UploadKind.VIDEO, video, "video/webm", "video-request-0", None)
    assert refused.value.code == "NONCE_REUSED" and refused.value.detail == "nonce does not belong to this session"
    assert _unspent(ctx, s["session_id"])


def test_a_used_nonce_is_refused(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    first = put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes(), rid="video-request-1")
    assert first.status_code == 200
    # Through the API a second recording is already refused as a second video of the session.
    again = put_video(client, s, (data_dir / SPOOF_VIDEO).read_bytes(), rid="video-request-2")
    assert again.status_code == 409 and again.json()["error"]["code"] == "UPLOAD_CONFLICT", again.text
    # The nonce itself is single-use: a spent one is refused whatever else the session holds.
    other = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    with ctx.db() as db:
        row = db.get(CertSession, other["session_id"])
        assert row is not None
        row.nonce_used_at = utcnow()
        with pytest.raises(ServiceError) as refused:
            video = (data_dir / SPOOF_VIDEO).read_bytes()
            sessions.upload(db, ctx, row, UploadKind.VIDEO, video, "video/mp4", "video-request-3", row.nonce)
    assert refused.value.code == "NONCE_REUSED" and refused.value.detail == "nonce already used"


def test_an_expired_nonce_is_refused(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None
        row.nonce_expires_at = utcnow() - dt.timedelta(seconds=1)
    r = put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes())
    assert r.status_code == 410 and r.json()["error"]["code"] == "NONCE_EXPIRED"
    assert _unspent(ctx, s["session_id"])
