"""Recording a database restore (`pension-cert console record-restore`; docs/security.md Parts AN and AQ).

The record is a sealed object under `audit/restores/` (audit_anchor.RESTORE_PREFIX, read by `verify-audit`): the
entry the restored log ends at, the anchors of the entries lost, and how many session media no row referred to
then (the sessions the restore lost, kept by the orphan sweep). Their keys go in compressed chunk objects of their
own under KEPT_PREFIX (listed inline, 100,000 of them made a 5.5 MB record; 2.1 MB in chunks), read by the sweep
and checked by `verify-audit` (kept_problem). A chunk that does not read stops the sweep of session media
(retention.py) rather than letting it delete what the restore kept.

All or nothing across two stores, by order: every read and check first; then the kept keys' chunks, then the
record (from then on the restore is recorded: `verify-audit` sets the lost anchors aside), then the head set back;
the caller writes the `audit.restored` entry naming the record (`detail["record"]`) and commits. A failure after
the record (the head refused, the commit failed) leaves a state `verify-audit` passes, and a rerun finds the
newest record that no audit entry names, at the same restore point with nothing newly lost, and completes it
instead of recording a second restore; a rerun after a complete run answers that the restore is recorded already.
A run that failed while writing the chunks left a folder no record names: the run that records (or completes) the
same restore point removes it (Part BA). A chunk lost for good: restore_rewrite.py writes the keys anew.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit_anchor import (
    HEAD_KEY,
    RESTORE_PREFIX,
    Anchor,
    Restore,
    RestoreRefusedError,
    encode_anchor,
    mismatch,
    now_text,
    read_anchors,
    read_head,
    read_restores,
    restore_points,
    write_head,
)
from service.certification.media_refs import unreferenced_media
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.db.locks import one_writer_at_a_time
from service.infra.security import mask_text
from service.infra.storage import MediaStorage, StorageError, StorageUnavailableError, UnreadableStorageError

log = logging.getLogger(__name__)
KEPT_PREFIX = "audit/restore-kept/"  # not under RESTORE_PREFIX: listing the records does not list the chunks
CHUNK_KEYS = 20_000  # keys per chunk object (about 0.5 MB compressed)
AUDIT_ACTION = "audit.restored"
KEPT_CAP = 64 << 20  # bytes a chunk may inflate to (CHUNK_KEYS keys of a few dozen bytes: about 1 MB)
RESTORE_LOCK = 0x70632D72  # advisory lock id of the restore records ("pc-r"), taken before any other
_RUN_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}T\d{6}Z-(\d{12})")  # a recording run's chunk folder: <time>-<point>


class KeptUnreadableError(UnreadableStorageError):
    """The kept keys of a recorded restore cannot be read whole: a chunk missing, not opening, not inflating to
    text, or the chunks not holding the count recorded. Put the chunk back (a versioned bucket keeps it)."""


@dataclass(frozen=True)
class Recording:
    """What `record_restore` did: "recorded" a new restore, "completed" one a failed run left without its audit
    entry (the caller writes it), or found it recorded "already" (nothing to write)."""

    restore: Restore
    state: Literal["recorded", "completed", "already"]


def record_restore(db: Session, storage: MediaStorage, by: str, reason: str, through: int | None = None) -> Recording:
    """Record that the database was restored and its log now ends at entry `through` (default: its head, when the
    restore is recorded before the service reopens): every anchor (and the head) of an entry up to it must match,
    those above it that do not are recorded as lost, with the session media no row refers to; the head is then
    set back to the log's own. Recorded when nothing of the log was lost as well. RestoreRefusedError: an
    anchored entry up to `through` differs (a restore does not explain it), or the log has no entry `through`."""
    exclusive(db)
    top = db.scalar(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
    seq = through if through is not None else (top.seq if top else 0)
    point = db.get(ConsoleAuditEntry, seq) if seq else None
    if seq < 0 or (seq and point is None):
        raise RestoreRefusedError(f"the log has no entry {seq}")
    restores = read_restores(storage)
    lost = _lost(db, storage, restores, seq, through is None)
    orphans = unreferenced_media(db, storage)
    last = restores[-1] if restores else None
    if last is not None and not lost and set(orphans) <= set(_last_kept(storage, last)):
        entry = naming_entry(db, last)
        if entry is None and (last.seq, last.hash) == (seq, point.hash if point else ""):
            _set_head(storage, top, last.at)  # a run that failed after writing the record: completed
            _remove_failed_runs(storage, restores, last)
            return Recording(last, "completed")
        if entry is not None and top is not None and top.seq == entry.seq and seq in (last.seq, entry.seq):
            write_head(storage, Anchor(top.seq, top.hash, now_text()))  # if that run's own head was not written
            _remove_failed_runs(storage, restores, last)
            return Recording(last, "already")
    digest = point.hash if point else ""
    done = Restore(seq, digest, tuple(lost), now_text(), mask_text(by)[:64], mask_text(reason)[:200])
    name = f"{done.at.replace(':', '')}-{seq:012d}"
    chunks = write_kept(storage, name, orphans)  # before the record: a record never names a chunk not written
    done = replace(done, name=name, kept_count=len(orphans), kept_chunks=chunks)
    storage.put(f"{RESTORE_PREFIX}{name}", record_json(done))
    _set_head(storage, top, done.at)
    log.warning("audit chain: a restore recorded at #%d by %s, %d anchors of lost entries", seq, done.by, len(lost))
    _remove_failed_runs(storage, [*restores, done], done)
    return Recording(done, "recorded")


def exclusive(db: Session) -> None:
    """One run at a time over the restore records (`record-restore`, `rewrite-kept`), held to the caller's commit of
    its audit entry: a second run waits, then reads what the first recorded (two runs that both read the records
    before either wrote took each other's chunk folder for a failed run's: Part BJ). Taken first, before any read."""
    one_writer_at_a_time(db, RESTORE_LOCK)


def _last_kept(storage: MediaStorage, last: Restore) -> list[str]:
    """The keys the latest restore kept, for telling a rerun from a new restore; KeptUnreadableError naming what to
    run when they do not read (nothing is recorded then: Part BJ)."""
    try:
        return kept_keys(storage, last)
    except KeptUnreadableError as exc:
        raise KeptUnreadableError(
            f"{exc}: nothing recorded. Put that chunk back (a versioned bucket keeps it) or, lost for good, "
            f"{rewrite_hint(last)}, then run record-restore again"
        ) from exc


def rewrite_hint(r: Restore) -> str:
    """The command that writes restore `r`'s kept keys anew (restore_rewrite.py), as the operator types it."""
    return f'write its keys anew first: pension-cert console rewrite-kept --record {r.name} --reason "…"'


