"""Anchors of the console audit chain outside the database (issue 19).

The chain (service/features/console/audit_chain.py) shows an edited, deleted or re-ordered entry, but a writer with full
access to the database could rewrite the whole log and recompute every hash. An anchor is the head (sequence
number and hash) at a moment, written to the media store — the bucket (with object lock / versioning in
production) or the media folder, which the database user cannot write — as a new object per anchor, sealed with
the media key: AES-GCM authenticates it, so an anchor cannot be forged or edited without that key either.
Verification checks the chain and that every anchored entry still carries its anchored hash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.models import utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.storage import MediaStorage, StorageError

log = logging.getLogger(__name__)
PREFIX = "audit/anchors/"


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str


@dataclass(frozen=True)
class AnchorCheck:
    ok: bool
    anchors: int
    problem: str = ""
    seq: int | None = None


def write_anchor(db: Session, storage: MediaStorage) -> Anchor | None:
    """Anchor the current head (nothing to anchor in an empty log). Idempotent per head."""
    head = db.scalar(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
    if head is None:
        return None
    anchor = Anchor(head.seq, head.hash, utcnow().isoformat(timespec="seconds") + "Z")
    key = f"{PREFIX}{head.seq:012d}"
    if not storage.exists(key):
        storage.put(key, json.dumps(anchor.__dict__, sort_keys=True).encode())
        log.info("audit chain anchored at #%d", head.seq)
    return anchor


def read_anchors(storage: MediaStorage) -> list[Anchor]:
    anchors = []
    for obj in storage.list(PREFIX):
        raw = json.loads(storage.get(obj.key))  # StorageError when the object was forged or edited
        anchors.append(Anchor(int(raw["seq"]), str(raw["hash"]), str(raw["at"])))
    return sorted(anchors, key=lambda a: a.seq)


def check_anchors(db: Session, storage: MediaStorage) -> AnchorCheck:
    """Every anchored entry still exists with its anchored hash (run after `verify_chain` has passed: together
    they show that nothing before the newest anchor was rewritten, even with every hash recomputed)."""
    try:
        anchors = read_anchors(storage)
    except StorageError as exc:
        return AnchorCheck(False, 0, f"an anchor does not open (forged or edited): {exc}")
    for a in anchors:
        entry = db.get(ConsoleAuditEntry, a.seq)
        if entry is None:
            return AnchorCheck(False, len(anchors), f"entry {a.seq} anchored on {a.at} is gone", a.seq)
        if entry.hash != a.hash:
            return AnchorCheck(False, len(anchors), f"entry {a.seq} differs from its anchor of {a.at}", a.seq)
    return AnchorCheck(True, len(anchors))
