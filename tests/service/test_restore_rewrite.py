"""A restore's kept keys lost for good, and the chunk folders a failed recording left (docs/security.md Part BA).

A chunk of a restore's kept keys that no earlier version brings back kept `verify-audit` failing and the orphan
sweep of session media stopped for ever: nothing could record the keys anew. `pension-cert console rewrite-kept`
now writes them again, on the safe side (every session object no row refers to now is kept under that restore's
window, less those a later restore names), with the loss in the record and in the audit log. A failed
`record-restore` run's chunk folder is removed by the run that records the same restore point."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.certification import audit_anchor, restore_record
from service.certification.audit_anchor import read_restores
from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.certification.restore_record import KEPT_PREFIX, kept_keys, kept_problem, record_restore
from service.certification.retention import sweep_orphans
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.storage import StorageError
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)
from tests.service.test_restore import _var_dir_with_a_kept_chunk


def _videos(ctx: ServiceContext, n: int) -> list[str]:
    keys = sorted(f"sessions/{uuid.uuid4()}/video" for _ in range(n))
    for key in keys:
        ctx.storage.put(key, b"the video of a certification the restore lost")
    return keys


def _folders(ctx: ServiceContext) -> set[str]:
    return {o.key[len(KEPT_PREFIX) :].split("/")[0] for o in ctx.storage.list(KEPT_PREFIX)}


def _later(monkeypatch: pytest.MonkeyPatch, **delta: float) -> dt.datetime:
    """The clock the records are named by, moved on (two runs in the same second share a name)."""
    moved = utcnow() + dt.timedelta(**delta)
    monkeypatch.setattr(audit_anchor, "utcnow", lambda: moved)
    return moved


def _records_refused(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store refuses every write of a restore's record (audit/restores/); the kept keys' chunks are written."""
    put = type(ctx.storage).put

    def refused(self: object, key: str, data: bytes) -> None:
        if key.startswith("audit/restores/"):
            raise StorageError(f"cannot write {key!r}: Permission denied")
        put(self, key, data)  # type: ignore[arg-type]

    monkeypatch.setattr(type(ctx.storage), "put", refused)


def test_a_chunk_lost_for_good_is_rewritten_keeping_every_unreferenced_object(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chunk of three gone with no earlier version: verify-audit failed and the sweep deleted no session media
    for ever. The rewrite keeps the surviving keys and every object no row refers to now (the lost chunk's among
    them), under the restore's own window; the record and its history say which chunk was lost."""
    from service.certification.restore_rewrite import rewrite_kept

    monkeypatch.setattr(restore_record, "CHUNK_KEYS", 2)
    lost = _videos(ctx, 5)
    with ctx.db() as db:
        done = record_restore(db, ctx.storage, "ops", "restored the dump of 2026-12-05").restore
    assert done.kept_chunks == 3
    ctx.storage.delete(f"{KEPT_PREFIX}{done.name}/000001")  # lost for good: the bucket kept no earlier version
    (after,) = _videos(ctx, 1)  # an upload that failed after the restore: no restore names it
    assert kept_problem(ctx.storage, read_restores(ctx.storage))
    _later(monkeypatch, minutes=5)
    with ctx.db() as db:
        rewritten = rewrite_kept(db, ctx.storage, done.name, "ops", "chunk 1 lost with the old bucket")
    assert rewritten.state == "rewritten" and rewritten.rewrite.added == 3  # the lost chunk's two and the later upload
    (r,) = read_restores(ctx.storage)
    assert kept_problem(ctx.storage, [r]) == "" and r.at == done.at and r.name == done.name
    assert kept_keys(ctx.storage, r) == sorted([*lost, after]) and r.kept_count == 6
    (w,) = r.rewrites
    assert (w.lost_chunks, w.kept_before, w.kept_after, w.from_dir) == ((1,), 5, 6, done.name)
    assert w.by == "ops" and "chunk 1" in w.reason
    assert {done.name, r.kept_dir} == _folders(ctx)  # the damaged folder stays, as it was found
    grace = utcnow() + dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s + 60)
    assert sweep_orphans(ctx, now=grace) == 0 and all(ctx.storage.exists(k) for k in [*lost, after])
    past = utcnow() + dt.timedelta(days=ctx.settings.storage.retention_days, hours=1)  # the restore's window, not
    assert sweep_orphans(ctx, now=past) == 6  # restarted by the rewrite