def record_json(r: Restore) -> bytes:
    """The sealed record's content (its name is its key)."""
    record = {**r.__dict__, "lost": [a.__dict__ for a in r.lost], "kept": list(r.kept)}
    record["rewrites"] = [w.__dict__ for w in r.rewrites]
    del record["name"]
    return json.dumps(record, sort_keys=True).encode()


def _lost(db: Session, storage: MediaStorage, restores: list[Restore], seq: int, default_point: bool) -> list[Anchor]:
    """The anchors (the head and earlier restore points among them) of entries after `seq` the log no longer
    holds, less those a recorded restore set aside; RestoreRefusedError for one up to `seq`."""
    lost_before = {(a.seq, a.hash) for r in restores for a in r.lost}
    head = read_head(storage)
    lost = []
    for a in [*read_anchors(storage), *restore_points(restores), *([head] if head else [])]:
        if (a.seq, a.hash) in lost_before or not mismatch(db, a, "", ""):
            continue
        if a.seq <= seq:
            hint = " (entries written since the restore? name the dump's last entry: --through N)" * default_point
            raise RestoreRefusedError(
                f"entry {a.seq} differs from its anchor of {a.at}: a restore explains lost entries after the "
                f"entry the restored log ends at ({seq}), never a changed one{hint}"
            )
        lost.append(a)
    return lost


def _set_head(storage: MediaStorage, top: ConsoleAuditEntry | None, at: str) -> None:
    """The head back to the restored log's own, on purpose (later commits record theirs)."""
    if top is not None:
        storage.put(HEAD_KEY, encode_anchor(Anchor(top.seq, top.hash, at)))
    else:  # only hidden on a versioned bucket: the advised policy refuses deleting versions under audit/
        storage.delete(HEAD_KEY, every_version=False)


def naming_entry(db: Session, r: Restore) -> ConsoleAuditEntry | None:
    """The `audit.restored` entry of restore `r` (None: a run that failed before it committed, or a later restore
    took it away). Entries from before the record was named match by restore point."""
    q = select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == AUDIT_ACTION, ConsoleAuditEntry.seq > r.seq)
    for entry in db.scalars(q.order_by(ConsoleAuditEntry.seq)):
        detail = entry.detail or {}
        if detail.get("record", r.name if detail.get("through") == r.seq else None) == r.name:
            return entry
    return None


def _chunk_key(folder: str, n: int) -> str:
    return f"{KEPT_PREFIX}{folder}/{n:06d}"


def kept_dir(r: Restore) -> str:
    """The folder under KEPT_PREFIX holding the chunks restore `r` reads (its own name until rewritten)."""
    return r.kept_dir or r.name


def write_kept(storage: MediaStorage, folder: str, keys: list[str], start: int = 0) -> int:
    """`keys` in chunk objects of CHUNK_KEYS each, newline-separated and compressed, numbered from `start`; the
    number of chunks written."""
    chunks = [keys[i : i + CHUNK_KEYS] for i in range(0, len(keys), CHUNK_KEYS)]
    for n, chunk in enumerate(chunks, start):
        storage.put(_chunk_key(folder, n), zlib.compress("\n".join(chunk).encode(), 9))
    return len(chunks)


