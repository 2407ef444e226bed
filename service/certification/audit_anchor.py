"""Anchors of the console audit chain outside the database (issue 19).

The chain (service/features/console/audit_chain.py) shows an edited, deleted or re-ordered entry, but a writer with full
access to the database could rewrite the whole log and recompute every hash. An anchor is the head (sequence
number and hash) at a moment, written to the media store — the bucket (with object lock / versioning in
production) or the media folder, which the database user cannot write — as a new object per anchor, sealed with
the media key: AES-GCM authenticates it, so an anchor cannot be forged or edited without that key either.
Verification checks the chain and that every anchored entry still carries its anchored hash.

The daily anchors alone leave the day's tail open: entries written after the last one could be deleted unseen.
So every committed transaction that wrote console audit entries also records its newest entry as the **head**
(`audit/head`, one object overwritten, kept as versions on a versioned bucket), right after the commit; the check
then also finds the head entry in the database, with its hash. A store that does not answer then costs only the
head's freshness (the next transaction, or the daily run, writes it), never the staff action.

The media store is not backed up (docs/operations.md): after the database is restored from an older dump, the
anchors and the head name entries the restored log never had, which is exactly what a deleted tail looks like. An
operator records the restore (`pension-cert console record-restore`, service/certification/restore_record.py): a
sealed object under `audit/restores/` naming the entry the restored log ends at and the anchors of the entries
lost. Verification then leaves those anchors aside, checks the restore point like an anchor, and lists every
restore; it still fails on an entry up to the restore point that differs from its anchor (refused when recording,
too): a restore explains a lost tail, never a rewritten entry.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from service.certification.models import utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.storage import MediaStorage, StorageError, StorageUnavailableError

log = logging.getLogger(__name__)
PREFIX = "audit/anchors/"
HEAD_KEY = "audit/head"
RESTORE_PREFIX = "audit/restores/"
# Session.info keys: the media store the session's transactions anchor their head in (set by the service
# context's session factory), and the newest entry written in the open transaction.
STORE_INFO = "audit_anchor_store"
_PENDING_INFO = "audit_anchor_pending"
_LISTENING_INFO = "audit_anchor_listening"
_WROTE_INFO = "audit_anchor_wrote"
_OBJECTS_INFO = "audit_anchor_objects"  # other objects to write once the transaction commits (put_on_commit)


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str


@dataclass(frozen=True)
class Restore:
    """A restore of the database recorded by an operator: the log kept entries up to `seq` (its `hash`; 0 and "":
    none), and `lost` are the anchors (the head among them) of entries the restore took away; `kept_count` the session
    media no row referred to then (the sessions the restore lost; their keys: restore_record.kept_keys): the
    orphan sweep keeps them for a while."""

    seq: int
    hash: str
    lost: tuple[Anchor, ...]
    at: str
    by: str
    reason: str
    kept: tuple[str, ...] = ()  # listed in the record itself (records made before chunks: restore_record.py)
    name: str = ""  # its object's key under RESTORE_PREFIX
    kept_count: int = 0  # the keys kept, in compressed chunk objects of their own (restore_record.kept_keys)
    kept_chunks: int = 0
    kept_dir: str = ""  # the chunks' folder under restore_record.KEPT_PREFIX ("": `name`; another once rewritten)
    rewrites: tuple[KeptRewrite, ...] = ()  # the kept keys written anew after a chunk was lost (restore_rewrite.py)
    # Of those, the keys a rewrite kept on a guess, in the last `guessed_chunks` chunks: they never end the window of
    # a restore that named the key (retention.py).
    guessed_count: int = 0
    guessed_chunks: int = 0


@dataclass(frozen=True)
class KeptRewrite:
    """The kept keys of a restore written anew (`pension-cert console rewrite-kept`): when, by whom, why, which
    chunks of `from_dir` did not read, the count of keys the record held before and after, and how many of those
    after are guesses (kept on the safe side: every object no row referred to then that no surviving chunk named)."""

    at: str
    by: str
    reason: str
    lost_chunks: tuple[int, ...]
    kept_before: int
    kept_after: int
    from_dir: str
    added: int = 0


class RestoreRefusedError(Exception):
    """An anchored entry the restore kept differs (tampering, not a restore), or no such restore point."""


@dataclass(frozen=True)
class AnchorCheck:
    ok: bool
    anchors: int
    problem: str = ""
    seq: int | None = None
    restores: tuple[Restore, ...] = ()


def now_text() -> str:
    return utcnow().isoformat(timespec="seconds") + "Z"


def encode_anchor(anchor: Anchor) -> bytes:
    return json.dumps(anchor.__dict__, sort_keys=True).encode()


def _decode(data: bytes) -> Anchor:
    raw = json.loads(data)
    return Anchor(int(raw["seq"]), str(raw["hash"]), str(raw["at"]))


def write_anchor(db: Session, storage: MediaStorage) -> Anchor | None:
    """Anchor the current head (nothing to anchor in an empty log). Idempotent per head."""
    head = db.scalar(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
    if head is None:
        return None
    anchor = Anchor(head.seq, head.hash, now_text())
    key = f"{PREFIX}{head.seq:012d}"
    if _anchors_another_entry(storage, key, head.hash):  # the same number before a restore: both are kept
        key = f"{key}-{head.hash[:16]}"
    if not storage.exists(key):
        storage.put(key, encode_anchor(anchor))
        log.info("audit chain anchored at #%d", head.seq)
    write_head(storage, anchor)
    return anchor


def read_anchor(storage: MediaStorage, key: str) -> Anchor:
    """One anchor object, the head or a daily one (StorageError when forged, edited or sealed with another key)."""
    return _decode(storage.get(key))


def read_anchors(storage: MediaStorage, newest: bool = False) -> list[Anchor]:
    """The daily anchors, oldest first; `newest`: only the latest (keys are numbered by entry: one object read)."""
    keys = sorted(obj.key for obj in storage.list(PREFIX))
    if newest:
        keys = keys[-1:]
    anchors = [_decode(storage.get(k)) for k in keys]  # StorageError when an object was forged or edited
    return sorted(anchors, key=lambda a: a.seq)


def _anchors_another_entry(storage: MediaStorage, key: str, digest: str) -> bool:
    if not storage.exists(key):
        return False
    try:
        return _decode(storage.get(key)).hash != digest
    except StorageUnavailableError:
        raise
    except StorageError:  # forged or edited: left for the check to report, the new anchor written beside it
        return True


def read_head(storage: MediaStorage) -> Anchor | None:
    """The newest committed entry recorded outside the database (None: none recorded yet)."""
    if not storage.exists(HEAD_KEY):
        return None
    return _decode(storage.get(HEAD_KEY))  # StorageError when forged or edited


def write_head(storage: MediaStorage, anchor: Anchor) -> None:
    """Record `anchor` as the head unless a newer one is recorded (two transactions committing together may
    write in either order; the head never goes back)."""
    try:
        current = read_head(storage)
    except StorageError:
        current = None  # an unreadable head is replaced; the check has reported it until now
    if current is None or anchor.seq > current.seq:
        storage.put(HEAD_KEY, encode_anchor(anchor))


def anchor_on_commit(db: Session) -> None:
    """Record the chain's head once `db`'s transaction, which wrote audit entries, has committed (nothing on a
    rollback). Sessions made without a store (tools, some tests) anchor only at the daily run.

    The head is read just before the top-level commit, not taken from the entry written: savepoints fire the same
    commit and rollback events, and an entry written inside a savepoint rolled back later never existed."""
    if db.info.get(STORE_INFO) is None:
        return
    _listen(db)
    db.info[_WROTE_INFO] = True


def put_on_commit(db: Session, key: str, data: bytes) -> bool:
    """Write `data` as object `key` of the media store (sealed with the media key, as the head) once `db`'s
    transaction has committed, nothing on a rollback: what a database restore must not take back is kept where
    the restore does not reach (withdrawal_records.py). Queued for the top-level commit: a savepoint rolled back
    does not take it away (no caller writes one inside a savepoint). False: a session made without a store (tools)."""
    if db.info.get(STORE_INFO) is None:
        return False
    _listen(db)
    db.info.setdefault(_OBJECTS_INFO, []).append((key, data))
    return True


def _listen(db: Session) -> None:
    if not db.info.get(_LISTENING_INFO):  # once per session (sessions are short-lived units of work)
        event.listen(db, "before_commit", _read_head_before_commit)
        event.listen(db, "after_commit", _write_pending_head)
        event.listen(db, "after_rollback", _drop_pending_head)
        db.info[_LISTENING_INFO] = True


def _read_head_before_commit(db: Session) -> None:
    if db.in_nested_transaction() or not db.info.pop(_WROTE_INFO, False):
        return
    head = db.scalar(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
    if head is not None:
        db.info[_PENDING_INFO] = Anchor(head.seq, head.hash, now_text())


def _write_pending_head(db: Session) -> None:
    if db.in_nested_transaction():  # a savepoint released: the transaction is still open
        return
    for key, data in db.info.pop(_OBJECTS_INFO, []):
        try:
            db.info[STORE_INFO].put(key, data)
        except Exception as exc:  # committed: the request stands; only what a restore would need is missing
            log.error("%s not written to the media store after its commit (a restore cannot redo it): %s", key, exc)
    anchor: Anchor | None = db.info.pop(_PENDING_INFO, None)
    if anchor is None:
        return
    try:
        write_head(db.info[STORE_INFO], anchor)
    except Exception as exc:  # the transaction has committed: nothing here may turn it into a failed request
        log.warning("audit head #%d not recorded (the next commit or the daily run will): %s", anchor.seq, exc)


def _drop_pending_head(db: Session) -> None:
    if db.in_nested_transaction():  # a savepoint rolled back: the outer transaction may still commit entries
        return
    db.info.pop(_PENDING_INFO, None)
    db.info.pop(_WROTE_INFO, None)
    db.info.pop(_OBJECTS_INFO, None)


def check_anchors(
    db: Session, storage: MediaStorage, newest: bool = False, daily: Sequence[Anchor] | None = None
) -> AnchorCheck:
    """Every anchored entry, and the recorded head, still exists with its anchored hash (run after `verify_chain`
    has passed: together they show that nothing up to the head was rewritten or cut off, even with every hash
    recomputed). The anchors of entries a recorded restore lost are left aside; each restore point is checked as
    an anchor, and the restores are listed in the result. `newest`: of the daily anchors only the latest (the audit
    viewer's check on every page: a cut tail or a recomputed recent chain, in a few reads). `daily`: the daily
    anchors as the caller read them already (`read_anchors(storage, newest)`), not read again."""
    try:
        restores = tuple(read_restores(storage))
        lost = {(a.seq, a.hash) for r in restores for a in r.lost}
        dailies = read_anchors(storage, newest) if daily is None else daily
        anchors = [a for a in dailies if (a.seq, a.hash) not in lost]
        anchors += [a for a in restore_points(restores) if (a.seq, a.hash) not in lost]
        head = read_head(storage)
    except StorageUnavailableError:
        raise  # the store did not answer: nothing was checked, no verdict (not "forged")
    except StorageError as exc:
        return AnchorCheck(False, 0, f"an anchor does not open (forged or edited): {exc}")
    for a in sorted(anchors, key=lambda a: a.seq):
        problem = mismatch(db, a, f"anchored on {a.at}", f"its anchor of {a.at}")
        if problem:
            return AnchorCheck(False, len(anchors), problem, a.seq, restores)
    if head is not None and (head.seq, head.hash) not in lost:
        problem = mismatch(db, head, f"the head committed on {head.at}", f"the head of {head.at}")
        if problem:
            return AnchorCheck(False, len(anchors), problem, head.seq, restores)
    return AnchorCheck(True, len(anchors), restores=restores)


def mismatch(db: Session, a: Anchor, gone: str, differs: str) -> str:
    """Why the database does not hold anchored entry `a` ("" when it does)."""
    entry = db.get(ConsoleAuditEntry, a.seq)
    if entry is None:
        return f"entry {a.seq}, {gone}, is gone"
    return f"entry {a.seq} differs from {differs}" if entry.hash != a.hash else ""


def restored_at(r: Restore) -> dt.datetime:
    """When `r` was recorded (naive UTC, as the models' times)."""
    return dt.datetime.strptime(r.at, "%Y-%m-%dT%H:%M:%SZ")


def restore_points(restores: list[Restore] | tuple[Restore, ...]) -> list[Anchor]:
    """Each restore's point, checked as an anchor (a later restore from an older dump may lose it in turn)."""
    return [Anchor(r.seq, r.hash, r.at) for r in restores if r.seq]


def read_restores(storage: MediaStorage) -> list[Restore]:
    """The restores recorded, oldest first (StorageError when one was forged or edited)."""
    found = []
    for obj in storage.list(RESTORE_PREFIX):
        raw = json.loads(storage.get(obj.key))
        lost = tuple(Anchor(int(a["seq"]), str(a["hash"]), str(a["at"])) for a in raw["lost"])
        kept = tuple(str(k) for k in raw.get("kept", ()))
        count = int(raw.get("kept_count", len(kept)))
        name = obj.key[len(RESTORE_PREFIX) :]
        at, by, reason = str(raw["at"]), str(raw["by"]), str(raw["reason"])
        chunks = int(raw.get("kept_chunks", 0))
        rewrites = tuple(_rewrite(w) for w in raw.get("rewrites", ()))
        restore = Restore(int(raw["seq"]), str(raw["hash"]), lost, at, by, reason, kept, name, count, chunks)
        guessed, guessed_chunks = int(raw.get("guessed_count", 0)), int(raw.get("guessed_chunks", 0))
        restore = replace(restore, guessed_count=guessed, guessed_chunks=guessed_chunks)
        found.append(replace(restore, kept_dir=str(raw.get("kept_dir", "")), rewrites=rewrites))
    return sorted(found, key=lambda r: r.at)


def _rewrite(raw: dict[str, Any]) -> KeptRewrite:
    lost = tuple(int(n) for n in raw["lost_chunks"])
    before, after, added = int(raw["kept_before"]), int(raw["kept_after"]), int(raw.get("added", 0))
    text = str(raw["at"]), str(raw["by"]), str(raw["reason"])
    return KeptRewrite(*text, lost, before, after, str(raw["from_dir"]), added)