def test_a_rewrite_leaves_a_later_restores_keys_their_own_window(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep keeps a key for the window of the oldest restore naming it: the first restore's rewrite must not
    take in the media a later restore lost (they would go a window early). Refused while the later one's own
    kept keys do not read (rewrite that one first)."""
    from service.certification.restore_rewrite import REWRITE_ACTION, RewriteRefusedError, rewrite_kept
    from service.features.console.audit_chain import record

    (first_lost,) = _videos(ctx, 1)
    with ctx.db() as db:
        first = record_restore(db, ctx.storage, "ops", "the first restore").restore
    (second_lost,) = _videos(ctx, 1)
    _later(monkeypatch, days=3)
    with ctx.db() as db:
        second = record_restore(db, ctx.storage, "ops", "the second restore").restore
    assert second.name != first.name and second_lost in kept_keys(ctx.storage, second)
    ctx.storage.delete(f"{KEPT_PREFIX}{first.name}/000000")
    ctx.storage.delete(f"{KEPT_PREFIX}{second.name}/000000")
    _later(monkeypatch, days=3, minutes=5)
    with ctx.db() as db, pytest.raises(RewriteRefusedError, match=second.name):
        rewrite_kept(db, ctx.storage, first.name, "ops", "the first restore's chunk is lost")
    with ctx.db() as db:
        assert rewrite_kept(db, ctx.storage, second.name, "ops", "lost").state == "rewritten"
        assert rewrite_kept(db, ctx.storage, first.name, "ops", "lost").state == "rewritten"
    r1, r2 = read_restores(ctx.storage)
    assert kept_keys(ctx.storage, r2) == sorted([first_lost, second_lost])
    assert kept_keys(ctx.storage, r1) == []  # both are the second's: kept for its window, the later one
    with ctx.db() as db:  # no audit entry names that rewrite (the command writes it): a rerun completes it
        again = rewrite_kept(db, ctx.storage, first.name, "ops", "again")
        assert again.state == "completed" and again.rewrite == r1.rewrites[-1]
        record(db, "cli", REWRITE_ACTION, "audit", {"record": first.name, "at": again.rewrite.at})
    with ctx.db() as db, pytest.raises(RewriteRefusedError, match="read whole"):
        rewrite_kept(db, ctx.storage, first.name, "ops", "again")
    with ctx.db() as db, pytest.raises(RewriteRefusedError, match="no restore"):
        rewrite_kept(db, ctx.storage, "2026-01-01T000000Z-000000000001", "ops", "a name mistyped")


def test_rewrite_kept_through_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command an operator runs: verify-audit names the restore, rewrite-kept writes its keys again and an
    audit entry naming who and why, verify-audit passes again and lists the rewrite; a second run is refused."""
    import service.schema
    from service.adapters.cli import main
    from service.infra.config import Settings

    var_dir, chunk = _var_dir_with_a_kept_chunk(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["console", "verify-audit"]) == 1
    name = chunk[len(KEPT_PREFIX) :].split("/")[0]
    assert name in json.loads(capsys.readouterr().out)["problem"]
    with pytest.raises(SystemExit) as usage:
        main(["console", "rewrite-kept", "--record", name])
    assert usage.value.code == 2  # a reason is required
    capsys.readouterr()
    assert main(["console", "rewrite-kept", "--record", name, "--reason", "桶迁移时丢失了分块"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["record"] == name and out["lost_chunks"] == [0] and out["kept"] == 1, out
    assert main(["console", "verify-audit"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["restores"]
    assert listed["record"] == name and listed["kept_rewrites"][0]["lost_chunks"] == [0], listed
    assert main(["console", "rewrite-kept", "--record", name, "--reason", "again"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pension-cert: REWRITE_REFUSED: ") and len(err.strip().splitlines()) == 1, err
    ctx = ServiceContext(Settings(var_dir=var_dir), schema=service.schema.metadata)
    try:
        with ctx.db() as db:
            q = select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "audit.restore_kept_rewritten")
            (entry,) = db.scalars(q)
        assert entry.detail["record"] == name and entry.detail["lost_chunks"] == [0]
        assert entry.detail["reason"] == "桶迁移时丢失了分块" and entry.detail["os_user"]
    finally:
        ctx.engine.dispose()


def test_a_failed_runs_chunk_folder_is_removed_by_the_run_that_records_the_restore(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that died after writing the kept keys' chunks, before the record, left a folder no record names, for
    ever. The rerun that records the same restore point removes it; a folder of another restore point, or one a
    record names, stays."""
    _videos(ctx, 1)
    _records_refused(ctx, monkeypatch)
    with ctx.db() as db, pytest.raises(StorageError):
        record_restore(db, ctx.storage, "ops", "restored the dump")
    monkeypatch.undo()
    (leftover,) = _folders(ctx)
    other = "2026-01-01T000000Z-000000000099"  # another restore point's: not provably this restore's
    ctx.storage.put(f"{KEPT_PREFIX}{other}/000000", b"x")
    _later(monkeypatch, minutes=1)
    with ctx.db() as db:
        done = record_restore(db, ctx.storage, "ops", "restored the dump")
    assert done.state == "recorded" and done.restore.name != leftover
    assert _folders(ctx) == {done.restore.name, other}
    assert kept_problem(ctx.storage, read_restores(ctx.storage)) == ""


def test_a_failed_rewrites_chunks_are_removed_by_the_rewrite_that_completes(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite whose record the store refused leaves its new chunk folder, named by no record: the rewrite run
    again removes it, and keeps the damaged folder the record's history names."""
    from service.certification.restore_rewrite import rewrite_kept

    _videos(ctx, 1)
    with ctx.db() as db:
        done = record_restore(db, ctx.storage, "ops", "restored the dump").restore
    ctx.storage.delete(f"{KEPT_PREFIX}{done.name}/000000")
    ctx.storage.put(f"{KEPT_PREFIX}{done.name}/000001", b"a stray chunk in the damaged folder")
    _records_refused(ctx, monkeypatch)
    _later(monkeypatch, minutes=1)
    with ctx.db() as db, pytest.raises(StorageError):
        rewrite_kept(db, ctx.storage, done.name, "ops", "lost")
    (failed,) = _folders(ctx) - {done.name}
    monkeypatch.undo()
    _later(monkeypatch, minutes=2)
    with ctx.db() as db:
        again = rewrite_kept(db, ctx.storage, done.name, "ops", "lost")
    assert again.state == "rewritten" and failed != again.restore.kept_dir
    assert _folders(ctx) == {done.name, again.restore.kept_dir}
    assert ctx.storage.exists(f"{KEPT_PREFIX}{done.name}/000001")  # the damaged folder, as it was found


def test_a_rewrite_before_a_later_restore_is_recorded_leaves_that_restores_media_its_window(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order the messages prescribe: a second restore, whose recording refuses while the first one's chunk
    does not read, so the operator rewrites the first one's keys, then records the second. The rewrite took every
    unreferenced object (the second restore's lost media among them) under the first restore's window, and the sweep
    keeps a key for the oldest restore naming it: the only proof that someone certified after the second dump went
    six days after the second restore. A rewrite's guesses now claim no window a restore named the key for."""
    from service.certification.restore_rewrite import REWRITE_ACTION, rewrite_kept
    from service.features.console.audit_chain import record

    (first_lost,) = _videos(ctx, 1)
    _later(monkeypatch, days=-25)
    with ctx.db() as db:
        first = record_restore(db, ctx.storage, "ops", "the first restore").restore
        record(db, "cli", restore_record.AUDIT_ACTION, "audit", {"through": first.seq, "record": first.name})
    monkeypatch.undo()
    ctx.storage.delete(f"{KEPT_PREFIX}{first.name}/000000")  # lost for good
    (second_lost,) = _videos(ctx, 1)  # a certification after the second dump: its media are all that is left
    with ctx.db() as db, pytest.raises(restore_record.KeptUnreadableError):
        record_restore(db, ctx.storage, "ops", "the second restore")
    with ctx.db() as db:
        w = rewrite_kept(db, ctx.storage, first.name, "ops", "chunk lost")
        record(db, "cli", REWRITE_ACTION, "audit", {"record": first.name, "at": w.rewrite.at})
    assert w.rewrite.added == 2
    with ctx.db() as db:
        second = record_restore(db, ctx.storage, "ops", "the second restore")
    assert second.state == "recorded" and second_lost in kept_keys(ctx.storage, second.restore)
    assert sweep_orphans(ctx, now=utcnow() + dt.timedelta(days=6)) == 0
    assert ctx.storage.exists(second_lost) and ctx.storage.exists(first_lost)
    gone = utcnow() + dt.timedelta(days=ctx.settings.storage.retention_days, hours=1)  # the second's window
    assert sweep_orphans(ctx, now=gone) == 2


def test_two_rewrites_at_once_the_later_record_is_refused(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `rewrite-kept` runs of one restore at once (two terminals): the second removed the first's chunk folder
    as a failed run's, and the first then recorded that deleted folder, the second's rewrite lost from the
    history. The run whose record changed under it now refuses and removes its own folder."""
    from service.certification import restore_rewrite

    _videos(ctx, 1)
    with ctx.db() as db:
        done = record_restore(db, ctx.storage, "ops", "restored the dump").restore
    ctx.storage.delete(f"{KEPT_PREFIX}{done.name}/000000")
    put, ran = type(ctx.storage).put, list[str]()

    def other_run_meanwhile(self: object, key: str, data: bytes) -> None:
        put(self, key, data)  # type: ignore[arg-type]
        if key.startswith(f"{KEPT_PREFIX}{done.name}.r") and not ran:
            ran.append(key)
            _later(monkeypatch, minutes=2)  # the other terminal's run, whole, while this one writes its chunks
            with ctx.db() as db2:
                restore_rewrite.rewrite_kept(db2, ctx.storage, done.name, "ops2", "the other terminal")

    monkeypatch.setattr(type(ctx.storage), "put", other_run_meanwhile)
    _later(monkeypatch, minutes=1)
    with ctx.db() as db, pytest.raises(restore_rewrite.RewriteRefusedError, match="another"):
        restore_rewrite.rewrite_kept(db, ctx.storage, done.name, "ops1", "this terminal")
    (r,) = read_restores(ctx.storage)
    assert [w.reason for w in r.rewrites] == ["the other terminal"]
    assert kept_problem(ctx.storage, [r]) == "" and _folders(ctx) == {r.kept_dir}  # the damaged one held one chunk


def test_a_rerun_that_completes_a_rewrite_audits_the_rewrites_own_reason_and_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rewrite whose audit entry was not written (the commit failed) is completed by a rerun: the entry named
    the rerun's --reason and OS user, not those of the rewrite the record holds."""
    import service.schema
    from service.adapters.cli import main
    from service.certification.restore_rewrite import rewrite_kept
    from service.infra.config import Settings

    var_dir, chunk = _var_dir_with_a_kept_chunk(tmp_path, monkeypatch)
    name = chunk[len(KEPT_PREFIX) :].split("/")[0]
    ctx = ServiceContext(Settings(var_dir=var_dir), schema=service.schema.metadata)
    try:
        with ctx.db() as db:  # the rewrite itself, its audit entry never committed
            rewrite_kept(db, ctx.storage, name, "night-operator", "桶迁移时丢失了分块")
        capsys.readouterr()
        assert main(["console", "rewrite-kept", "--record", name, "--reason", "再运行一次"]) == 0
        assert json.loads(capsys.readouterr().out)["completed"] is True
        with ctx.db() as db:
            q = select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "audit.restore_kept_rewritten")
            (entry,) = db.scalars(q)
        assert (entry.detail["reason"], entry.detail["os_user"]) == ("桶迁移时丢失了分块", "night-operator")
    finally:
        ctx.engine.dispose()


def test_two_rewrites_in_the_same_instant_one_waits_for_the_other(
    pg_ctx: ServiceContext,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two `rewrite-kept` runs of one restore whose records were written in the same instant (both past the
    re-read before either wrote) both went through: one removed the other's folder, or took its rewrite out of the
    history, and `verify-audit` failed. The runs are now exclusive (a lock held to the commit of the audit entry):
    the second waits for the first, then finds the keys whole and rewrites nothing (PostgreSQL: each run commits
    on its own connection; SQLite's BEGIN IMMEDIATE serialises them)."""
    import contextlib
    import threading

    from service.certification import restore_rewrite
    from service.features.console.audit_chain import record

    ctx = pg_ctx
    _videos(ctx, 1)
    with ctx.db() as db:
        done = record_restore(db, ctx.storage, "ops", "restored the dump").restore
    ctx.storage.delete(f"{KEPT_PREFIX}{done.name}/000000")
    both = threading.Barrier(2, timeout=3)
    check = restore_rewrite._refuse_if_rewritten_meanwhile

    def same_instant(storage: object, r: object, folder: str) -> None:
        check(storage, r, folder)  # type: ignore[arg-type]
        # The other run past its own re-read too; or (broken by the timeout) it waits for this one to commit.
        with contextlib.suppress(threading.BrokenBarrierError):
            both.wait()

    monkeypatch.setattr(restore_rewrite, "_refuse_if_rewritten_meanwhile", same_instant)
    outcomes: list[str] = []

    def run(who: str) -> None:
        try:
            with ctx.db() as db:
                w = restore_rewrite.rewrite_kept(db, ctx.storage, done.name, who, f"{who}'s terminal").rewrite
                record(db, "cli", restore_rewrite.REWRITE_ACTION, "audit", {"record": done.name, "at": w.at})
            outcomes.append("rewritten")
        except restore_rewrite.RewriteRefusedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(who,), daemon=True) for who in ("ops1", "ops2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["refused", "rewritten"]
    (r,) = read_restores(ctx.storage)
    assert len(r.rewrites) == 1 and kept_problem(ctx.storage, [r]) == "" and _folders(ctx) == {r.kept_dir}


def test_record_restore_over_an_earlier_restores_lost_chunk_names_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`record-restore` refused while an earlier restore's chunk was lost and said only "put back the object, or
    the key that sealed it": with the chunk lost for good nothing said what to do. It now names the command, whole,
    exit 1 `STORAGE_UNREADABLE`, nothing recorded; the command it names then mends it and the recording goes on."""
    import shlex

    from service.adapters.cli import main

    _var_dir, chunk = _var_dir_with_a_kept_chunk(tmp_path, monkeypatch)
    name = chunk[len(KEPT_PREFIX) :].split("/")[0]
    capsys.readouterr()
    assert main(["console", "record-restore", "--reason", "the second restore"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pension-cert: STORAGE_UNREADABLE: ") and len(err.strip().splitlines()) == 1, err
    assert "nothing recorded" in err, err
    told = f'pension-cert console rewrite-kept --record {name} --reason "…"'
    assert told in err and "then run record-restore again" in err, err
    argv = [*shlex.split(told)[1:-1], "桶里没有旧版本"]
    assert main(argv) == 0
    assert main(["console", "record-restore", "--reason", "the second restore"]) == 0
    assert main(["console", "verify-audit"]) == 0


def _deny_version_deletes_under_audit(storage: Any) -> list[str]:
    """The bucket policy docs/operations.md advises ("Audit log anchors"): no object version under `audit/` may be
    deleted by the service's credentials (AccessDenied, as S3 answers). The keys refused are listed."""
    from botocore.exceptions import ClientError

    refused: list[str] = []

    def policy(params: dict[str, Any], **_: Any) -> None:
        if params.get("VersionId") and "/audit/" in f"/{params['Key']}":
            refused.append(str(params["Key"]))
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "DeleteObject")

    storage._client.meta.events.register("provide-client-params.s3.DeleteObject", policy)
    return refused


def test_on_the_advised_bucket_a_failed_runs_folder_goes_without_a_warning(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On the recommended S3 set-up (versioned, `s3:DeleteObjectVersion` denied under `audit/restore-kept/*`) the
    removal of a failed run's chunk folder deleted version by version: refused on every run, a warning each time,
    the folder left. It now only hides the folder (a delete marker: the versions stay, as the policy wants): gone
    from the listing, no warning, and the next run finds nothing to remove."""
    from tests.service.servers import s3_media

    with s3_media(ctx, versioned=True) as bucket:
        refused = _deny_version_deletes_under_audit(bucket.storage)
        _videos(bucket, 1)
        _records_refused(bucket, monkeypatch)
        with bucket.db() as db, pytest.raises(StorageError):
            record_restore(db, bucket.storage, "ops", "restored the dump")
        monkeypatch.undo()
        (leftover,) = _folders(bucket)
        _later(monkeypatch, minutes=1)
        caplog.set_level(logging.INFO, logger=restore_record.__name__)
        with bucket.db() as db:
            done = record_restore(db, bucket.storage, "ops", "restored the dump")
        assert _folders(bucket) == {done.restore.name} and leftover != done.restore.name
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "stay under" in r.getMessage()]
        assert refused == [] and kept_problem(bucket.storage, read_restores(bucket.storage)) == ""


def test_on_the_advised_bucket_a_restore_to_an_empty_log_records_and_the_head_is_only_hidden(
    ctx: ServiceContext,
) -> None:
    """A dump restored from before the first staff entry: the head (`audit/head`) names an entry the log lost, and
    recording the restore takes it away. It was deleted version by version, which the advised policy refuses under
    `audit/`: `record-restore` failed with STORAGE_FAILED on every run, the restore could never be recorded and
    verify-audit kept failing. The head is now only hidden (a delete marker; its versions stay, as the policy wants)."""
    from sqlalchemy import delete

    from tests.service.servers import s3_media

    with s3_media(ctx, versioned=True) as bucket:
        refused = _deny_version_deletes_under_audit(bucket.storage)
        pilot = audit_anchor.Anchor(3, "ab" * 32, "2026-12-01T00:00:00Z")
        bucket.storage.put(audit_anchor.HEAD_KEY, audit_anchor.encode_anchor(pilot))
        with bucket.db() as db:
            db.execute(delete(ConsoleAuditEntry))  # the dump restored: no staff entry yet
        with bucket.db() as db:
            done = record_restore(db, bucket.storage, "ops", "restored the dump")
        assert refused == [] and done.restore.seq == 0 and pilot in done.restore.lost
        with bucket.db() as db:
            assert audit_anchor.check_anchors(db, bucket.storage).ok
