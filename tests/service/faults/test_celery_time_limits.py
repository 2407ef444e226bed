"""Scale-out: a certification task that runs past its time limits (a decoder hung on a pathological video) does
not hold its worker slot for ever. Real `celery worker` processes (prefork pool, one child), PostgreSQL and Redis,
the real models and the real test video: the limits are set well below what loading the models and certifying
takes (about 1.6 s on an idle 2-core machine, the pool process's first job), so the task is really too slow, not
stubbed.

- Soft limit: the task is interrupted, its job put back as a failed attempt (FAILED for staff here, with one
  attempt), the reason in ``last_error``; the worker goes on.
- Hard limit (equal limits: no soft phase, as for a decoder stuck in C code): the pool process is killed and
  replaced, and the worker's main process hands the job back at once.

Before, tasks had no time limit: the job stayed ``processing`` while the task ran, however long.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import CertSession, WorkerHeartbeat
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.conftest import ADMIN
from tests.service.live import celery_worker, live_service, wait_decided
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.test_e2e import roster

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def _job_after_limit(
    scaleout_urls: dict[str, str], tmp_path: Path, data_dir: Path, soft: float, hard: float
) -> tuple[dict[str, object], CertSession, list[WorkerHeartbeat]]:
    with live_service(
        scaleout_urls,
        tmp_path,
        worker_mode="celery",
        start_worker=False,
        job_max_attempts=1,
        task_soft_time_limit_s=soft,
        task_time_limit_s=hard,
    ) as (client, settings):
        card, fields = card_for_video(data_dir, LIVE_VIDEO)
        client.post(
            "/api/v1/roster",
            files={"file": ("r.csv", roster([["TL-1", fields.id_number, fields.name, "", "work_injury", "", ""]]))},
            headers=ADMIN,
        )
        s = open_session(client, "TL-1")
        assert put_card(client, s, card).status_code == 200
        assert put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes()).json()["state"] == "queued"
        ctx = ServiceContext(settings, schema=None)
        with celery_worker(settings, tmp_path / "celery.log", pool="prefork"):
            t0 = time.monotonic()
            result = wait_decided(client, s, timeout=60)
            elapsed = time.monotonic() - t0
            time.sleep(2 * settings.workers.worker_heartbeat_s)  # a replaced pool process has written its beat
            with ctx.db() as db:
                job = db.get(CertSession, s["session_id"])
                assert job is not None
                db.expunge(job)
                beats = list(db.scalars(select(WorkerHeartbeat)))
                for b in beats:
                    db.expunge(b)
        assert elapsed < hard + 30, elapsed
        return result, job, beats


def test_a_task_past_its_soft_time_limit_gives_its_job_up(
    scaleout_urls: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    result, job, beats = _job_after_limit(scaleout_urls, tmp_path, data_dir, soft=0.3, hard=120.0)
    assert result["state"] == "failed", result  # before: processing until the task ended, however long
    assert job.last_error is not None and "JobTimeLimitExceededError" in job.last_error, job.last_error
    assert "soft time limit" in job.last_error
    # The pool process lived on: the worker's main process and its one child, both beating.
    assert sum(b.stopped_at is None for b in beats) == 2, [(b.name, b.stopped_at) for b in beats]


def test_a_task_past_its_hard_time_limit_is_killed_and_its_job_handed_back(
    scaleout_urls: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    result, job, beats = _job_after_limit(scaleout_urls, tmp_path, data_dir, soft=0.5, hard=0.5)
    assert result["state"] == "failed", result
    assert job.last_error is not None and "hard time limit" in job.last_error, job.last_error
    # The killed pool process (the job's holder) and its replacement: main process, dead child, new child.
    names = {b.name for b in beats}
    assert job.worker_process in names and len(names) == 3, names
