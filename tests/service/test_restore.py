"""Disaster recovery: the database restored from an older dump while the media store is current (docs/operations.md,
"Restoring from a backup"; docs/security.md Part AN).

The console audit chain's anchors and head live in the media store, which is not backed up: after a restore they
name entries the restored database never had, and `verify-audit` reports what a deleted tail looks like. A restore
is recorded (with the media key, as an anchor) naming the lost entries; verification then passes and lists the
restore, and still fails on any entry of the restored range that differs from its anchor."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from service.certification import audit_anchor
from service.certification.audit_anchor import (
    RestoreRefusedError,
    check_anchors,
    read_anchors,
    read_head,
    read_restores,
    write_anchor,
)
from service.certification.context import ServiceContext
from service.certification.models import CycleEvent, utcnow
from service.certification.registry import (
    EXPORT_CLOCK_SKEW,
    EXPORTED_KEY,
    advance_event_ids,
    exported_high,
    note_exported,
    reused_event_ids,
)
from service.certification.restore_record import AUDIT_ACTION, kept_keys, record_restore
from service.certification.retention import sweep_orphans
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.audit_chain import record, verify_chain
from service.infra.storage import LocalEncryptedStorage
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.test_console_cli import run
from tests.service.test_audit_anchor import rewrite_whole_chain


def restore_to(db: Session, seq: int) -> None:
    """What a restore from a dump taken when the log ended at `seq` leaves in the database."""
    db.execute(delete(ConsoleAuditEntry).where(ConsoleAuditEntry.seq > seq))
    db.flush()


def entries(ctx: ServiceContext, n: int, tag: str = "before") -> None:
    for i in range(n):
        with ctx.db() as db:  # one committed transaction each: each records the head in the store
            record(db, "staff:li", "case.view", f"s-{i}", {"when": tag})


def test_a_restore_reads_as_a_deleted_tail_until_it_is_recorded(ctx: ServiceContext) -> None:
    entries(ctx, 2)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)  # last night's run; the dump is taken now (2 entries)
    entries(ctx, 3)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)  # the next night's: anchored #5; then the disk fails
        restore_to(db, 2)
        assert verify_chain(db).ok
        check = check_anchors(db, ctx.storage)
        assert not check.ok and check.seq == 5 and "gone" in check.problem  # a restore looks like a cut tail

        done = record_restore(db, ctx.storage, "ops", "restored the dump of 2026-12-05 after a disk failure").restore
        assert done.seq == 2 and sorted(a.seq for a in done.lost) == [5, 5]  # the anchor and the head of #5
        head = read_head(ctx.storage)
        assert head is not None and head.seq == 2  # set back to the restored log's own
        check = check_anchors(db, ctx.storage)
        assert check.ok and [r.reason for r in check.restores] == [done.reason], check
    entries(ctx, 3, "after")  # the service reopens: a new #3 to #5; the new #5 is anchored beside the lost one
    with ctx.db() as db:
        assert write_anchor(db, ctx.storage) is not None
        assert sorted(a.seq for a in read_anchors(ctx.storage)) == [2, 5, 5]
        assert check_anchors(db, ctx.storage).ok
        restore_to(db, 1)  # a second restore, from an older dump: it loses the first one's point (#2) too
        second = record_restore(db, ctx.storage, "ops", "the dump of 2026-12-05 was damaged: the one before").restore
        assert sorted(a.seq for a in second.lost) == [2, 2, 5, 5]  # anchor and restore point #2, new #5 and head
        check = check_anchors(db, ctx.storage)
        assert check.ok and len(check.restores) == 2, check


def test_an_entry_changed_after_a_recorded_restore_still_fails(ctx: ServiceContext) -> None:
    entries(ctx, 2)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)
    entries(ctx, 1)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)
        restore_to(db, 2)
        record_restore(db, ctx.storage, "ops", "restore")
    entries(ctx, 3, "after")  # a new #3 to #5, anchored
    with ctx.db() as db:
        write_anchor(db, ctx.storage)
        rewrite_whole_chain(db, 4, {"edited": "after the restore"})
        check = check_anchors(db, ctx.storage)
        assert not check.ok and check.seq == 5 and "differs" in check.problem  # the new anchor holds


def test_a_restore_is_refused_over_a_changed_entry(ctx: ServiceContext) -> None:
    entries(ctx, 2)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)  # anchored #2
    entries(ctx, 1)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)  # anchored #3
        rewrite_whole_chain(db, 2, {"decision": "accept"})  # tampering, then the tail cut to look like a restore
        restore_to(db, 2)
        with pytest.raises(RestoreRefusedError, match="entry 2 differs"):
            record_restore(db, ctx.storage, "ops", "hiding it", through=2)
        assert read_restores(ctx.storage) == []
        assert not check_anchors(db, ctx.storage).ok


def test_after_reopening_the_restore_point_is_named(ctx: ServiceContext) -> None:
    """Entries written after the restore, before it was recorded: `through` names where the dump ended."""
    entries(ctx, 2)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)
    entries(ctx, 2)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)  # anchored #4
        restore_to(db, 2)
    entries(ctx, 2, "after")  # a new #3 and #4: the anchored #4 now differs
    with ctx.db() as db:
        with pytest.raises(RestoreRefusedError, match="entry 4 differs") as refused:
            record_restore(db, ctx.storage, "ops", "restore of the 5th")
        assert "--through" in str(refused.value)  # the service up since the restore: what to do, in the line
        done = record_restore(db, ctx.storage, "ops", "restore of the 5th", through=2).restore
        assert done.seq == 2 and check_anchors(db, ctx.storage).ok


def test_the_console_command_records_a_real_file_restore(tmp_path: Path) -> None:
    """A real SQLite file copied back over the database: verify-audit fails as on a cut tail; `console
    record-restore` records it (in the chain too); verify-audit then passes and lists the restore."""
    import service.schema
    from service.infra.config import Settings

    made = run(tmp_path, "create-user", "--username", "admin", "--role", "admin", password="a-long-password")
    assert made.returncode == 0, made.stderr
    database = tmp_path / "pension_cert.db"
    shutil.copy(database, tmp_path / "dump.db")  # last night's backup
    again = run(tmp_path, "create-user", "--username", "li", "--role", "reviewer", password="a-long-password")
    assert again.returncode == 0, again.stderr  # entry #2, its head recorded in the media folder
    shutil.copy(tmp_path / "dump.db", database)  # the restore
    broken = run(tmp_path, "verify-audit")
    assert broken.returncode == 1 and "entry 2, the head committed" in json.loads(broken.stdout)["problem"]

    assert run(tmp_path, "record-restore").returncode == 2  # a reason is required
    done = run(tmp_path, "record-restore", "--reason", "磁盘故障，恢复 12 月 5 日的备份")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["restored_through"] == 1 and out["lost"] == [2], out
    check = run(tmp_path, "verify-audit")
    verdict = json.loads(check.stdout)
    assert check.returncode == 0 and verdict["entries"] == 2, verdict
    assert [r["through"] for r in verdict["restores"]] == [1] and verdict["restores"][0]["lost"] == [2]
    ctx = ServiceContext(Settings(var_dir=tmp_path), schema=service.schema.metadata)
    with ctx.db() as db:
        entry = db.scalar(select(ConsoleAuditEntry).where(ConsoleAuditEntry.seq == 2))
        assert entry is not None and entry.action == "audit.restored" and entry.detail["lost"] == [2]
    ctx.engine.dispose()


def test_media_of_sessions_the_restore_lost_are_kept_for_the_retention_period(ctx: ServiceContext) -> None:
    """A citizen certified after the dump: the restored database has no row for the session, and its card and
    video are the only record of it. The daily run prescribed after a restore swept them an hour later; once the
    restore is recorded they stay until RETENTION_DAYS after it, then go as any orphan."""
    assert isinstance(ctx.storage, LocalEncryptedStorage)
    lost = f"sessions/{uuid.uuid4()}/video"
    ctx.storage.put(lost, b"the video of a certification the restore lost")
    later = utcnow() + dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s + 60)
    with ctx.db() as db:
        done = record_restore(db, ctx.storage, "ops", "restored the dump of 2026-12-05").restore
    assert done.lost == ()  # nothing of the audit log lost (no staff action since the dump): recorded all the same
    new_orphan = f"sessions/{uuid.uuid4()}/video"  # written after the restore and never committed: an orphan
    ctx.storage.put(new_orphan, b"a failed upload")
    factories.aged_media(ctx, new_orphan, 0)  # just written
    factories.aged_media(ctx, lost, 7200)  # written before
    assert sweep_orphans(ctx, now=later) == 1
    assert ctx.storage.exists(lost) and not ctx.storage.exists(new_orphan)
    past = utcnow() + dt.timedelta(days=ctx.settings.storage.retention_days, hours=1)
    assert sweep_orphans(ctx, now=past) == 1 and not ctx.storage.exists(lost)


def exported_ids(client: TestClient) -> list[int]:
    answer = client.get("/api/v1/exports/suspensions.csv", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return [int(row["event_id"]) for row in csv.DictReader(io.StringIO(answer.text))]


def test_event_ids_the_payment_system_holds_are_not_handed_out_again(ctx: ServiceContext, client: TestClient) -> None:
    """The payment system de-duplicates on event_id. A restore numbered new events from the dump's highest id
    again: a suspension exported after the dump, then lost, and a new one given its id, was dropped by the payment
    system as a duplicate. The export records the highest id in the media store; recording the restore numbers
    new events past it (PostgreSQL), and names the events already given such an id (SQLite, or reopened first)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        for day in (1, 2, 3):
            db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=dt.date(2026, 11, day)))
        person = b.id
    high = max(exported_ids(client))  # the payment system holds it
    assert exported_high(ctx.storage)[0] == high
    postgres = ctx.engine.dialect.name == "postgresql"
    with ctx.db() as db:  # the dump was taken before the last event: the restore loses it
        db.execute(delete(CycleEvent).where(CycleEvent.id == high))
        if postgres:  # what restoring pg_dump's output does to the sequence
            db.execute(text("SELECT setval(pg_get_serial_sequence('cycle_events', 'id'), :v)"), {"v": high - 1})
        next_id = advance_event_ids(db, exported_high(ctx.storage)[0])
        event = CycleEvent(beneficiary_id=person, kind="suspended", on_date=dt.date(2026, 12, 6))
        db.add(event)
        db.flush()
        if postgres:
            assert next_id is not None and next_id > high and event.id >= next_id
            assert reused_event_ids(db, ctx.storage) == []
        else:  # SQLite numbers from its highest row: it cannot be moved, but the reuse is named
            assert next_id is None and event.id == high
            assert reused_event_ids(db, ctx.storage) == [high]


