"""Audit entries: who did what to which record. Details never hold an unmasked ID number.

One of two trails, by design (docs/architecture.md, "One home per rule"). This one (table ``audit_entries``) is
the history of the records — sessions, roster imports, bindings, purges — whoever acted: a channel, a worker, an
API client, a staff member, the retention job. The domain reads it too (`attempts.requesters` finds who opened a
session by its ``session.create`` entry). It is written in the caller's transaction, with no global lock, so the
busy paths (uploads, decisions) never wait on each other for it.

The other, the staff audit chain (service/features/console/audit_chain.py, table ``console_audit`` in
staff_audit.py), is the accountability of the console's users: every view of personal data, claim, login and
decision with its reason, hash-chained and anchored outside the database. A console accept/reject is therefore
written to both: here as ``session.review`` (its effect on the session, the same entry an API review writes),
there as ``case.decide.<stage>`` (the staff member's act). Merging them would either put every upload and worker
decision behind the chain's single-head lock or take the staff decisions out of the sessions' history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from service.certification.models import AuditEntry
from service.infra.observability import metrics
from service.infra.security import mask_number_reads, mask_text, mask_values

log = logging.getLogger("service.certification.audit")
# A look-up of one person (by external id or ID number) that found nobody: audited like a read, since many of
# them are how a client would learn who is a pensioner.
MISS = "beneficiary.miss"
# A known API key refused an operator's route (a channel key asking for the lists, the exports, a review).
DENIED = "access.denied"


def masked_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """An entry's details with every ID number in them masked: both trails store them so (this one and the staff
    chain's `audit_chain.record`). Details carry text others typed (an API client's `reviewer`, a staff member's
    note, a file name), where a number can be; an audit log must not become a list of clear ID numbers. (Record
    ids, external ids of 14 or 16 digits included, stay readable: the log must say whose record was read.)"""
    plain: dict[str, Any] = json.loads(json.dumps(detail or {}, ensure_ascii=False, default=str))  # as stored
    return {key: mask_values(value) for key, value in plain.items()}


def person_ref(external_id: str, row_id: int) -> str:
    """How an audit entry names a person it is about (the staff chain's target, a list read's `shown`): their
    external id; when that is an ID number (a bureau keying pensioners by the 社会保障号码), masked as every entry
    stores it, with their row id (`4201**********0011#17`): a mask alone is shared by thousands of people, so
    "who looked at X" named everyone with X's mask (the auditor's review, F1)."""
    masked = mask_text(external_id)
    return masked[:64] if masked == external_id else f"{masked[:50]}#{row_id}"


def asked(text: str) -> str:
    """What a look-up that found nobody asked for, as its audit entry keeps it: cut to size, and a long run of
    digits masked as a number is (a mistyped ID number is one digit short or long, and is no record's id)."""
    return mask_number_reads(text)[:64]  # masked, then cut: a number across the cut keeps no clear digits


def audit(db: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """One entry in the caller's transaction. The actor (it may carry a typed staff id) and the details are masked
    before they are cut to size; the target is a record id (a session id, an external id) and is stored as given,
    since the domain finds entries by it."""
    who = mask_text(actor)[:64]
    db.add(AuditEntry(actor=who, action=action, target=target[:64], detail=masked_detail(detail)))
    log.info("audit %s %s %s", who, action, mask_text(target))


def audit_read(db: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Who read whose personal data through the API or the CLI (every read, like the console's views), or tried to
    and found nobody: committed now, as a read changes nothing else and a miss is answered with an error that
    rolls the request's transaction back."""
    audit(db, actor, action, target, detail)
    db.commit()


@contextmanager
def refusal_entry(actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> Iterator[None]:
    """Around the write of a refusal's entry, in a unit of its own, just before its 4xx: with the database
    unreachable or busy, the refusal is still answered with its own code and reason (a 503 hid it from the
    caller, and told an attacker probing an operator's route that the database was down), and the lost entry is
    said at ERROR with everything it would have held, masked, and counted (`pension_cert_refusal_audits_lost`),
    so an operator can find it in the log. Only the refusal's entry is lost: it stores nothing else."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        metrics.REFUSAL_AUDITS_LOST.inc()
        log.error(
            "audit entry lost (database unavailable: %s): %s %s %s %s",
            type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
            mask_text(actor)[:64],
            action,
            mask_text(target),
            masked_detail(detail),
        )
