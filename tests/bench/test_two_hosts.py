"""API and workers on separate hosts, simulated (issue 19): `bench/service.py --setup celery-s3` runs the API and
two Celery workers as separate processes, each in its own working and var directory, sharing only PostgreSQL,
Redis and an S3 bucket (a real S3 server over HTTP on loopback). A worker can read a card and video only through
the bucket: every certification accepted shows that the media travelled there and nowhere else."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pytest

from bench import service as bench_service
from tests.service import servers

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    not (servers.postgres_available() and servers.redis_available()), reason="needs Debian postgresql + redis-server"
)
def test_two_workers_without_a_shared_disk_certify_through_the_bucket() -> None:
    def scratch() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("pension-bench-service-*"))

    before = scratch()
    args = argparse.Namespace(n=2, setup="celery-s3", workers=2, clients=2, ort_threads=None, clip="demo")
    result = bench_service.run(args)
    # Before, its folder of rendered cards (and the 720p clip) stayed behind in /tmp after every run.
    assert scratch() - before == set()
    assert result["decisions"] == {"accept": 4}, result  # 2 warm-up (one per worker) + 2 timed
    assert result["media"].startswith("S3 bucket") and result["workers"] == 2
    assert result["latency_upload_to_decision_s"]["p95"] > 0
