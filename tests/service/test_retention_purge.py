"""Retention: every session past the retention period loses its media in one run (not one batch a day), also
through the daily storage upkeep that Celery beat runs; on a versioned bucket no earlier version survives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, CertSession, utcnow
from service.certification.retention import purge_media, storage_upkeep
from service.infra.storage import LocalEncryptedStorage
from service.infra.storage_s3 import S3EncryptedStorage
from tests.service import factories
from tests.service.servers import s3_media

PEOPLE = 7


@pytest.fixture(params=["local", "s3", "s3-versioned"])
def store_ctx(request: pytest.FixtureRequest, ctx: ServiceContext) -> Iterator[ServiceContext]:
    if request.param == "local":
        yield ctx
        return
    with s3_media(ctx, versioned=request.param == "s3-versioned") as bucket_ctx:
        yield bucket_ctx


def _decided_sessions(ctx: ServiceContext, n: int, decided: dt.datetime) -> list[tuple[str, list[str]]]:
    out = []
    with ctx.db() as db:
        for _ in range(n):
            b = factories.beneficiary(db, ctx.keyring)
            s = factories.session_row(b.id, state="decided", decision="accept", decided_at=decided)
            keys = [f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"]
            for key in keys:
                ctx.storage.put(key, b"media " + key.encode())
                ctx.storage.put(key, b"rewritten " + key.encode())  # a retried upload: a second version
            s.id_card_key, s.video_key = keys
            db.add(s)
            out.append((s.id, keys))
    return out


def test_every_session_past_retention_is_purged_in_one_run(store_ctx: ServiceContext) -> None:
    ctx = store_ctx
    days = ctx.settings.storage.retention_days
    now = utcnow()
    old = _decided_sessions(ctx, PEOPLE, now - dt.timedelta(days=days + 3))
    recent = _decided_sessions(ctx, 1, now - dt.timedelta(days=days - 3))
    with ctx.db() as db:
        audits_before = len(db.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purge")).all())
    purged = purge_media(ctx, now, batch=3)  # three transactions of at most three sessions
    assert purged >= PEOPLE  # the shared database may hold other old sessions: they go too
    for sid, keys in old:
        assert not any(ctx.storage.exists(k) for k in keys)
        with ctx.db() as db:
            row = db.get(CertSession, sid)
            assert row is not None and row.media_purged_at is not None
    assert all(ctx.storage.exists(k) for k in recent[0][1])  # still within its retention period
    with ctx.db() as db:
        # In the order written (PostgreSQL returns rows in any order): the slice below is this run's entries.
        audits = db.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.purge").order_by(AuditEntry.id)
        ).all()
        assert len(audits) - audits_before >= 3 and all(a.detail["sessions"] <= 3 for a in audits[audits_before:])
    assert purge_media(ctx, now, batch=3) == 0  # idempotent
    if isinstance(ctx.storage, S3EncryptedStorage):
        raw = ctx.storage._client
        listed = raw.list_object_versions(Bucket="media", Prefix="p/sessions/")
        gone = {k for _, keys in old for k in keys}
        left = [v["Key"] for v in listed.get("Versions", []) + listed.get("DeleteMarkers", [])]
        assert not [k for k in left if k.removeprefix("p/").removesuffix(".enc") in gone], left


def test_the_daily_storage_upkeep_purges_too(store_ctx: ServiceContext) -> None:
    """Celery beat runs only the upkeep: where nobody runs the daily cycle, media must still go."""
    ctx = store_ctx
    now = utcnow()
    ((sid, keys),) = _decided_sessions(ctx, 1, now - dt.timedelta(days=ctx.settings.storage.retention_days + 1))
    done = storage_upkeep(ctx)
    assert done["media_purged"] >= 1 and not any(ctx.storage.exists(k) for k in keys)
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and row.media_purged_at is not None


def test_one_object_that_cannot_be_deleted_holds_up_neither_the_others_nor_the_upkeep(ctx: ServiceContext) -> None:
    """One session's media the store refuses to delete (here a folder where its video should be; on a bucket an
    object under a legal hold, a permission taken away) is left for the next run, unmarked: the purge of every
    other session goes on, and so does the rest of the daily upkeep (orphans, templates, the audit anchor). It
    used to end the run at that session, every day, so nothing after it was ever purged."""
    assert isinstance(ctx.storage, LocalEncryptedStorage)
    now = utcnow()
    sessions = _decided_sessions(ctx, 4, now - dt.timedelta(days=ctx.settings.storage.retention_days + 2))
    stuck_id, (_, stuck_video) = sessions[1][0], sessions[1][1]
    blocker = ctx.storage.root / f"{stuck_video}.enc"
    blocker.unlink()
    blocker.mkdir()
    (blocker / "x").write_bytes(b"")
    try:
        done = storage_upkeep(ctx, now)  # returns: the orphan sweep, the templates and the anchor ran too
        assert done["media_purged"] >= 3
        for sid, keys in sessions:
            with ctx.db() as db:
                row = db.get(CertSession, sid)
                assert row is not None
                assert (row.media_purged_at is None) == (sid == stuck_id)
            if sid != stuck_id:
                assert not any(ctx.storage.exists(k) for k in keys)
    finally:
        (blocker / "x").unlink()
        blocker.rmdir()
    assert purge_media(ctx, now) >= 1  # the next run takes it
    with ctx.db() as db:
        row = db.get(CertSession, stuck_id)
        assert row is not None and row.media_purged_at is not None


def test_the_daily_purge_deletes_what_would_pass_retention_before_the_next_run(ctx: ServiceContext) -> None:
    """The citizens' pages promise 照片和视频在认证完成后 30 天内删除 (RETENTION_DAYS), and the purge runs once a day
    (the daily run; Celery beat's storage upkeep). Before, a run took only what had passed the period: a session
    decided just after a run kept its media until the run a day later, up to 31 days. Now each run takes what would
    pass the period before the next run (`PURGE_AHEAD`): a session 20 hours short of it goes; one 3 days short stays."""
    assert isinstance(ctx.storage, LocalEncryptedStorage)
    days, now = ctx.settings.storage.retention_days, utcnow()
    ((soon, soon_keys),) = _decided_sessions(ctx, 1, now - dt.timedelta(days=days) + dt.timedelta(hours=20))
    ((later, later_keys),) = _decided_sessions(ctx, 1, now - dt.timedelta(days=days - 3))
    storage_upkeep(ctx, now)
    assert not any(ctx.storage.exists(k) for k in soon_keys)
    assert all(ctx.storage.exists(k) for k in later_keys)
    with ctx.db() as db:
        purged = {sid: (row.media_purged_at is not None) for sid in (soon, later) if (row := db.get(CertSession, sid))}
    assert purged == {soon: True, later: False}
    # The next day's run (within PURGE_AHEAD) takes the other before it passes the period.
    storage_upkeep(ctx, now + dt.timedelta(days=2, hours=1))
    assert not any(ctx.storage.exists(k) for k in later_keys)
