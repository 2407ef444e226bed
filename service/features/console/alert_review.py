"""Marking a supervisor's alert (预警) handled, and the alert a certification without a selfie raises when the
person's earlier certification was revoked as 冒领 (docs/security.md, Part BC).

An alert is a signal of fraud (a certification after the recorded death, one face under two accounts, a staff
certification after a fraud): marking it handled says what was done, in a note kept with it and in the audit chain,
so that nobody buries one with a click. A counter or home-visit certification of a person whose certification was
revoked as impersonation or a wrong accept takes effect at once (the person may be bedridden and alive), and a
supervisor other than the one who recorded it checks it, as a roster change of ID number is checked by someone
other than its importer (identity_alerts.py, which settles those by a finding instead). Every other counter or
home-visit certification is checked the same way (Part BN: a bureau's 经办 / 复核, the recorder's word alone kept
a dead person's pension flowing), under its own kind, STAFF_CERTIFIED: one open alert per person and recorder, a
later certification added to it (a reviewer's flood of certifications raises no flood of alerts). An import of
activity evidence (a bank's or hospital's record, imported by a supervisor with its source and reference) that
certified anyone is checked as a whole: one EVIDENCE_IMPORTED alert for the file (a made-up one-row CSV certified
on one supervisor's word alone).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.errors import InvalidInputError, ServiceError
from service.certification.evidence_hold import checked_note
from service.certification.identity_review import IdentityReviewError, check_reviewer
from service.certification.models import Beneficiary
from service.certification.revocation import revoked_as_fraud
from service.features.console import accounts, audit_chain, scope
from service.features.console.auth import Staff
from service.features.console.identity_alerts import KIND as IDENTITY_CHANGED
from service.features.console.look_alikes import other_people
from service.features.console.models import ConsoleAlert
from service.infra.security import mask_text

RECERTIFIED = "recertified_after_fraud"
STAFF_CERTIFIED = "staff_certified"  # a counter or home-visit certification, for a second supervisor to check
EVIDENCE_IMPORTED = "evidence_imported"  # an activity-evidence import that certified anyone, as a whole
CHECKED_KINDS = frozenset({"counter", "home_visit"})  # alt_cert.KINDS a staff member's word alone certifies
# Alerts whose recorder may not mark them handled.
SECOND_CHECKED = frozenset({RECERTIFIED, STAFF_CERTIFIED, EVIDENCE_IMPORTED})
MAX_MERGED = 100  # certifications named in one open STAFF_CERTIFIED alert besides its first (all are counted)
MAX_LISTED_PEOPLE = 1000  # an import alert names its first 1000 people (each certification names its file too)
MAX_NOTE_CHARS = 500
OPEN_SHOWN = 500  # open alerts listed, oldest first (the rest counted by kind, listed as the first are handled)
HANDLED_SHOWN = 100  # handled alerts listed after the open ones, newest first
# Why an alert was not marked handled (catalogued codes, shown on the alerts page).
RESOLVE_REFUSALS = frozenset({"ALERT_NOTE", "ALERT_REVIEW_SELF", "ALERT_CHANGED", accounts.UNCONFIRMED})


def raise_if_recertified(
    db: Session, beneficiary_id: int, session_id: str, kind: str, on_date: dt.date, note: str, actor: str
) -> None:
    """A staff certification (`kind`: counter, home visit, activity evidence) just recorded for the person: an alert
    for another supervisor when a certification of theirs was revoked as fraud (RECERTIFIED, any kind), else for a
    counter or home visit a member of staff recorded (STAFF_CERTIFIED; `actor` a console account), added to the
    open one of the same person and recorder if any: one alert at most. Call with the person's row locked."""
    if revoked_as_fraud(db, beneficiary_id):
        alert_kind = RECERTIFIED
    elif kind in CHECKED_KINDS and actor.startswith("staff:"):
        alert_kind = STAFF_CERTIFIED
    else:
        return
    text = mask_text(note)[:200]  # the counter's note as typed: an ID number in it masked, as in the audit chain
    detail = {"session": session_id, "kind": kind, "on_date": on_date.isoformat(), "note": text, "actor": actor}
    if alert_kind == STAFF_CERTIFIED:
        # The person's row is locked (alt_cert.certify_alternative), so is any close of their alert: an open one of
        # this recorder's takes this certification too.
        q = select(ConsoleAlert).where(
            ConsoleAlert.beneficiary_id == beneficiary_id,
            ConsoleAlert.kind == STAFF_CERTIFIED,
            ConsoleAlert.resolved.is_(False),
        )
        same = next((a for a in db.scalars(q.order_by(ConsoleAlert.id)) if a.detail.get("actor") == actor), None)
        if same is not None:
            more = [*same.detail.get("more", []), detail][:MAX_MERGED]  # the first ones named, all counted
            same.detail = {**same.detail, "more": more, "count": certifications(same) + 1}
            return
    db.add(ConsoleAlert(kind=alert_kind, beneficiary_id=beneficiary_id, detail=detail))


