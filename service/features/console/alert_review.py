"""Marking a supervisor's alert (预警) handled, and the alert a certification without a selfie raises when the
person's earlier certification was revoked as 冒领 (docs/security.md, Part BC).

An alert is a signal of fraud (a certification after the recorded death, one face under two accounts, a staff
certification after a fraud): marking it handled says what was done, in a note kept with it and in the audit chain,
so that nobody buries one with a click. A counter or home-visit certification of a person whose certification was
revoked as impersonation or a wrong accept takes effect at once (the person may be bedridden and alive), and a
supervisor other than the one who recorded it checks it, as a roster change of ID number is checked by someone
other than its importer (identity_alerts.py, which settles those by a finding instead).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from service.certification.errors import InvalidInputError, ServiceError
from service.certification.evidence_hold import checked_note
from service.certification.identity_review import IdentityReviewError, check_reviewer
from service.certification.review import revoked_as_fraud
from service.features.console import accounts, audit_chain, scope
from service.features.console.auth import Staff
from service.features.console.identity_alerts import KIND as IDENTITY_CHANGED
from service.features.console.models import ConsoleAlert
from service.infra.security import mask_text

RECERTIFIED = "recertified_after_fraud"
MAX_NOTE_CHARS = 500
# Why an alert was not marked handled (catalogued codes, shown on the alerts page).
RESOLVE_REFUSALS = frozenset({"ALERT_NOTE", "ALERT_REVIEW_SELF", accounts.UNCONFIRMED})


def raise_if_recertified(
    db: Session, beneficiary_id: int, session_id: str, kind: str, on_date: dt.date, note: str, actor: str
) -> None:
    """A staff certification (`kind`: counter, home visit, activity evidence) just recorded for the person: an alert
    for another supervisor when a certification of theirs was revoked as fraud."""
    if not revoked_as_fraud(db, beneficiary_id):
        return
    text = mask_text(note)[:200]  # the counter's note as typed: an ID number in it masked, as in the audit chain
    detail = {"session": session_id, "kind": kind, "on_date": on_date.isoformat(), "note": text, "actor": actor}
    db.add(ConsoleAlert(kind=RECERTIFIED, beneficiary_id=beneficiary_id, detail=detail))


def resolve_alert(db: Session, staff: Staff, alert_id: int, note: str) -> str | None:
    """Mark alert `alert_id` handled with `note` (what was done), in the unit of work: None when done, or when the
    alert is not one to mark (unknown, out of scope, already handled, a roster change: settled by a finding), else
    the code of why not (no note; the recorder of a staff certification is not its second person, nor its
    granter while the recorder's account awaits confirmation: those refusals are audited too,
    `alert.resolve.refused`). Audited."""
    a = scope.alert(db, staff, alert_id)  # out of the staff member's scope: as missing
    if a is None or a.resolved or a.kind == IDENTITY_CHANGED:
        return None
    try:
        text = mask_text(checked_note(note, "ALERT_NOTE", MAX_NOTE_CHARS))
    except InvalidInputError as exc:
        return exc.code
    if a.kind == RECERTIFIED:
        try:
            check_reviewer(str(a.detail.get("actor", "")), staff.actor)
        except IdentityReviewError:
            # Refused, and recorded (the unit commits: nothing else changed): repeated tries to act alone show.
            detail = {"kind": a.kind, "reason": "ALERT_REVIEW_SELF"}
            audit_chain.record(db, staff.actor, "alert.resolve.refused", str(a.id), detail)
            return "ALERT_REVIEW_SELF"
        try:  # either account unconfirmed, the recorder's granted by `staff` (Part BK): refused and recorded
            accounts.check_second_person(db, staff, str(a.detail.get("actor", "")))
        except ServiceError as exc:
            audit_chain.record(
                db, staff.actor, "alert.resolve.refused", str(a.id), {"kind": a.kind, "reason": exc.code}
            )
            return exc.code
    a.resolved = True
    a.detail = {**a.detail, "resolved_by": staff.username, "resolve_note": text}
    audit_chain.record(db, staff.actor, "alert.resolve", str(a.id), {"kind": a.kind, "note": text})
    return None
