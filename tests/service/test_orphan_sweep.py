"""Orphaned media (issue 19): an object written whose row never committed, or left behind by a session that no
longer points to it, is deleted by the daily run after a grace period; what a row points to, and a young object
(an upload between its write and its commit), are kept. On the local folder and on an S3 bucket alike."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from service.certification.context import ServiceContext
from service.certification.models import CertSession, Channel, utcnow
from service.certification.retention import storage_upkeep, sweep_orphans
from service.certification.sessions import create_session
from service.infra.storage import LocalEncryptedStorage
from tests.service import factories
from tests.service.servers import s3_media


@pytest.fixture(params=["local", "s3"])
def store_ctx(request: pytest.FixtureRequest, ctx: ServiceContext) -> Iterator[ServiceContext]:
    if request.param == "local":
        yield ctx
        return
    with s3_media(ctx) as bucket_ctx:
        yield bucket_ctx


def test_orphans_older_than_the_grace_are_removed_and_referenced_media_kept(store_ctx: ServiceContext) -> None:
    ctx = store_ctx
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        card = f"sessions/{s.id}/id_card"
        ctx.storage.put(card, b"card")
        s.id_card_key = card
        session_id = s.id
    left_behind = f"sessions/{session_id}/video"  # written, but the row never took it (a failed commit)
    no_row = f"sessions/{uuid.uuid4()}/video"  # a session whose row never committed at all
    for key in (left_behind, no_row):
        ctx.storage.put(key, b"orphan")
    for key in (card, left_behind, no_row):
        factories.aged_media(ctx, key, 0)  # written just now, by the clock the sweep reads
    assert sweep_orphans(ctx) == 0  # all younger than the grace: maybe an upload about to commit
    later = utcnow() + dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s + 60)
    assert sweep_orphans(ctx, now=later) == 2
    assert ctx.storage.exists(card)
    assert not ctx.storage.exists(left_behind) and not ctx.storage.exists(no_row)
    assert sweep_orphans(ctx, now=later) == 0  # idempotent
    # A purged session's media are not "referenced" any more: a copy that survived the purge goes too.
    with ctx.db() as db:
        row = db.get(CertSession, session_id)
        assert row is not None
        row.media_purged_at = utcnow()
    assert sweep_orphans(ctx, now=later) == 1 and not ctx.storage.exists(card)


def test_a_write_killed_midway_leaves_nothing_behind_after_the_grace(ctx: ServiceContext) -> None:
    """A process killed between its temp file and the rename leaves ``*.tmp`` on the folder: the daily sweep
    removes it once older than the grace (a write in flight now is younger and stays)."""
    assert isinstance(ctx.storage, LocalEncryptedStorage)
    root = ctx.storage.root / "sessions" / str(uuid.uuid4())
    root.mkdir(parents=True)
    killed, in_flight = root / "video.enc.4242.1.tmp", root / "id_card.enc.4243.1.tmp"
    for path in (killed, in_flight):
        path.write_bytes(b"sealed bytes of a write that never finished")
    factories.aged(killed, 2 * 3600)
    factories.aged(in_flight, 0)
    assert sweep_orphans(ctx) >= 1
    assert not killed.exists() and in_flight.exists()


def test_an_orphan_that_cannot_be_deleted_holds_up_neither_the_others_nor_the_upkeep(ctx: ServiceContext) -> None:
    """An object the store refuses to delete (a folder where a blob should be; on a bucket, one under a legal
    hold) is left for the next run: the other orphans go, and the daily upkeep goes on to the templates of the
    deceased and the audit anchor. It used to end the upkeep there, every day."""
    assert isinstance(ctx.storage, LocalEncryptedStorage)
    stuck, other = f"sessions/{uuid.uuid4()}/video", f"sessions/{uuid.uuid4()}/video"
    ctx.storage.put(other, b"orphan")
    blocker = ctx.storage.root / f"{stuck}.enc"
    blocker.mkdir(parents=True)
    (blocker / "x").write_bytes(b"")
    past = time.time() - ctx.settings.storage.orphan_grace_s - 60  # both older than the grace
    for path in (blocker, ctx.storage.root / f"{other}.enc"):
        os.utime(path, (past, past))
    try:
        done = storage_upkeep(ctx)
        assert done["media_orphans_removed"] == 1 and not ctx.storage.exists(other)
    finally:
        (blocker / "x").unlink()
        blocker.rmdir()
