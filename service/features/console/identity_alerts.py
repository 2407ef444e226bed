"""A roster re-import that gave a record another ID number, raised as a supervisor's alert (预警).

Such a change is a typo corrected, or the record (and its pension) handed to another person: the import is made
by one member of staff (or the benefit system's key), so a second person must see each one. The import's
transaction raises one alert per change (``FeatureHooks.identity_changed``, registered by
service/features/install.py), naming both masked numbers, the import and who made it; a supervisor other than
the importer checks it against the benefit system's records and records the finding: the same person (a typo
corrected: what the change took is given back) or another person (the change stands).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.contract import IdentityChange
from service.certification.errors import ServiceError
from service.certification.identity_review import IdentityReviewError, check_reviewer, confirm_same_person
from service.certification.models import Beneficiary
from service.features.console import accounts, audit_chain, scope
from service.features.console.auth import Staff
from service.features.console.models import ConsoleAlert
from service.infra.clock import local_today

KIND = "roster_identity_changed"


def raise_identity_alert(db: Session, change: IdentityChange, /) -> None:
    """An `IdentityChangedHook`: one alert for this change, in the import's transaction."""
    detail = {
        "from": change.masked_before,
        "to": change.masked_after,
        "name_changed": change.name_changed,
        "import": change.import_id,
        "actor": change.actor,
    }
    db.add(ConsoleAlert(kind=KIND, beneficiary_id=change.beneficiary_id, detail=detail))


# A supervisor's finding, as the alerts page offers it.
FINDINGS = {"same_person": "同一人，更正录入错误", "other_person": "另一人，账户已交给他人"}
# Why a finding was not recorded (catalogued codes, shown on the alerts page).
FINDING_REFUSALS = frozenset({"FIELD_INVALID", "IDENTITY_REVIEW_SELF", "IDENTITY_CHANGE_UNKNOWN", accounts.UNCONFIRMED})


def settle_identity_alert(db: Session, ctx: ServiceContext, staff: Staff, alert_id: int, finding: str) -> str | None:
    """Record a supervisor's finding on a roster change alert, in the unit of work: None when done (or when the
    alert is not one to settle: unknown, out of scope, another kind, already settled), else the code of why not
    (the importer is not the second person; a change superseded by a later one). A same-person finding gives
    back what the change took (service/certification/identity_review.py). Audited in the staff chain."""
    if finding not in FINDINGS:
        return "FIELD_INVALID"
    a = scope.alert(db, staff, alert_id)
    if a is None or a.kind != KIND or a.beneficiary_id is None:
        return None
    try:  # either account unconfirmed, the importer's granted by `staff` (Part BK): refused and recorded
        accounts.check_second_person(db, staff, str(a.detail.get("actor", "")))
    except ServiceError as exc:
        audit_chain.record(db, staff.actor, "alert.identity.refused", str(a.id), {"reason": exc.code})
        return exc.code
    # The person's row first, then the alert (re-read): two supervisors settling it at once are serialised.
    db.execute(select(Beneficiary.id).where(Beneficiary.id == a.beneficiary_id).with_for_update())
    db.refresh(a, with_for_update=True)
    if a.resolved:
        return None
    restored: dict[str, int | bool] = {}
    try:
        check_reviewer(str(a.detail.get("actor", "")), staff.actor)
        if finding == "same_person":
            today = local_today(ctx.settings)
            done = confirm_same_person(
                db, ctx.hooks, a.beneficiary_id, int(a.detail["import"]), staff.actor, today, ctx.rules
            )
            restored = {**done.restored, "resumed": done.resumed}
    except IdentityReviewError as exc:
        if exc.code == "IDENTITY_REVIEW_SELF":  # the importer acting alone: recorded, as REVOKE_SELF (Part BN)
            audit_chain.record(db, staff.actor, "alert.identity.refused", str(a.id), {"reason": exc.code})
        if exc.code != "IDENTITY_CHANGE_SUPERSEDED":
            return exc.code
        # A later change of the record stands until its own finding: this one is recorded, nothing given back.
        restored = {"superseded": True}
    a.resolved = True
    a.detail = {**a.detail, "finding": finding, "by": staff.username, "restored": restored}
    audit_chain.record(db, staff.actor, f"alert.identity.{finding}", str(a.id), dict(restored))
    return None