def remove_unnamed(storage: MediaStorage, restores: list[Restore], ours: Callable[[str], bool]) -> int:
    """Delete the chunk folders no record names (neither as its folder now nor as one a rewrite replaced) that
    `ours` says a failed run of this restore wrote; the objects deleted (on a versioned bucket hidden by a delete
    marker, their versions kept: the advised policy denies deleting them). Best effort, after the record: a store
    that refuses leaves them (nothing reads them) and is logged."""
    named = {kept_dir(r) for r in restores} | {r.name for r in restores}
    named |= {w.from_dir for r in restores for w in r.rewrites}
    removed = 0
    try:
        for obj in list(storage.list(KEPT_PREFIX)):
            folder = obj.key[len(KEPT_PREFIX) :].split("/")[0]
            # Hidden only, on a versioned bucket: the advised policy denies deleting versions under audit/ (Part BJ).
            if folder not in named and ours(folder) and storage.delete(obj.key, every_version=False):
                removed += 1
    except StorageError as exc:
        log.warning("audit chain: the chunks of a failed run stay under %s (%s)", KEPT_PREFIX, exc)
    if removed:
        log.info("audit chain: %d chunk objects of failed runs removed", removed)
    return removed


def _remove_failed_runs(storage: MediaStorage, restores: list[Restore], done: Restore) -> int:
    """The chunk folders of runs that failed before their record at `done`'s restore point, earlier than it (named
    `<time>-<point>`, as `done`): a folder of another restore point, or a later one, is never taken for one."""

    def ours(folder: str) -> bool:
        run = _RUN_FOLDER.fullmatch(folder)
        return run is not None and int(run[1]) == done.seq and folder < done.name

    return remove_unnamed(storage, restores, ours)


def kept_keys(storage: MediaStorage, r: Restore) -> list[str]:
    """The session media restore `r` named, in key order. KeptUnreadableError when a chunk is missing, does not
    open (each is sealed under its own key: one cannot stand for another), does not inflate to text within
    KEPT_CAP, or the chunks do not hold the count recorded; StorageUnavailableError when the store does not answer."""
    named, guessed = kept_split(storage, r)
    return sorted([*named, *guessed])


def kept_split(storage: MediaStorage, r: Restore) -> tuple[list[str], list[str]]:
    """The keys restore `r` named (no row referred to them when it was recorded) and those a rewrite kept on a guess
    (the last `r.guessed_chunks` chunks; restore_rewrite.py). Errors as kept_keys."""
    named, guessed = list(r.kept), list[str]()
    for n in range(r.kept_chunks):
        (named if n < r.kept_chunks - r.guessed_chunks else guessed).extend(read_chunk(storage, r, n))
    if len(named) + len(guessed) != r.kept_count or len(guessed) != r.guessed_count:
        held = f"{len(named) + len(guessed)}" + (
            f" ({len(guessed)} guessed of {r.guessed_count})" * bool(guessed or r.guessed_count)
        )
        raise KeptUnreadableError(f"restore {r.name} names {r.kept_count} kept objects, its chunks hold {held}")
    return named, guessed


def read_chunk(storage: MediaStorage, r: Restore, n: int) -> list[str]:
    """Chunk `n` of restore `r`'s kept keys (KeptUnreadableError, StorageUnavailableError: as kept_keys)."""
    key = _chunk_key(kept_dir(r), n)
    where = f"the kept keys of restore {r.name} (chunk {n}, {key!r})"
    try:
        data = storage.get(key)
    except StorageUnavailableError:
        raise
    except StorageError as exc:  # missing, or sealed with another key (or another object's)
        raise KeptUnreadableError(f"{where} do not open: {exc}") from exc
    inflate = zlib.decompressobj()
    try:  # bounded: a chunk inflates to about 1 MB, never to whatever its bytes say
        raw = inflate.decompress(data, KEPT_CAP)
        if not inflate.eof or inflate.unused_data:
            raise KeptUnreadableError(f"{where} are cut short or inflate past {KEPT_CAP} bytes")
        text = raw.decode()
    except (zlib.error, UnicodeDecodeError) as exc:
        raise KeptUnreadableError(f"{where} do not inflate to text: {exc}") from exc
    return text.split("\n") if text else []


def kept_problem(storage: MediaStorage, restores: tuple[Restore, ...] | list[Restore]) -> str:
    """Why the kept keys of a recorded restore cannot be read ("" when every restore's read, with the count
    recorded): `verify-audit`'s check of the chunks the orphan sweep relies on."""
    for r in restores:
        try:
            kept_keys(storage, r)
        except KeptUnreadableError as exc:
            return f"{exc}: the orphan sweep deletes no session media until then (put it back, or {rewrite_hint(r)})"
    return ""
