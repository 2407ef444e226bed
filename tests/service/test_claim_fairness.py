"""Workers give each requester its turn (processing.claim): claimed oldest first, one integrator key that queued
300 videos at the peak put every pensioner who uploaded after it behind the whole batch (review: queue 2). A worker
now takes the oldest job of a requester with the fewest jobs in progress; a requester alone is served in order."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionState, utcnow
from service.certification.processing import claim
from tests.service import factories
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)

BATCH = 300


def _queue(ctx: ServiceContext, opener: str, n: int, start: dt.datetime) -> list[str]:
    """`n` sessions `opener` opened, queued one second apart from `start` (as a channel's uploads leave them)."""
    ids: list[str] = []
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        for i in range(n):
            at = start + dt.timedelta(seconds=i)
            s = factories.session_row(b.id, state=SessionState.QUEUED, created_at=at, queued_at=at)
            db.add(s)
            audit(db, opener, "session.create", s.id, {"channel": "api"})
            ids.append(s.id)
        db.commit()
    return ids


def test_a_pensioner_queued_behind_a_keys_batch_is_among_the_first_claimed(ctx: ServiceContext) -> None:
    start = utcnow() - dt.timedelta(hours=1)
    batch = _queue(ctx, "api:bankbatch", BATCH, start)
    (pensioner,) = _queue(ctx, "wechat:pension1", 1, start + dt.timedelta(seconds=BATCH))
    # Two workers, as the embedded default runs: the first takes the batch's oldest, the second the pensioner's.
    first, second = claim(ctx, None, "w1"), claim(ctx, None, "w2")
    assert first == batch[0]
    assert second == pensioner


def test_a_requester_alone_is_served_oldest_first(ctx: ServiceContext) -> None:
    start = utcnow() - dt.timedelta(hours=1)
    batch = _queue(ctx, "api:bankbatch", 3, start)
    assert [claim(ctx, None, f"w{i}") for i in range(4)] == [*batch, None]


def test_requesters_in_progress_alike_are_served_by_their_oldest_waiting_job(ctx: ServiceContext) -> None:
    """Among requesters with as many jobs in progress, the one waiting longest goes first: a later requester does
    not overtake an earlier one."""
    start = utcnow() - dt.timedelta(hours=1)
    a = _queue(ctx, "api:bankbatch", 3, start)
    b = _queue(ctx, "wechat:pension1", 2, start + dt.timedelta(minutes=1))
    c = _queue(ctx, "wechat:pension2", 1, start + dt.timedelta(minutes=2))
    claimed = [claim(ctx, None, f"w{i}") for i in range(6)]
    # a0 (nobody busy); b0 (b, c idle: b waited longer); c0; then each has one in progress: a1 (oldest), b1, a2.
    assert claimed == [a[0], b[0], c[0], a[1], b[1], a[2]]


def test_workers_claiming_at_once_take_each_job_once(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """Eight workers at once on PostgreSQL (real commits): the fair pick is a hint, the row's compare-and-set still
    gives each job to one worker, and none is left queued."""
    ctx = pg_ctx
    start = utcnow() - dt.timedelta(hours=1)
    jobs = _queue(ctx, "api:bankbatch", 40, start) + _queue(ctx, "wechat:pension1", 2, start + dt.timedelta(minutes=1))
    claimed: list[str] = []

    def work(name: str) -> None:
        while True:
            sid = claim(ctx, None, name)
            if sid is not None:
                claimed.append(sid)
            elif not _queued(ctx):
                return

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(jobs)


def _queued(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.count()).where(CertSession.state == SessionState.QUEUED)) or 0)