def raise_for_import(db: Session, actor: str, filename: str, people: list[Beneficiary]) -> None:
    """An activity-evidence import by `actor` certified `people` (none: nothing to check): one alert for the file,
    under its first person (the alerts page lists an alert under a person, in that person's region scope)."""
    if not people:
        return
    detail = {
        "actor": actor,
        "file": filename[:128],
        "count": len(people),
        "people": [p.external_id for p in people[:MAX_LISTED_PEOPLE]],
    }
    db.add(ConsoleAlert(kind=EVIDENCE_IMPORTED, beneficiary_id=people[0].id, detail=detail))


def certifications(a: ConsoleAlert) -> int:
    """How many certifications alert `a` names (a STAFF_CERTIFIED alert takes a recorder's later ones): the
    alerts page's close form carries it, and a close of an alert that has more since is refused (ALERT_CHANGED)."""
    return int(a.detail.get("count", 1))


def resolve_alert(db: Session, staff: Staff, alert_id: int, note: str, seen: int | None = None) -> str | None:
    """Mark alert `alert_id` handled with `note` (what was done), in the unit of work: None when done, or when the
    alert is not one to mark (unknown, out of scope, already handled, a roster change: settled by a finding), else
    the code of why not (no note; the recorder of a staff certification is not its second person, nor its
    granter while the recorder's account awaits confirmation: those refusals are audited too,
    `alert.resolve.refused`). Audited."""
    a = scope.alert(db, staff, alert_id)  # out of the staff member's scope: as missing
    if a is None or a.kind == IDENTITY_CHANGED:
        return None
    # The person's row first, then the alert (re-read), as identity_alerts.py: two supervisors closing it at once
    # are serialised, and the second sees it handled (its note kept, not overwritten).
    if a.beneficiary_id is not None:
        db.execute(select(Beneficiary.id).where(Beneficiary.id == a.beneficiary_id).with_for_update())
    db.refresh(a, with_for_update=True)
    if a.resolved:
        return None
    if seen is not None and seen != certifications(a):  # `seen`: how many the page closing it showed
        return "ALERT_CHANGED"
    try:
        text = mask_text(checked_note(note, "ALERT_NOTE", MAX_NOTE_CHARS))
    except InvalidInputError as exc:
        return exc.code
    if a.kind in SECOND_CHECKED:
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


Row = tuple[ConsoleAlert, Beneficiary]


@dataclass
class AlertList:
    """The alerts page: every open alert in scope counted by kind (`open_by_kind`), the oldest OPEN_SHOWN of them
    (of `kind` if asked) then the newest HANDLED_SHOWN handled ones (`rows`), `unlisted` open ones left out."""

    rows: list[Row]
    others: dict[int, Beneficiary]
    open_by_kind: dict[str, int]
    unlisted: int


def list_alerts(db: Session, staff: Staff, kind: str | None = None) -> AlertList:
    """The alerts `staff` sees (scope.alerts_in_scope). Open ones oldest first and never capped silently: the newest
    200 of all once let one reviewer's (or a season's) counter certifications push an open certified_after_death
    alert off the page (Part BN)."""

    def in_scope(
        resolved: bool, limit: int | None
    ) -> tuple[list[tuple[ConsoleAlert, Beneficiary]], dict[int, Beneficiary]]:
        q = (
            select(ConsoleAlert, Beneficiary)
            .join(Beneficiary, Beneficiary.id == ConsoleAlert.beneficiary_id)
            .where(scope.region_filter(staff, Beneficiary.region), ConsoleAlert.resolved.is_(resolved))
        )
        if kind is not None and resolved:
            q = q.where(ConsoleAlert.kind == kind)
        q = q.order_by(ConsoleAlert.id.desc() if resolved else ConsoleAlert.id).limit(limit)
        found = [(a, b) for a, b in db.execute(q).all()]
        others = other_people(db, [a for a, _ in found])
        return scope.alerts_in_scope(staff, found, others), others

    open_rows, others = in_scope(False, None)
    counts = Counter(a.kind for a, _ in open_rows)
    listed = [(a, b) for a, b in open_rows if kind is None or a.kind == kind]
    handled, handled_others = in_scope(True, HANDLED_SHOWN)
    return AlertList(listed[:OPEN_SHOWN] + handled, others | handled_others, dict(counts), len(listed[OPEN_SHOWN:]))
