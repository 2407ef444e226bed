"""Withdrawals a database restore must not take back (docs/security.md, Part BU; docs/operations.md, "Restoring
from a backup").

A person's withdrawal of the consent to keep their face template (template_withdrawal.py: H5 "我的信息" or the
counter), a relative's of their own template (the proxy feature's own_template.py), a binding the elder ended
(elder_bindings.py) and an admin's change of a staff account (the console's account_kept.py: a dismissed reviewer
disabled) live in the database only: a dump taken before one brings the template back with its consent,
the binding active (PIPL art. 15, 47), or the account as it was, and the daily run does not take them away (not
retention erasures). So
each is also recorded as a small object under PREFIX in the media store, sealed with the media key and written once
its transaction has committed (audit_anchor.put_on_commit, as the audit head): a restore does not reach the store.
Each carries an event id that its audit entry names (`detail["event"]`).

`pension-cert console record-restore` then does again each one the restored database does not reflect
(withdrawal_replay.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import string
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from service.certification.audit_anchor import now_text, put_on_commit
from service.certification.models import AuditEntry
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra.security import mask_text
from service.infra.storage import MediaStorage

log = logging.getLogger(__name__)
PREFIX = "audit/withdrawals/"
RESTORE_ACTOR = "cli:restore"  # who a re-application's audit entry names (the OS user is in `audit.restored`)


@dataclass(frozen=True)
class KeptWithdrawal:
    """One recorded withdrawal: its audit action (`kind`) and target, what it acts on (`ref`: the person's external
    id, the relative's account, the binding), when, and the event id its audit entry names."""

    kind: str
    target: str
    ref: str
    at: str
    event: str
    value: str = ""  # what the change set, as JSON, where redoing it needs it (a staff account's: account_kept.py)

    def detail(self) -> dict[str, object]:
        """What a re-application adds to its audit entry (with the service function's own detail)."""
        return {"event": self.event, "withdrawn_at": self.at, "via": "restore"}

    def when(self) -> dt.datetime:
        """When it was done (naive UTC, as the models' times)."""
        return dt.datetime.strptime(self.at, "%Y-%m-%dT%H:%M:%SZ")


def new_event() -> str:
    """An event id: letters only, so that the audit detail's masking of number-like runs never alters it."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))


def note(db: Session, kind: str, target: str, ref: str, event: str = "", value: str = "") -> str:
    """Record withdrawal `kind` of `ref` (audited as `target`; `value`: what it set, when redoing it needs that) in
    the media store once `db` commits; its event id (`event`, or a new one), for the audit entry's detail. A
    re-application (`event` given) records nothing: the object that led to it stays."""
    if event:
        return event
    event, at = new_event(), now_text()
    body = {"kind": kind, "target": target, "ref": ref, "at": at, "event": event} | ({"value": value} if value else {})
    if not put_on_commit(db, f"{PREFIX}{at.replace(':', '')}-{event}", json.dumps(body, sort_keys=True).encode()):
        log.warning("%s of %s not recorded in the media store (no store): a restore cannot redo it", kind, ref)
    return event


def read_withdrawals(storage: MediaStorage) -> list[KeptWithdrawal]:
    """The recorded withdrawals, oldest first (StorageError when one was forged, edited or sealed with another key)."""
    found = []
    for obj in storage.list(PREFIX):
        raw = json.loads(storage.get(obj.key))
        kind, target, ref, at, event = (str(raw[k]) for k in ("kind", "target", "ref", "at", "event"))
        found.append(KeptWithdrawal(kind, target, ref, at, event, str(raw.get("value", ""))))
    return sorted(found, key=lambda w: (w.at, w.event))


def reflected(db: Session, w: KeptWithdrawal) -> bool:
    """Whether the database holds `w`'s audit entry (the dump had it, or a re-application wrote it): then the
    withdrawal, or what came after it, is in the database. Both trails: the counter audits in the staff chain."""
    for model, target in ((AuditEntry, AuditEntry.target == w.target), (ConsoleAuditEntry, _chain_target(w.target))):
        details = db.scalars(select(model.detail).where(model.action == w.kind, target))
        if any((d or {}).get("event") == w.event for d in details):
            return True
    return False


def _chain_target(target: str) -> ColumnElement[bool]:
    """The staff chain's entries that may name `target` (an external id as the records' trail keeps it): the chain
    stores a target masked, and a person keyed by an ID number as `audit.person_ref` names them, the mask with their
    row id (`4201**********0011#17`; the bare mask before Part CO). Before: only the clear id was matched, so a
    counter withdrawal of such a person was never found and `record-restore` redid it. The mask is shared by others:
    the event id, unique, tells their entries apart."""
    masked = mask_text(target)
    if masked == target:
        return ConsoleAuditEntry.target == target
    return or_(
        ConsoleAuditEntry.target == masked[:64],
        ConsoleAuditEntry.target.startswith(f"{masked[:50]}#", autoescape=True),
    )
