"""Scale-out: a `celery worker` process SIGKILLed while it runs a certification. The task was acknowledged
late, so the broker redelivers it (after its visibility timeout), and the periodic sweep re-enqueues the job
once its database lease expires: a second Celery worker redoes it, once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import Certification, CertSession
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.conftest import ADMIN
from tests.service.faults.helpers import assert_decided_once
from tests.service.live import celery_worker, live_service, wait_decided
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.test_e2e import roster

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def test_sigkilled_celery_worker_task_is_redelivered(
    scaleout_urls: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    with live_service(
        scaleout_urls, tmp_path, worker_mode="celery", job_lease_s=4, sweep_interval_s=2, start_worker=False
    ) as (
        client,
        settings,
    ):
        card, fields = card_for_video(data_dir, LIVE_VIDEO)
        client.post(
            "/api/v1/roster",
            files={"file": ("r.csv", roster([["CEL-1", fields.id_number, fields.name, "", "work_injury", "", ""]]))},
            headers=ADMIN,
        )
        s = open_session(client, "CEL-1")
        assert put_card(client, s, card).status_code == 200
        assert put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes()).json()["state"] == "queued"
        ctx = ServiceContext(settings, schema=None)

        with celery_worker(settings, tmp_path / "celery1.log") as first:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with ctx.db() as db:
                    row = db.get(CertSession, s["session_id"])
                    assert row is not None
                    if row.state == "processing":
                        break
                time.sleep(0.02)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        with ctx.db() as db:
            row = db.get(CertSession, s["session_id"])
            assert row is not None and row.state == "processing"

        with celery_worker(settings, tmp_path / "celery2.log", beat=True):
            result = wait_decided(client, s, timeout=180)
        assert result["decision"] == "accept", result
        with ctx.db() as db:
            assert db.scalar(select(func.count()).select_from(Certification)) == 1
        # Redelivery and sweep may both announce the job: still one decision.
        assert_decided_once(ctx, [s["session_id"]])
