"""A job put back after a transient failure waits a back-off before it is claimed again, and a dependency's
outage (the object store unreachable) spends none of the job's attempts: an outage of any length never turns an
acknowledged certification into a failure. A job whose media are really missing still goes to staff after
job_max_attempts (found when the S3 restart fault test lost a certification in 1.6 s: three instant retries)."""

from __future__ import annotations

import os
import time
from typing import Any, cast

from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import CertSession, Channel, SessionState
from service.certification.processing import claim, process
from service.certification.sessions import create_session
from service.infra.storage_s3 import S3EncryptedStorage, S3Location, S3Options
from tests.service import factories
from tests.service.servers import free_port


class NeverCalled:
    def run(self, *_args: Any) -> Any:
        raise AssertionError("the media could not be read: the pipeline must not run")


def queued_job(ctx: ServiceContext) -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        s.state = SessionState.QUEUED
        return s.id


def row(ctx: ServiceContext, sid: str) -> tuple[str, int]:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        return s.state, s.job_attempts


def test_an_unreachable_store_is_retried_after_a_back_off_without_spending_attempts(ctx: ServiceContext) -> None:
    dead = S3Options(f"http://127.0.0.1:{free_port()}", "us-east-1", "k", "s", max_attempts=1, connect_timeout_s=1)
    ctx.storage = S3EncryptedStorage(S3Location("media", ""), os.urandom(32), dead)
    ctx.settings.workers.job_retry_backoff_s = 1.0
    sid = queued_job(ctx)
    assert claim(ctx, sid, "w1") == sid
    process(ctx, cast(Certifier, NeverCalled()), sid, "w1")
    assert row(ctx, sid) == ("queued", 0)  # put back, the attempt given back
    assert claim(ctx, sid, "w1") is None and claim(ctx, None, "w2") is None  # waiting out the back-off
    time.sleep(1.1)
    ctx.settings.workers.job_retry_backoff_s = 0
    for _ in range(ctx.settings.workers.job_max_attempts + 2):  # more outages than attempts: still not a failure
        assert claim(ctx, sid, "w1") == sid
        process(ctx, cast(Certifier, NeverCalled()), sid, "w1")
    assert row(ctx, sid) == ("queued", 0)


def test_media_really_missing_go_to_staff_after_the_attempts(ctx: ServiceContext) -> None:
    ctx.settings.workers.job_retry_backoff_s = 0
    sid = queued_job(ctx)  # the local store has no such objects: StorageError "no object", not an outage
    for attempt in range(1, ctx.settings.workers.job_max_attempts + 1):
        assert claim(ctx, sid, "w1") == sid
        process(ctx, cast(Certifier, NeverCalled()), sid, "w1")
        assert row(ctx, sid) == ("failed" if attempt == ctx.settings.workers.job_max_attempts else "queued", attempt)
