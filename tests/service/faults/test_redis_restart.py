"""Scale-out (PostgreSQL + Redis + a real `celery worker` with beat): the broker is SIGKILLed (every queued
message lost) and restarted on the same port. Uploads while it is down are acknowledged quickly and stored
(the job row is queued); the worker reconnects by itself, the sweep re-announces the jobs, and every
acknowledged session gets exactly one decision."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from service.certification.context import ServiceContext
from tests.service.adapters.http.helpers import open_session
from tests.service.faults.helpers import (
    LONG,
    QUICK_S,
    assert_decided_once,
    assert_stored,
    enrol,
    state_of,
    timed_upload,
    video_copy,
    wait_for,
    wait_worker_ready,
)
from tests.service.faults.servers import redis_server
from tests.service.live import celery_worker, live_service, wait_decided

pytestmark = [pytest.mark.slow, pytest.mark.faults]

# Short run: one outage, one upload during it. Long run: three outages, two uploads during each, and one
# upload between outages (announced directly by the API's reconnected publisher).
OUTAGES = 3 if LONG else 1
PER_OUTAGE = 2 if LONG else 1
LOST = "Connection to broker lost"
DOWN_S = 3.0  # the broker stays down this long after the uploads: beat and the consumer run into it


def count(log: Path, line: str) -> int:
    return log.read_text(errors="replace").count(line)


def test_uploads_during_redis_outage_are_kept_and_decided_once(
    scaleout_urls: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    with redis_server(tmp_path / "redis") as redis:
        backend = {**scaleout_urls, "broker_url": redis.url}
        with live_service(backend, tmp_path, worker_mode="celery", sweep_interval_s=1, start_worker=False) as (
            client,
            settings,
        ):
            ctx = ServiceContext(settings, schema=None)
            n = OUTAGES * PER_OUTAGE + (OUTAGES if LONG else 0)
            people = iter(enrol(client, data_dir, "RDS", n + OUTAGES))  # one spare per outage: see below
            acknowledged: list[dict[str, Any]] = []
            results: list[dict[str, Any]] = []
            log = tmp_path / "celery.log"
            with celery_worker(settings, log, beat=True) as worker:
                wait_worker_ready(log)  # connected: the outage cuts a live connection
                for _ in range(OUTAGES):
                    batch: list[dict[str, Any]] = []
                    if LONG:  # announced at once; the outage then hits this task in flight (its ack fails)
                        ext, card = next(people)
                        s = open_session(client, ext)
                        timed_upload(client, s, card, video_copy(data_dir, len(acknowledged)))
                        acknowledged.append(s)
                        batch.append(s)
                        wait_for(lambda: state_of(ctx, s["session_id"]) != "queued", 120, "worker takes the job")  # noqa: B023
                    lost = count(log, LOST)
                    redis.kill()
                    slow: list[float] = []
                    for _ in range(PER_OUTAGE):
                        ext, card = next(people)
                        s = open_session(client, ext)  # the database alone: unaffected by the broker
                        video = video_copy(data_dir, len(acknowledged))
                        took = timed_upload(client, s, card, video)
                        if took >= QUICK_S:
                            slow.append(took)
                        assert_stored(ctx, s["session_id"], video)
                        acknowledged.append(s)
                        batch.append(s)
                    if slow:
                        # Waiting on the broker would make every upload of the outage slow; a loaded CI machine's
                        # stalled fsync or starved process makes one slow (14 s seen once, 0.3 s otherwise). The
                        # outage's spare person's upload tells them apart: it must be quick.
                        ext, card = next(people)
                        s = open_session(client, ext)
                        video = video_copy(data_dir, len(acknowledged))
                        took = timed_upload(client, s, card, video)
                        assert took < QUICK_S, f"uploads took {slow} then {took:.1f}s with the broker down"
                        assert_stored(ctx, s["session_id"], video)
                        acknowledged.append(s)
                        batch.append(s)
                    if not LONG:  # an idle worker notices at once (a busy one only after its task, silently)
                        wait_for(lambda: count(log, LOST) > lost, 60, "the worker sees the broker gone")  # noqa: B023
                    time.sleep(DOWN_S)
                    assert worker.poll() is None, "the worker exited while the broker was down"
                    redis.start()  # empty: every message of the outage is lost, the sweep re-finds the jobs
                    # Recovery before the next outage: the same worker process decides the outage's jobs.
                    results += [wait_decided(client, s, timeout=240) for s in batch]
                assert worker.poll() is None
        decisions = assert_decided_once(ctx, [s["session_id"] for s in acknowledged])
        assert set(decisions.values()) == {"accept"}, [r["reasons"] for r in results]
