"""Issue #22 item 7 on the H5 card route: when the card is the upload that queues the session and no worker has
a fresh heartbeat, the answer says `processing: delayed` in Chinese (the session is stored and queued all the
same). The real app on SQLite with the WeChat cookie; no lifespan, so no worker of its own."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient

import service.schema
from service.adapters.http.app import create_app
from service.certification import heartbeat
from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.media import LIVE_VIDEO

NAME = "李秀英"


def test_card_that_queues_the_session_says_delayed_without_a_worker(tmp_path: Path, data_dir: Path) -> None:
    with FakeWeChat() as fake:
        settings = wechat_settings(
            fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'h5.db'}", worker_mode="thread", worker_stale_s=30
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        c = TestClient(create_app(ctx=ctx))
        number = factories.id_number()
        with ctx.db() as db:
            factories.beneficiary(db, ctx.keyring, name=NAME, id_number=number)
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-card-last"))
        s = c.post("/h5/api/sessions", json={"name": NAME, "id_number": number, "consent": True}).json()
        bearer = {"Authorization": f"Bearer {s['token']}"}
        video = c.post(
            f"/api/v1/sessions/{s['session_id']}/video",
            headers={**bearer, "Idempotency-Key": uuid.uuid4().hex},
            files={"file": ("selfie.mp4", (data_dir / LIVE_VIDEO).read_bytes(), "video/mp4")},
            data={"nonce": s["challenge"]["nonce"]},
        )
        assert video.status_code == 200 and video.json()["state"] == "open", video.text
        assert "processing" not in video.json()  # not queued yet: nothing to say about workers

        jpeg = (data_dir / "idcard/synthetic/card_002.jpg").read_bytes()
        r = c.post(
            f"/h5/api/sessions/{s['session_id']}/card",
            headers={**bearer, "Idempotency-Key": "card-rid-00000001"},
            files={"file": ("card.jpg", jpeg, "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "queued" and body["processing"] == "delayed"
        assert body["message"] == "系统繁忙,视频已保存,稍后出结果"
        heartbeat.beat(ctx, "thread", "w1")
        status = c.get(f"/api/v1/sessions/{s['session_id']}", headers=bearer)  # what the page polls
        assert status.json()["processing"] == "normal" and "message" not in status.json()
