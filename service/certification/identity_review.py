"""A supervisor's finding on a roster change of ID number: the same person (a typo corrected) or another person.

A roster import that gives a record another ID number takes effect at once and treats the number's person as a new
one (service/certification/roster_identity.py, `identity_changed`): the enrolled face is deleted, the certification's
validity reset to the grace date, the relatives' bindings revoked. When the change only corrected a typo, that
burdens the same elderly person and their family: certify again within the grace date, each relative bind again and
the elder consent again. A supervisor other than the importer checks the change with the benefit system; a "same
person" finding gives back what can be given back: the record's validity and last certification (never shortening a
later date; never what a certification revoked since gave: revocation.revalidate_all), its earlier certifications'
standing in the cycle run, and, through the features, the relatives' bindings the change revoked. The deleted face is
not restored (the next certification enrols again). The record's identity moment goes back too (`identity_since`), so
the cases opened before the change and still in staff review can be accepted again
(service/certification/current_person.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.contract import FeatureHooks, IdentityConfirmed
from service.certification.cycle import CycleRules, resume
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, Beneficiary, BeneficiaryStatus
from service.certification.revocation import revalidate_all
from service.infra.security import mask_text

CHANGE_ACTION = "roster.identity_changed"


class IdentityReviewError(ServiceError):
    """A finding that cannot be applied: `IDENTITY_CHANGE_UNKNOWN` (no such change of this record),
    `IDENTITY_CHANGE_SUPERSEDED` (the roster changed the record's number again since: the later change is the
    one to check), `IDENTITY_REVIEW_SELF` (the importer cannot be the second person)."""


@dataclass(frozen=True)
class SamePerson:
    """What a same-person finding gave back."""

    valid_until: dt.date | None
    resumed: bool
    restored: dict[str, int]  # the features' counts (e.g. the proxy feature's bindings restored / kept ended)


def check_reviewer(importer: str, actor: str) -> None:
    """The second person is not the one who imported the change (four eyes). Compared as the audit trail keeps an
    actor (masked, then cut to 64 characters: `audit.audit`): an importer recorded as `staff:1101**********0021`
    (a staff name that is an ID number) is the same person as `staff:110105194912310021`. Two different such
    names masked alike are refused too (another supervisor then settles it): never a person passing as another."""
    if _as_kept(importer) == _as_kept(actor):
        raise IdentityReviewError("IDENTITY_REVIEW_SELF", "the importer of a change cannot confirm it")


def _as_kept(actor: str) -> str:
    return mask_text(actor)[:64]


def confirm_same_person(
    db: Session,
    hooks: FeatureHooks,
    beneficiary_id: int,
    import_id: int,
    actor: str,
    today: dt.date,
    rules: CycleRules,
) -> SamePerson:
    """Apply a same-person finding on the change import `import_id` made to the record (locked first: the lock
    order of service/certification/lock_order.py, then the features lock their rows). Audited."""
    b = db.get(Beneficiary, beneficiary_id, with_for_update=True)
    if b is None:
        raise IdentityReviewError("IDENTITY_CHANGE_UNKNOWN", "no such record")
    change = _latest_change(db, b.external_id, import_id)
    check_reviewer(str(change.get("actor_of_import", "")), actor)
    kept_until, kept_certified = b.valid_until, b.last_certified_on
    since = change.get("identity_since_before")
    b.identity_since = dt.datetime.fromisoformat(since) if since else None
    # The dates before the change, less what a certification of the person revoked since gave (a fraud revoked
    # while it counted for nobody: revocation.revalidate_all, the revocation's own recomputation).
    b.valid_until = _date(change.get("valid_until_before"))
    b.last_certified_on = _date(change.get("last_certified_on_before"))
    revalidate_all(db, b, rules)
    # Never shortened, as the roster's own dates never shorten a validity: the row that corrected the number may
    # carry a later date, or a certification may have been recorded since. A grace date later than the person's
    # own validity stays too (a few weeks' more time, not a lapse).
    b.valid_until = _later(b.valid_until, kept_until)
    b.last_certified_on = _later(b.last_certified_on, kept_certified)
    # Whether the date is a grace's as it was before the change (a change recorded before the mark: as it is now).
    b.grace_dated = bool(change.get("grace_dated_before", b.grace_dated))
    resumed = b.status == BeneficiaryStatus.SUSPENDED and b.valid_until is not None and b.valid_until >= today
    if resumed:  # suspended only for the grace date the change gave
        resume(db, b, today)
    db.flush()
    restored = hooks.identity_confirmed(db, IdentityConfirmed(b.id, b.external_id, import_id, actor))
    detail = {
        "import": import_id,
        "valid_until": b.valid_until.isoformat() if b.valid_until else None,
        "resumed": resumed,
    }
    audit(db, actor, "roster.identity_confirmed", b.external_id, detail | restored)
    return SamePerson(b.valid_until, resumed, restored)


def _latest_change(db: Session, external_id: str, import_id: int) -> dict[str, Any]:
    """The audited change `import_id` made to the record, with its importer; refused unless it is the record's
    latest change of number."""
    entries = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == CHANGE_ACTION, AuditEntry.target == external_id)
        .order_by(AuditEntry.id.desc())
    ).all()
    mine = [e for e in entries if e.detail.get("import") == import_id]
    if not mine:
        raise IdentityReviewError("IDENTITY_CHANGE_UNKNOWN", "no change of ID number by this import")
    if entries[0].id != mine[0].id:
        raise IdentityReviewError(
            "IDENTITY_CHANGE_SUPERSEDED", "the roster changed this record's ID number again since"
        )
    return dict(mine[0].detail) | {"actor_of_import": mine[0].actor}


def _later(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    return b if a is None else a if b is None else max(a, b)


def _date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) and value else None
