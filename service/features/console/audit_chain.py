"""The console's audit log: every view of personal data and every decision, append-only and hash-chained.

Entry n stores hash_n = sha256(hash_{n-1} ‖ canonical JSON of its own fields). Editing, deleting or
re-ordering any entry breaks the chain from there on, which `verify_chain` reports. The sequence number is
the primary key, so two writers extending the same head cannot both commit (the loser's request fails and
is retried by the user), and the chain never forks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import masked_detail, person_ref
from service.certification.audit_anchor import Anchor, AnchorCheck, anchor_on_commit, check_anchors, read_anchors
from service.certification.models import Beneficiary, utcnow
from service.certification.restore_record import kept_problem
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.db.locks import one_writer_at_a_time
from service.infra.security import mask_text
from service.infra.storage import MediaStorage, StorageError, StorageUnavailableError

if TYPE_CHECKING:
    from service.certification.context import ServiceContext

log = logging.getLogger("service.features.console.audit")
GENESIS = "0" * 64
CHAIN_LOCK = 0x70632D61  # advisory lock id of the chain head ("pc-a")


def entry_hash(
    prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, target: str, detail: dict[str, Any]
) -> str:
    payload = json.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor, action, target, detail],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def person_target(b: Beneficiary) -> str:
    """The target of every entry about person `b` (audit.person_ref: unambiguous, never a clear ID number), the one
    `access_log` finds their 查阅记录 by."""
    return person_ref(b.external_id, b.id)


def record(db: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> int:
    """Append one entry in the caller's transaction; its sequence number. Details must not hold clear ID numbers
    (masked here)."""
    clean = masked_detail(detail)
    # Writers queue here until the holder's transaction ends, so each reads the committed head.
    one_writer_at_a_time(db, CHAIN_LOCK)
    head = db.scalar(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
    seq = 1 if head is None else head.seq + 1
    prev = GENESIS if head is None else head.hash
    # Microseconds dropped: every database stores whole-second precision at least this exactly.
    at = utcnow().replace(microsecond=0)
    # The target is shown in the log as the details are: an ID number in it (a file name, a typed username) masked.
    actor, target = actor[:64], mask_text(target)[:64]
    digest = entry_hash(prev, seq, at, actor, action, target, clean)
    db.add(
        ConsoleAuditEntry(
            seq=seq, at=at, actor=actor, action=action, target=target, detail=clean, prev_hash=prev, hash=digest
        )
    )
    db.flush()
    anchor_on_commit(db)  # the head, outside the database, once this transaction commits
    if action.startswith("user."):
        # An account change names its account and what it set (no person's data): after a restore from an older
        # dump the logs say which accounts to check (docs/operations.md, "Restoring from a backup").
        log.info("console audit #%d %s %s %s %s", seq, actor, action, target, _logged(clean))
    else:  # the target (a record id) stays in the database: log lines carry only who did what
        log.info("console audit #%d %s %s", seq, actor, action)
    return seq


def _logged(detail: dict[str, Any]) -> str:
    """An account change's detail for its log line, without the event id (it only ties the entry to its record)."""
    return json.dumps({k: v for k, v in detail.items() if k != "event"}, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify_chain(db: Session, batch: int = 5000, from_seq: int = 1) -> ChainCheck:
    """Recompute every hash in order from `from_seq` (1: the whole log); the first entry that does not match
    is reported. A later start trusts the entry just before it, so it checks the recent tail quickly; the full
    check (CLI `pension-cert console verify-audit`, or the viewer's full check) trusts nothing."""
    prev, expected_seq, count, last_seq = GENESIS, 1, 0, 0
    if from_seq > 1:
        anchor = db.get(ConsoleAuditEntry, from_seq - 1)
        if anchor is not None:
            prev, expected_seq, last_seq = anchor.hash, from_seq, from_seq - 1
    while True:
        rows = db.scalars(
            select(ConsoleAuditEntry)
            .where(ConsoleAuditEntry.seq > last_seq)
            .order_by(ConsoleAuditEntry.seq)
            .limit(batch)
        ).all()
        if not rows:
            return ChainCheck(True, count)
        for e in rows:
            if e.seq != expected_seq:
                return ChainCheck(False, count, e.seq, f"entry {expected_seq} is missing")
            if e.prev_hash != prev:
                return ChainCheck(False, count, e.seq, "previous-hash link broken")
            if entry_hash(prev, e.seq, e.at, e.actor, e.action, e.target, e.detail) != e.hash:
                return ChainCheck(False, count, e.seq, "content does not match its hash")
            prev, expected_seq, count, last_seq = e.hash, e.seq + 1, count + 1, e.seq


@dataclass(frozen=True)
class LogCheck:
    """The log's check: its hash chain, and its anchors in the media store (None: the store did not answer, so
    they were not checked; `unavailable` says why)."""

    chain: ChainCheck
    anchors: AnchorCheck | None
    unavailable: str = ""

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.anchors is not None and self.anchors.ok


def check_log(
    db: Session, storage: MediaStorage, full: bool = True, from_seq: int = 1, daily: Sequence[Anchor] | None = None
) -> LogCheck:
    """`pension-cert console verify-audit`'s check, the one the audit viewer shows too: the chain (from `from_seq`)
    and the anchors kept outside the database, which alone show a cut tail or a chain recomputed whole (the chain
    alone passed after the newest entries were deleted: the auditor's review, F6). `full`: every daily anchor and
    each restore's kept keys (the orphan sweep relies on them); otherwise the head and the newest anchor only.
    `daily`: those daily anchors as the caller read them already (`check_anchors`)."""
    chain = verify_chain(db, from_seq=from_seq)
    try:
        anchored = check_anchors(db, storage, newest=not full, daily=daily)
        kept = kept_problem(storage, anchored.restores) if anchored.ok and full else ""
    except StorageUnavailableError as exc:
        return LogCheck(chain, None, str(exc))
    if kept:
        anchored = AnchorCheck(False, anchored.anchors, kept, None, anchored.restores)
    return LogCheck(chain, anchored)


def daily_check(ctx: ServiceContext, at: dt.datetime, /) -> dict[str, int]:
    """The daily upkeep's check of the log (FeatureHooks.upkeep, run before the day's anchor is written: an anchor
    of a cut log would bless the cut): `check_log` from the newest anchor on (one day's entries; the anchor vouches
    for those before it), the head and that anchor. A failure is an ALERT in the log; the full check stays
    `verify-audit`'s (docs/operations.md)."""
    try:
        newest: list[Anchor] | None = read_anchors(ctx.storage, newest=True)
    except StorageError:  # down, or a forged anchor: check_log reads it again and says which
        newest = None
    with ctx.db() as db:
        # The anchor read here is the one checked: read once (a list and a get of the media store each).
        done = check_log(db, ctx.storage, full=False, from_seq=newest[0].seq if newest else 1, daily=newest)
    if done.anchors is None:
        log.warning("audit log check: the media store does not answer (%s): anchors not checked", done.unavailable)
        return {"audit_log_unchecked": 1}
    if not done.ok:
        problem = done.chain.problem or done.anchors.problem
        log.error("ALERT audit log check failed: %s: run pension-cert console verify-audit", problem)
        return {"audit_log_failed": 1}
    return {"audit_log_failed": 0}
