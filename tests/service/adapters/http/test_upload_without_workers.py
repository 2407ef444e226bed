"""Issue #22 item 7: an upload that queues a session while no worker has a fresh heartbeat is still stored
(the job runs when a worker returns) but answered `processing: delayed` with a Chinese message, an alert in
the log and a metric, instead of a silent `queued`. The real app on SQLite; we play the worker heartbeats."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.schema
from service.adapters.http.app import create_app
from service.certification import heartbeat
from service.certification.context import ServiceContext
from service.certification.models import CertSession
from tests.service import factories
from tests.service.adapters.http.helpers import auth, beneficiary_with_number, open_session, put_card, put_video
from tests.service.adapters.http.ops import ops_settings
from tests.service.conftest import API_KEY
from tests.service.media import LIVE_VIDEO

DELAYED = "系统繁忙,视频已保存,稍后出结果"


def client_for(tmp_path: Path, mode: str) -> tuple[TestClient, ServiceContext]:
    ctx = ServiceContext(
        ops_settings(tmp_path, worker_mode=mode, worker_stale_s=30, rate_limit_enabled=False),
        schema=service.schema.metadata,
    )
    c = TestClient(create_app(ctx=ctx))  # no lifespan: no worker of its own; the test plays the heartbeats
    c.headers["X-API-Key"] = API_KEY
    return c, ctx


def queue_one(c: TestClient, ctx: ServiceContext, data_dir: Path) -> tuple[dict[str, Any], Any]:
    s = open_session(c, beneficiary_with_number(ctx, factories.id_number()))
    assert put_card(c, s, (data_dir / "idcard/synthetic/card_002.jpg").read_bytes()).status_code == 200
    return s, put_video(c, s, (data_dir / LIVE_VIDEO).read_bytes(), ctype="video/mp4", rid="video-rid-0001")


def delayed_count(c: TestClient) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith("pension_cert_uploads_delayed_total "):
            return float(line.split()[1])
    return 0.0


def test_no_live_worker_stores_the_upload_and_says_it_is_delayed(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c, ctx = client_for(tmp_path, "process")
    before = delayed_count(c)
    with caplog.at_level(logging.ERROR, logger="service.certification.sessions"):
        s, r = queue_one(c, ctx, data_dir)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "queued" and body["processing"] == "delayed" and body["message"] == DELAYED
    assert any("ALERT no live worker" in rec.getMessage() for rec in caplog.records)
    assert delayed_count(c) == before + 1
    with ctx.db() as db:  # nothing lost: the media and the queued job are there for the next worker
        row = db.get(CertSession, s["session_id"])
        assert row is not None and row.state == "queued" and row.video_key is not None
    assert ctx.storage.get(f"sessions/{s['session_id']}/video") == (data_dir / LIVE_VIDEO).read_bytes()
    # The retried request (lost answer) gets the same answer; polling says it too, without another alert.
    again = put_video(c, s, (data_dir / LIVE_VIDEO).read_bytes(), ctype="video/mp4", rid="video-rid-0001")
    assert again.json() == body
    status = c.get(f"/api/v1/sessions/{s['session_id']}", headers=auth(s))
    assert status.status_code == 200, status.text
    assert status.json()["processing"] == "delayed" and status.json()["message"] == DELAYED
    assert delayed_count(c) == before + 1
    # A worker checks in: the same session is now expected as usual.
    heartbeat.beat(ctx, "process", "w1")
    status = c.get(f"/api/v1/sessions/{s['session_id']}", headers=auth(s))
    assert status.json()["processing"] == "normal" and "message" not in status.json()


def test_a_live_worker_means_normal_processing(tmp_path: Path, data_dir: Path) -> None:
    c, ctx = client_for(tmp_path, "celery")
    heartbeat.beat(ctx, "celery", "w1")
    before = delayed_count(c)
    _, r = queue_one(c, ctx, data_dir)
    assert r.status_code == 200 and r.json()["processing"] == "normal" and "message" not in r.json()
    assert delayed_count(c) == before


def test_worker_mode_none_answers_as_before(tmp_path: Path, data_dir: Path) -> None:
    """The many tests (and deployments) without workers this API knows of: the answer is unchanged."""
    c, ctx = client_for(tmp_path, "none")
    _, r = queue_one(c, ctx, data_dir)
    assert r.status_code == 200 and r.json()["state"] == "queued"
    assert "processing" not in r.json() and "message" not in r.json()