def test_an_export_carrying_reused_event_ids_is_refused(ctx: ServiceContext, client: TestClient) -> None:
    """A restore recorded before the service reopened finds no reused id yet, and SQLite cannot be moved past the
    ids the dump lacks: the next event took an id the payment system holds, and the export handed it out again
    with no word. The export now refuses (409 EVENT_IDS_REUSED, naming the ids) while such an event exists; events
    numbered below the mark that were recorded before the export that set it are no reuse."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        for day in (1, 2, 3):
            db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=dt.date(2026, 11, day)))
        person = b.id
    high = max(exported_ids(client))
    with ctx.db() as db:  # recorded on a host whose clock runs a minute ahead of the exporting one's
        ahead = exported_high(ctx.storage)[1] + dt.timedelta(minutes=1)  # type: ignore[operator]
        db.execute(text("UPDATE cycle_events SET created_at = :t WHERE id = :id"), {"t": ahead, "id": high - 1})
    assert exported_ids(client)  # exported again before any restore: the ids below the mark are no reuse
    with ctx.db() as db:  # the restore, recorded before the service reopens: nothing reused yet
        db.execute(delete(CycleEvent).where(CycleEvent.id == high))
        if ctx.engine.dialect.name == "postgresql":  # reopened before the numbering was moved
            db.execute(text("SELECT setval(pg_get_serial_sequence('cycle_events', 'id'), :v)"), {"v": high - 1})
        assert reused_event_ids(db, ctx.storage, EXPORT_CLOCK_SKEW) == []
    with ctx.db() as db:  # the next daily run suspends someone: the id the payment system holds
        tomorrow = utcnow() + dt.timedelta(days=1)
        event = CycleEvent(beneficiary_id=person, kind="suspended", on_date=dt.date(2026, 12, 6), created_at=tomorrow)
        db.add(event)
        db.flush()
        assert event.id == high
        db.add(CycleEvent(beneficiary_id=person, kind="resumed", on_date=dt.date(2026, 12, 7), created_at=tomorrow))
    refused = client.get("/api/v1/exports/suspensions.csv", headers=ADMIN)
    assert refused.status_code == 409, refused.text
    body = refused.json()["error"]
    assert body["code"] == "EVENT_IDS_REUSED" and str(high) in body["detail"], body
    assert client.get("/api/v1/exports/resumptions.csv", headers=ADMIN).status_code == 409  # any export with rows
    with ctx.db() as db:  # renumbered as docs/operations.md says: the export answers again
        db.execute(text("UPDATE cycle_events SET id = :new WHERE id = :old"), {"new": high + 1000, "old": high})
    assert high + 1000 in exported_ids(client)


def test_media_the_restore_lost_stay_kept_after_a_rekey(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """The keep rule read the objects' modified time: the rekey after a restore (step 3) writes every object anew,
    so the lost sessions' media looked newer than the restore and were swept one grace later. The restore now
    names the objects no row refers to; the sweep keeps those, by key, for RETENTION_DAYS after it."""
    assert isinstance(ctx.storage, LocalEncryptedStorage)
    old = os.urandom(32)
    lost = f"sessions/{uuid.uuid4()}/video"
    LocalEncryptedStorage(ctx.storage.root, old).put(lost, b"a lost session's video, sealed with the old key")
    os.utime(ctx.storage.root / f"{lost}.enc", (time.time() - 7200, time.time() - 7200))
    with ctx.db() as db:
        record_restore(db, ctx.storage, "ops", "restored the dump of 2026-12-05")
    rekeyed = LocalEncryptedStorage(ctx.storage.root, ctx.settings.media_key_bytes, [old])
    assert rekeyed.reseal(lost) is True  # `pension-cert rekey`: written anew, modified now
    later = utcnow() + dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s + 60)
    assert sweep_orphans(ctx, now=later) == 0 and ctx.storage.exists(lost)
    days = ctx.settings.storage.retention_days
    second = utcnow() + dt.timedelta(days=days - 1)
    monkeypatch.setattr(audit_anchor, "utcnow", lambda: second)
    # A second restore a window later (the media still unreferenced) does not stretch it: the first restore's
    # entry written (as the command does), staff work since, then the disk fails again and the head is lost.
    with ctx.db() as db:
        (first,) = read_restores(ctx.storage)
        record(db, "cli", AUDIT_ACTION, "audit", {"through": first.seq, "record": first.name})
    entries(ctx, 2, "after the first restore")
    with ctx.db() as db:
        point = db.scalar(select(ConsoleAuditEntry.seq).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
        assert point is not None
        restore_to(db, point - 1)
    with ctx.db() as db:
        again = record_restore(db, ctx.storage, "ops", "restored again")
        assert again.state == "recorded" and [a.seq for a in again.restore.lost] == [point]
        assert [r.name for r in read_restores(ctx.storage)] == [first.name, again.restore.name]
        assert lost in kept_keys(ctx.storage, again.restore) and lost in kept_keys(ctx.storage, first)
    assert sweep_orphans(ctx, now=utcnow() + dt.timedelta(days=days, hours=-1)) == 0 and ctx.storage.exists(lost)
    past = utcnow() + dt.timedelta(days=days, hours=1)  # the first's window over; the second's runs for days yet
    assert sweep_orphans(ctx, now=past) == 1 and not ctx.storage.exists(lost)


def test_two_exports_at_once_never_lower_the_recorded_mark(ctx: ServiceContext) -> None:
    """Each export read the highest id recorded and overwrote it when its own was higher: two at once (the
    suspensions and the resumptions) both read 5, and the one with the lower id, writing last, set the mark back
    to 10 under an exported 12. Each raise is now an object of its own, never overwritten; the highest counts."""
    import threading

    store = ctx.storage
    note_exported(store, [{"event_id": 5}])
    barrier = threading.Barrier(2)
    read = store.get

    def slow_get(key: str) -> bytes:
        data = read(key)
        if key.startswith(EXPORTED_KEY):  # both exports have read the mark before either writes
            barrier.wait(timeout=5)
            if threading.current_thread() is threading.main_thread():
                time.sleep(0.5)  # the export with the lower id writes last
        return data

    store.get = slow_get  # type: ignore[method-assign]
    try:
        other = threading.Thread(target=note_exported, args=(store, [{"event_id": 12}]))
        other.start()
        note_exported(store, [{"event_id": 10}])
        other.join()
    finally:
        store.get = read  # type: ignore[method-assign]
    assert exported_high(store)[0] == 12
    store.put(EXPORTED_KEY, json.dumps({"id": 40, "at": "2026-12-01T00:00:00"}).encode())  # the older single mark
    note_exported(store, [{"event_id": 30}])
    assert exported_high(store) == (40, dt.datetime(2026, 12, 1))


def test_record_restore_over_an_unreadable_mark_records_nothing(tmp_path: Path) -> None:
    """An export mark that does not open (edited, or sealed with another key): the command wrote the restore
    record and the head first and then died with a traceback, with no `audit.restored` entry; a rerun recorded a
    second restore. Every read comes first now: one line, its own code, nothing recorded."""
    import service.schema
    from service.infra.config import Settings

    made = run(tmp_path, "create-user", "--username", "admin", "--role", "admin", password="a-long-password")
    assert made.returncode == 0, made.stderr
    media = next(p for p in tmp_path.rglob("audit") if p.is_dir()).parent
    (media / "exports").mkdir(exist_ok=True)
    (media / "exports" / "event-id-high.enc").write_bytes(b"x" * 64)
    done = run(tmp_path, "record-restore", "--reason", "restored the dump")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("pension-cert: STORAGE_UNREADABLE: ") and len(done.stderr.strip().splitlines()) == 1
    ctx = ServiceContext(Settings(var_dir=tmp_path), schema=service.schema.metadata)
    try:
        assert read_restores(ctx.storage) == []
        with ctx.db() as db:
            assert "audit.restored" not in [e.action for e in db.scalars(select(ConsoleAuditEntry))]
    finally:
        ctx.engine.dispose()
    (media / "exports" / "event-id-high.enc").unlink()
    assert run(tmp_path, "record-restore", "--reason", "restored the dump").returncode == 0
    ctx = ServiceContext(Settings(var_dir=tmp_path), schema=service.schema.metadata)
    try:
        assert len(read_restores(ctx.storage)) == 1
    finally:
        ctx.engine.dispose()


def test_an_empty_export_answers_while_the_media_store_is_down(
    ctx: ServiceContext, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording the mark read the store even for an export with no rows: an empty file failed 503 during a store
    outage. It has no id to record: it answers; an export with rows still fails 503 (its ids must be recorded)."""
    from service.infra.storage import StorageUnavailableError

    def down(*_: object) -> None:
        raise StorageUnavailableError("the bucket does not answer")

    for method in ("list", "exists", "get", "put"):
        monkeypatch.setattr(ctx.storage, method, down)
    empty = client.get("/api/v1/exports/resumptions.csv", headers=ADMIN)
    assert empty.status_code == 200 and len(empty.text.strip().splitlines()) == 1, empty.text
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=dt.date(2026, 11, 1)))
    assert client.get("/api/v1/exports/suspensions.csv", headers=ADMIN).status_code == 503


