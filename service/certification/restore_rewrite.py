"""Writing a restore's kept keys anew when a chunk of them is lost for good (`pension-cert console rewrite-kept`;
docs/security.md Part BA).

A chunk of a restore's kept keys (restore_record.py) that is missing or does not open, with no earlier version to
put back, kept `verify-audit` failing and the orphan sweep of session media stopped for ever. Which keys it held is
unknown, so the rewrite takes the safe side for the citizens' media, keeping: the keys of the chunks that still
read, as the restore named them, and, as guesses (chunks of their own: Restore.guessed_chunks), every session
object no row refers to now, less those a later restore names. A guess never ends a window: the sweep keeps a key
for the window of the oldest restore that named it, and a key only guessed for the latest restore guessing it
(retention.py), so a restore recorded after the rewrite, naming media the rewrite guessed, keeps them its own
window. An object kept that the lost chunk never named (an upload that failed after the restore) stays at most
`RETENTION_DAYS` after the restore, the media's own bound; an object the lost chunk named is never swept early.
The restore's time, hence its keep window, does not change.

Order, as the recording's: every read and check; the new chunks in a folder of their own
(`<record>.r<time>`); the record rewritten in place (the point of no return) with the rewrite in its history
(`rewrites`: who, when, why, the chunks lost, the counts), the damaged folder left as it was found; the caller
writes the audit entry (REWRITE_ACTION) naming the record and the rewrite's time. A rerun after a failure before
the record removes that run's folder; after the record, it writes the missing audit entry ("completed"). Runs
are one at a time: each holds restore_record.exclusive's lock to the commit of its audit entry, so a second run
waits, then finds the keys whole (Part BJ); one whose record changed while it ran anyway (a run of an older version,
without the lock) is refused before its record, its folder removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit_anchor import RESTORE_PREFIX, KeptRewrite, Restore, now_text, read_restores
from service.certification.media_refs import unreferenced_media
from service.certification.restore_record import (
    KeptUnreadableError,
    exclusive,
    kept_dir,
    kept_keys,
    read_chunk,
    record_json,
    remove_unnamed,
    write_kept,
)
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.security import mask_text
from service.infra.storage import MediaStorage

log = logging.getLogger(__name__)
REWRITE_ACTION = "audit.restore_kept_rewritten"


class RewriteRefusedError(Exception):
    """No such restore, its kept keys read whole (nothing to rewrite), or a later restore's do not read either."""


@dataclass(frozen=True)
class Rewritten:
    """The restore as now recorded and its newest rewrite: "rewritten" now, or "completed" (a run that failed after
    rewriting the record, before its audit entry: the caller writes the entry)."""

    restore: Restore
    rewrite: KeptRewrite
    state: Literal["rewritten", "completed"]


def rewrite_kept(db: Session, storage: MediaStorage, name: str, by: str, reason: str) -> Rewritten:
    """Write the kept keys of restore `name` anew (see the module's docstring). RewriteRefusedError as above, and
    when another run rewrote them meanwhile; StorageError when the record does not open or the store refuses a
    write (nothing rewritten before the record)."""
    exclusive(db)  # a second run waits for this one's commit, then finds the keys whole
    restores = read_restores(storage)
    r = next((x for x in restores if x.name == name), None)
    if r is None:
        raise RewriteRefusedError(f"no restore {name!r} is recorded (verify-audit lists each restore's `record`)")
    named, guessed_before, lost = _surviving(storage, r)
    if not lost and len(named) + len(guessed_before) == r.kept_count:
        if r.rewrites and _naming_entry(db, r.name, r.rewrites[-1]) is None:
            return Rewritten(r, r.rewrites[-1], "completed")
        raise RewriteRefusedError(f"the kept keys of restore {name} read whole ({r.kept_count}): nothing to rewrite")
    later = _named_later(storage, restores[restores.index(r) + 1 :])
    guessed = sorted((set(unreferenced_media(db, storage)) | set(guessed_before)) - later - set(named))
    at = now_text()
    folder = f"{name}.r{at.replace(':', '')}"
    chunks = write_kept(storage, folder, sorted(named))  # before the record: it never names a chunk not written
    guessed_chunks = write_kept(storage, folder, guessed, start=chunks)
    who, why = mask_text(by)[:64], mask_text(reason)[:200]
    total = len(named) + len(guessed)
    w = KeptRewrite(at, who, why, tuple(lost), r.kept_count, total, kept_dir(r), len(guessed))
    done = replace(r, kept=(), kept_dir=folder, kept_count=total, rewrites=(*r.rewrites, w))
    done = replace(done, kept_chunks=chunks + guessed_chunks, guessed_count=len(guessed), guessed_chunks=guessed_chunks)
    _refuse_if_rewritten_meanwhile(storage, r, folder)
    storage.put(f"{RESTORE_PREFIX}{name}", record_json(done))
    log.warning(
        "audit chain: the kept keys of restore %s written anew by %s (chunks %s lost; %d keys, %d of them kept on "
        "a guess)", name, who, list(lost), total, len(guessed),
    )  # fmt: skip
    now = [done if x.name == name else x for x in restores]
    remove_unnamed(storage, now, lambda f: f.startswith(f"{name}.r"))  # this restore's failed rewrites
    return Rewritten(done, w, "rewritten")


def _surviving(storage: MediaStorage, r: Restore) -> tuple[list[str], list[str], list[int]]:
    """The keys of `r`'s chunks that read, those it named and those an earlier rewrite guessed, and the numbers of
    the chunks that do not read."""
    named, guessed, lost = list(r.kept), list[str](), list[int]()
    for n in range(r.kept_chunks):
        try:
            (named if n < r.kept_chunks - r.guessed_chunks else guessed).extend(read_chunk(storage, r, n))
        except KeptUnreadableError:
            lost.append(n)
    return named, guessed, lost


def _refuse_if_rewritten_meanwhile(storage: MediaStorage, r: Restore, folder: str) -> None:
    """Runs are meant one at a time: a second one started meanwhile that recorded first took this run's folder for
    a failed run's and removed it. Refused (this run's folder removed): its record would lose that rewrite from the
    history and name a folder deleted."""
    restores = read_restores(storage)
    now = next((x for x in restores if x.name == r.name), None)
    if now is not None and (kept_dir(now), now.rewrites) == (kept_dir(r), r.rewrites):
        return
    remove_unnamed(storage, restores, lambda f: f == folder)
    raise RewriteRefusedError(
        f"another rewrite-kept of restore {r.name} recorded its keys while this one ran: nothing rewritten by this "
        "run (run one at a time; verify-audit shows the keys as now recorded)"
    )


def _named_later(storage: MediaStorage, later: list[Restore]) -> set[str]:
    """The keys the later restores keep (each under its own, later, window)."""
    keys: set[str] = set()
    for x in later:
        try:
            keys.update(kept_keys(storage, x))
        except KeptUnreadableError as exc:
            raise RewriteRefusedError(
                f"the kept keys of the later restore {x.name} do not read either ({exc}): rewrite that one first"
            ) from None
    return keys


def _naming_entry(db: Session, name: str, w: KeptRewrite) -> ConsoleAuditEntry | None:
    """The audit entry of rewrite `w` of restore `name` (None: its commit failed, or a later restore lost it)."""
    for entry in db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == REWRITE_ACTION)):
        detail = entry.detail or {}
        if (detail.get("record"), detail.get("at")) == (name, w.at):
            return entry
    return None
