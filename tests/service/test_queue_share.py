"""One requester's share of the processing queue (QUEUED_PER_REQUESTER, sessions._check_queue_share): one channel
key queued without limit, and the workers, oldest first, put every other citizen behind its backlog (review:
workload 3). Past the cap the upload that would queue a session is 429 QUEUE_FULL, nothing stored, and the same
request succeeds once the requester's sessions are decided; other requesters queue as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.adapters.http.errors import QUEUE_FULL_RETRY_S
from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, UploadKind
from service.infra.config import Settings
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_card, put_video
from tests.service.conftest import make_settings
from tests.service.media import LIVE_VIDEO, card_for_video


@pytest.fixture
def settings(tmp_path: Path, backend_urls: dict[str, str]) -> Settings:
    return make_settings(tmp_path, database_url=backend_urls["database_url"], queued_per_requester=2)


def _carded(client: TestClient, ctx: ServiceContext, card: bytes) -> dict[str, Any]:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    assert put_card(client, s, card).status_code == 200
    return s


def test_a_keys_upload_past_its_share_of_the_queue_is_refused_until_some_are_decided(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    card, _ = card_for_video(data_dir, LIVE_VIDEO)
    video = (data_dir / LIVE_VIDEO).read_bytes()
    first, second, third = (_carded(client, ctx, card) for _ in range(3))
    for i, s in enumerate((first, second)):
        r = put_video(client, s, video + bytes([i]), ctype="video/webm")
        assert r.status_code == 200, r.text
    r = put_video(client, third, video + b"\x03", ctype="video/webm", rid="third-video-request")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "QUEUE_FULL"
    assert r.json()["error"]["message"] == "待处理的认证过多,请稍后再提交"
    # When to send it again: without it an integrator's client retried at once, in a loop (review: queue 1).
    assert r.headers.get("Retry-After") == str(QUEUE_FULL_RETRY_S)
    with ctx.db() as db:
        row = db.get(CertSession, third["session_id"])
        assert row is not None and row.state == SessionState.OPEN and row.video_key is None
    assert list(ctx.storage.list(f"sessions/{third['session_id']}/video")) == []  # nothing stored
    with ctx.db() as db:
        done = db.get(CertSession, first["session_id"])
        assert done is not None
        done.state, done.decision = SessionState.DECIDED, "reject"
        db.commit()
    r = put_video(client, third, video + b"\x03", ctype="video/webm", rid="third-video-request")
    assert r.status_code == 200, r.text


def test_another_requester_still_queues(client: TestClient, ctx: ServiceContext, data_dir: Path) -> None:
    card, _ = card_for_video(data_dir, LIVE_VIDEO)
    video = (data_dir / LIVE_VIDEO).read_bytes()
    for i in range(2):
        assert put_video(client, _carded(client, ctx, card), video + bytes([i]), ctype="video/webm").status_code == 200
    with ctx.db() as db:
        b = db.get(Beneficiary, factories.beneficiary(db, ctx.keyring).id)
        assert b is not None
        s = sessions.create_session(db, ctx, b, Channel.SELF, False, "wechat:someone").session
        sessions.upload(db, ctx, s, UploadKind.ID_CARD, card, "image/jpeg", "card-request-other")
        assert sessions.upload(db, ctx, s, UploadKind.VIDEO, video + b"\x09", "video/webm", "video-other", s.nonce)