# Part AQ: recording a restore, all or nothing (docs/security.md).


def _restored_var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real SQLite file copied back over the database (entry #2 and its head lost); later commands in-process."""
    for k in [k for k in os.environ if k.startswith("PENSION_CERT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))
    made = run(tmp_path, "create-user", "--username", "admin", "--role", "admin", password="a-long-password")
    assert made.returncode == 0, made.stderr
    database = tmp_path / "pension_cert.db"
    shutil.copy(database, tmp_path / "dump.db")  # a process of its own each: the file whole, no WAL left open
    again = run(tmp_path, "create-user", "--username", "li", "--role", "reviewer", password="a-long-password")
    assert again.returncode == 0, again.stderr
    shutil.copy(tmp_path / "dump.db", database)
    return tmp_path


def _recorded(var_dir: Path) -> tuple[int, list[str]]:
    """The restore records in the store and the `audit.restored` entries in the log."""
    import service.schema
    from service.infra.config import Settings

    ctx = ServiceContext(Settings(var_dir=var_dir), schema=service.schema.metadata)
    try:
        with ctx.db() as db:
            actions = [e.action for e in db.scalars(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq))]
        return len(read_restores(ctx.storage)), [a for a in actions if a == "audit.restored"]
    finally:
        ctx.engine.dispose()


@pytest.mark.parametrize("fault", ["record", "head", "commit"])
def test_a_restore_half_recorded_is_completed_by_a_rerun_never_recorded_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    """A failure after the sealed record was written (the head refused, the audit entry's commit failed) left the
    record without its `audit.restored` entry; the rerun the message asked for recorded a second restore. Each
    failure is now one line; verify-audit never calls the half-recorded state tampering; a rerun completes it."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session as OrmSession

    from service.adapters.cli import main
    from service.infra.storage import StorageError

    var_dir = _restored_var_dir(tmp_path, monkeypatch)
    capsys.readouterr()
    put, commit = LocalEncryptedStorage.put, OrmSession.commit

    def failing_put(self: LocalEncryptedStorage, key: str, data: bytes) -> None:
        if key.startswith("audit/restores/" if fault == "record" else "audit/head"):
            raise StorageError(f"cannot write {key!r}: Permission denied")
        put(self, key, data)

    def failing_commit(self: OrmSession) -> None:
        last = select(ConsoleAuditEntry.action).order_by(ConsoleAuditEntry.seq.desc()).limit(1)
        if self.scalar(last) == "audit.restored":  # the audit entry written, its commit fails
            raise OperationalError("COMMIT", {}, Exception("database is locked"))
        commit(self)

    if fault == "commit":
        monkeypatch.setattr(OrmSession, "commit", failing_commit)
    else:
        monkeypatch.setattr(LocalEncryptedStorage, "put", failing_put)
    assert main(["console", "record-restore", "--reason", "restored the dump"]) in (1, 5)
    err = capsys.readouterr().err
    assert err.startswith("pension-cert: ") and len(err.strip().splitlines()) == 1, err
    monkeypatch.undo()
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(var_dir))
    verdict = main(["console", "verify-audit"])
    problem = json.loads(capsys.readouterr().out)["problem"]
    assert "differs" not in problem and (verdict == 0 or "gone" in problem), problem  # never "tampered"
    assert main(["console", "record-restore", "--reason", "restored the dump"]) == 0, capsys.readouterr().err
    assert _recorded(var_dir) == (1, ["audit.restored"])
    assert main(["console", "verify-audit"]) == 0
    assert len(json.loads(capsys.readouterr().out.splitlines()[-1])["restores"]) == 1


def test_record_restore_twice_or_on_an_empty_store_is_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run twice, the second run recorded a second restore (and a second `audit.restored` entry). It now says the
    restore is recorded already and writes nothing. An empty database and media store: recorded, then the same."""
    from service.adapters.cli import main

    var_dir = _restored_var_dir(tmp_path, monkeypatch)
    assert main(["console", "record-restore", "--reason", "restored the dump"]) == 0
    capsys.readouterr()
    assert main(["console", "record-restore", "--reason", "restored the dump"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0])["already_recorded"] is True, out
    assert _recorded(var_dir) == (1, ["audit.restored"])
    empty = tmp_path / "empty"
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(empty))
    for already in (False, True):
        assert main(["console", "record-restore", "--reason", "a fresh install"]) == 0
        assert json.loads(capsys.readouterr().out)["already_recorded"] is already
    assert _recorded(empty) == (1, ["audit.restored"])


def test_the_restore_record_stays_small_however_many_orphans(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record listed every orphan key inline: ~55 bytes each, 5.5 MB for 100,000 orphans, read whole by every
    verify-audit and every sweep. The keys now go in compressed chunk objects of their own, read by the sweep only;
    the record holds their count."""
    from service.certification import restore_record

    monkeypatch.setattr(restore_record, "CHUNK_KEYS", 64)
    orphans = sorted(f"sessions/{uuid.uuid4()}/video" for _ in range(200))
    for key in orphans:
        ctx.storage.put(key, b"v")
    with ctx.db() as db:
        done = record_restore(db, ctx.storage, "ops", "restored the dump").restore
    (obj,) = list(ctx.storage.list("audit/restores/"))
    assert len(ctx.storage.get(obj.key)) < 600 and done.kept_count == 200
    (listed,) = read_restores(ctx.storage)
    assert kept_keys(ctx.storage, listed) == orphans
    assert len(list(ctx.storage.list(restore_record.KEPT_PREFIX))) == 4
    later = utcnow() + dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s + 60)
    assert sweep_orphans(ctx, now=later) == 0 and all(ctx.storage.exists(k) for k in orphans)


def _restore_keeping_one(ctx: ServiceContext) -> tuple[str, str]:
    """A restore recorded over one lost session's video (older than the grace); its key and its one chunk's key."""
    from service.certification import restore_record

    lost = f"sessions/{uuid.uuid4()}/video"
    ctx.storage.put(lost, b"the video of a certification the restore lost")
    with ctx.db() as db:
        record_restore(db, ctx.storage, "ops", "restored the dump of 2026-12-05")
    (chunk,) = [o.key for o in ctx.storage.list(restore_record.KEPT_PREFIX)]
    return lost, chunk


@pytest.mark.parametrize("damage", ["missing", "not_zlib", "wrong_count", "not_utf8", "too_big"])
def test_a_damaged_kept_chunk_stops_the_sweep_of_session_media(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    """A chunk of kept keys missing or damaged made the sweep keep nothing for every restore: the media of every
    session the restores lost were deleted, the only proof those people certified (and a bad text decode crashed
    the sweep). Now that run deletes nothing under sessions/ and logs one ERROR; partial writes still go."""
    import logging
    import zlib

    from service.certification import restore_record

    lost, chunk = _restore_keeping_one(ctx)
    orphan = f"sessions/{uuid.uuid4()}/video"  # an ordinary orphan, written after the restore
    ctx.storage.put(orphan, b"a failed upload")
    monkeypatch.setattr(restore_record, "KEPT_CAP", 4096)
    forged = {
        "not_zlib": b"not a zlib stream",
        "wrong_count": zlib.compress(f"{lost}\nsessions/other/video".encode()),
        "not_utf8": zlib.compress(b"\xff\xfe\xfd"),
        "too_big": zlib.compress(b"sessions/x/video\n" * 1000),  # 17,000 bytes once inflated, over the cap
    }
    if damage == "missing":
        ctx.storage.delete(chunk)
    else:
        ctx.storage.put(chunk, forged[damage])  # sealed with the media key: only its holder could
    later = utcnow() + dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s + 60)
    with caplog.at_level(logging.INFO, logger="service.certification.retention"):
        assert sweep_orphans(ctx, now=later) == 0
    assert ctx.storage.exists(lost) and ctx.storage.exists(orphan)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "nothing under sessions/" in errors[0].getMessage(), caplog.text


def _var_dir_with_a_kept_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A real restore recorded by the command over one lost session's video: the var dir and its chunk's key."""
    import service.schema
    from service.adapters.cli import main
    from service.certification import restore_record
    from service.infra.config import Settings

    var_dir = _restored_var_dir(tmp_path, monkeypatch)
    ctx = ServiceContext(Settings(var_dir=var_dir), schema=service.schema.metadata)
    try:
        ctx.storage.put(f"sessions/{uuid.uuid4()}/video", b"the video of a certification the restore lost")
        assert main(["console", "record-restore", "--reason", "restored the dump"]) == 0
        (chunk,) = [o.key for o in ctx.storage.list(restore_record.KEPT_PREFIX)]
        assert main(["console", "verify-audit"]) == 0
        ctx.storage.delete(chunk)
    finally:
        ctx.engine.dispose()
    return var_dir, chunk


def test_verify_audit_fails_on_a_missing_kept_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify-audit never read the chunks, so a missing one (the sweep then kept nothing) passed unseen. It now
    opens each restore's chunks and checks their count: exit 1, the chunk named in the problem."""
    from service.adapters.cli import main

    _var_dir_with_a_kept_chunk(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["console", "verify-audit"]) == 1
    problem = json.loads(capsys.readouterr().out)["problem"]
    assert "kept" in problem and "chunk 0" in problem and "/000000" in problem, problem


def test_record_restore_over_a_missing_kept_chunk_says_nothing_was_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chunk that does not read was reported as a refused write ("the rerun completes this restore"), and every
    rerun failed the same way. It is now an unreadable object: nothing recorded, put it back."""
    from service.adapters.cli import main

    var_dir, _ = _var_dir_with_a_kept_chunk(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["console", "record-restore", "--reason", "restored the dump"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pension-cert: STORAGE_UNREADABLE: ") and len(err.strip().splitlines()) == 1, err
    assert "nothing recorded" in err and "refused a write" not in err, err
    assert _recorded(var_dir) == (1, ["audit.restored"])
