"""Scale-out with the media in an S3 bucket (PostgreSQL + Redis + a real `celery worker` with beat + a real S3
server over HTTP): the store is SIGKILLed just after uploads were acknowledged, and restarted on the same port
with what it held. The worker's reads fail meanwhile (a transient error: the job is released and retried), an
upload during the outage answers 503 quickly and stores nothing, and once the store is back every acknowledged
session gets exactly one decision and the refused upload goes through on the same request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from service.certification.context import ServiceContext
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.faults.helpers import (
    LONG,
    QUICK_S,
    assert_decided_once,
    enrol,
    state_of,
    timed_upload,
    video_copy,
    wait_worker_ready,
)
from tests.service.live import celery_worker, live_service, wait_decided
from tests.service.servers import s3_server

pytestmark = [pytest.mark.slow, pytest.mark.faults]

BEFORE = 3 if LONG else 1  # sessions acknowledged just before the store goes down
DOWN_S = 4.0


def test_no_certification_is_lost_when_the_object_store_restarts(
    scaleout_urls: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    with s3_server() as s3:
        s3.client().create_bucket(Bucket="media")
        store = {
            "media_url": "s3://media/p",
            "s3_endpoint_url": s3.endpoint,
            "s3_region": "us-east-1",
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
        }
        with live_service(
            scaleout_urls, tmp_path, worker_mode="celery", sweep_interval_s=1, start_worker=False, **store
        ) as (client, settings):
            ctx = ServiceContext(settings, schema=None)
            people = enrol(client, data_dir, "S3R", BEFORE + 1)
            log = tmp_path / "celery.log"
            with celery_worker(settings, log, beat=True) as worker:
                wait_worker_ready(log)
                acknowledged: list[dict[str, Any]] = []
                for i, (ext, card) in enumerate(people[:BEFORE]):
                    s = open_session(client, ext)
                    timed_upload(client, s, card, video_copy(data_dir, i))
                    acknowledged.append(s)
                s3.kill(keep=True)
                # An upload while the store is down: refused quickly, nothing recorded, retried later.
                ext, card = people[BEFORE]
                late = open_session(client, ext)
                t0 = time.monotonic()
                r = put_card(client, late, card, rid="late-card")
                assert r.status_code == 503 and r.json()["error"]["code"] == "STORAGE", r.text
                assert time.monotonic() - t0 < QUICK_S
                assert state_of(ctx, late["session_id"]) == "open"
                time.sleep(DOWN_S)
                assert worker.poll() is None, "the worker exited while the store was down"
                s3.start()
                assert put_card(client, late, card, rid="late-card").status_code == 200
                video = video_copy(data_dir, BEFORE)
                assert put_video(client, late, video).status_code == 200
                acknowledged.append(late)
                results = [wait_decided(client, s, timeout=300) for s in acknowledged]
                assert worker.poll() is None
        decisions = assert_decided_once(ctx, [s["session_id"] for s in acknowledged])
        assert set(decisions.values()) == {"accept"}, [r["reasons"] for r in results]
