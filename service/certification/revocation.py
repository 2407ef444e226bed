"""A supervisor revokes an accepted certification found fraudulent afterwards.

冒领: a relative certified with the dead parent's face or photo; 错误受理: a wrong person accepted, found on
re-inspection. Until now such a certification stayed: its certificate read valid in the public check until its
date, and it kept the person's validity (and payment) running. A revocation (by a supervisor: the console checks
the role and the region scope) keeps the row, marks it revoked and:

- the certificate's public check reads revoked (已撤销) from then on (service/certification/certificates.py), and
  no new copy is served to its holder;
- it counts toward nobody's validity (`models.in_force`: the cycle run), and the record's validity and last
  certification are recomputed without it (`revalidate`): the next daily run then treats the person as the
  existing rules say (due soon, or lapsed and suspended), with its guard, its shelter for a certification being
  decided, and the suspension exported to the payment system. Nothing is suspended here: one path suspends;
- the face template is dropped when the revoked session (or one accepted after it, compared with its face) may have
  enrolled it (`_drop_template`): the next certification is compared with the ID card again, and a job that
  compared the person's next video with it meanwhile sends its accept to staff (`processing._apply`);
- the person is to be told (`notice_state` due: the WeChat channel's schedule tells them, or settles that nothing
  can be told, however long after: service/features/wechat/revoked.py);
- revoked as impersonation or a wrong accept, the session's media (card, video: the evidence) are held from the
  retention purge for `hold_days` (EVIDENCE_HOLD_DAYS, the end stored with the hold:
  service/certification/evidence_hold.py); `Revoked.evidence` says whether they were (and `evidence_held_until`
  until when), or were deleted already (nothing to hold), whichever route revoked. The session's row is locked
  before the person's (lock_order.py).

Revoked once, for good: a second revocation is refused (CERTIFICATION_REVOKED), and nothing un-revokes one; the
person certifies again. Audited with the actor, the reason and the note (ID numbers masked).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.certification import evidence_hold, second_person
from service.certification.audit import audit
from service.certification.current_person import made_for_current_person
from service.certification.cycle import CycleRules, valid_until
from service.certification.errors import InvalidInputError, NotFoundError, ServiceError
from service.certification.evidence_hold import Evidence, checked_note, hold_for_revocation
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession, in_force, utcnow
from service.infra.security import mask_text

ACTION = "certification.revoked"
REVOKE_ASKED = "certification.revoke.asked"  # the first of the two supervisors a console revocation needs
REVOKE_REFUSED = "certification.revoke.refused"  # the asker confirming their own request (recorded, refused)
CERTIFIED_ACTION = "cycle.certified"  # an accept's audit entry (processing.accept_session)
MAX_NOTE_CHARS = evidence_hold.MAX_NOTE_CHARS  # a staff member's note (one rule: evidence_hold.checked_note)


class NoticeState(enum.StrEnum):
    """`Certification.notice_state`: whether the person was told of the revocation. DUE until the WeChat schedule
    settles it: QUEUED (a notice recorded: wechat_notices keeps its delivery) or SKIPPED (nothing to tell, or
    nobody to tell it to: revoked.py says which). Rows revoked before migration 0018 have none."""

    DUE = "due"
    QUEUED = "queued"
    SKIPPED = "skipped"


class RevokeReason(enum.StrEnum):
    """Why a certification is revoked (the console offers them; docs/console.md)."""

    IMPERSONATION = "impersonation"  # 冒领 / 他人代替: someone else certified as the person
    WRONG_ACCEPT = "wrong_accept"  # 错误受理: accepted in error (review, counter), found on re-inspection
    OTHER = "other"


# Revocations that say someone else was certified as the person, or accepted in error.
FRAUD_REVOCATIONS = (RevokeReason.IMPERSONATION.value, RevokeReason.WRONG_ACCEPT.value)


def revoked_as_fraud(db: Session, beneficiary_id: int) -> bool:
    """Whether a certification of the person was revoked as 冒领 or a wrong accept: staff certifying the person
    again need a second person's look (the console's second decision, its alert on a counter or home visit;
    docs/security.md, Part BC), and a worker's accept resting on the face template such a revocation dropped while
    the job ran goes to them (`processing._apply`)."""
    found = select(Certification.id).where(
        Certification.beneficiary_id == beneficiary_id, Certification.revoke_reason.in_(FRAUD_REVOCATIONS)
    )
    return db.scalar(found.limit(1)) is not None


def revoked_as_impersonation(db: Session, beneficiary_id: int) -> bool:
    """Whether a certification of the person was revoked as 冒领 / 他人代替: whoever is bound to them, or asked
    for them, may be whoever collected. The bureau's investigation decides what they hear: no revocation notice to
    a relative (wechat/relatives_told.py) and no request given back to staff (console/assist.py,
    `reopen_on_revocation`), after any revocation of that person."""
    found = select(Certification.id).where(
        Certification.beneficiary_id == beneficiary_id,
        ~in_force(),
        Certification.revoke_reason == RevokeReason.IMPERSONATION.value,
    )
    return db.scalar(found.limit(1)) is not None


@dataclass(frozen=True)
class Revoked:
    """What a revocation changed. `counted`: the certification was the record's present person's (one made
    before a roster change of the ID number counted for nobody already: nothing else changes)."""

    certification_id: int
    session_id: str
    counted: bool
    valid_until: dt.date | None
    last_certified_on: dt.date | None
    template_cleared: bool
    evidence: Evidence = Evidence.NOT_HELD  # the session's media: held as evidence, deleted already, none stored
    evidence_held_until: dt.datetime | None = None  # the hold's end (naive UTC) when held


def checked_reason(reason: str, note: str) -> tuple[RevokeReason, str]:
    """The reason as a RevokeReason and the note stripped; REVOKE_REASON unless both are given."""
    try:
        why = RevokeReason(reason)
    except ValueError:
        raise InvalidInputError("REVOKE_REASON", "reason must be one of " + ", ".join(RevokeReason)) from None
    return why, checked_note(note, "REVOKE_REASON")


def revoke_certification(
    db: Session,
    rules: CycleRules,
    certification_id: int,
    reason: str,
    note: str,
    actor: str,
    beneficiary_id: int | None = None,
    *,
    hold_days: int,
) -> Revoked:
    """Revoke certification `certification_id` (of `beneficiary_id` when given: a console form names both) in the
    caller's transaction. The session's row is locked first, then the person's, then the certification re-read
    under a lock: two revocations at once are one revocation and one refusal (service/certification/lock_order.py).
    `hold_days`: EVIDENCE_HOLD_DAYS, how long the evidence hold a revocation as impersonation or wrong accept
    places lasts (its end is stored with it; required, so that no route places a hold without one)."""
    why, text = checked_reason(reason, note)
    cert = _certification(db, certification_id, beneficiary_id)
    db.get(CertSession, cert.session_id, with_for_update=True)  # the media's row before the person's: lock_order.py
    b = db.get(Beneficiary, cert.beneficiary_id, with_for_update=True, populate_existing=True)
    db.refresh(cert, with_for_update=True)
    if b is None:
        raise NotFoundError("certification")
    _not_revoked(cert)
    cert.revoked_at, cert.revoked_by = utcnow(), mask_text(actor)[:64]
    cert.revoke_reason, cert.revoke_note = why.value, mask_text(text)
    cert.notice_state = NoticeState.DUE.value  # settled by the channel that can tell the person (module docstring)
    db.flush()
    s = db.get(CertSession, cert.session_id)
    counted = s is not None and made_for_current_person(b, s.created_at)
    cleared = False
    if counted:
        revalidate(db, b, cert, rules)
        cleared = _drop_template(db, b, cert)
    evidence, hold = Evidence.NOT_HELD, None
    if why in (RevokeReason.IMPERSONATION, RevokeReason.WRONG_ACCEPT):
        evidence, hold = hold_for_revocation(
            db, cert.session_id, actor, b.external_id, f"撤销认证 {cert.id}：{text}", hold_days
        )
    until = hold.ends_at if hold is not None else None
    detail = {
        "certification": cert.id,
        "session": cert.session_id,
        "reason": why.value,
        "note": text[:200],
        "counted": counted,
        "valid_until": b.valid_until.isoformat() if b.valid_until else None,
        "template_cleared": cleared,
        "evidence": evidence.value,
        "evidence_held_until": until.isoformat(timespec="seconds") if until is not None else None,
    }
    audit(db, actor, ACTION, b.external_id, detail)
    return Revoked(cert.id, cert.session_id, counted, b.valid_until, b.last_certified_on, cleared, evidence, until)


def revoke_by_two(
    db: Session,
    rules: CycleRules,
    certification_id: int,
    reason: str,
    note: str,
    actor: str,
    beneficiary_id: int,
    *,
    hold_days: int,
    check_second: Callable[[str], None] | None = None,
) -> tuple[Revoked | None, second_person.Ask | None]:
    """A revocation on the word of two supervisors (the console's; docs/security.md, Part BK): the first call asks
    (`certification.revoke.asked`, nothing revoked: (None, None)); another actor's call within ASK_DAYS, naming the
    same reason, revokes it with the request's reason and note: (the revocation, the request it confirmed). One
    supervisor alone stopped a pension, dropped the template and had the person told. Refused: REVOKE_REASON,
    NOT_FOUND, CERTIFICATION_REVOKED, REVOKE_REASON_DIFFERS (another reason than the request's), REVOKE_SELF (the
    asker again); those two and `check_second`'s recorded, `certification.revoke.refused`, committed before the
    refusal. `check_second`: the caller's own check that `actor` may confirm the asker's request (given the
    asker's actor; raises its refusal)."""
    why, text = checked_reason(reason, note)
    cert = _not_revoked(_certification(db, certification_id, beneficiary_id))
    b = db.get(Beneficiary, beneficiary_id)
    target = b.external_id if b is not None else str(beneficiary_id)
    asked = revoke_asks(db, [cert]).get(cert.id)
    detail = {"certification": cert.id, "reason": why.value, "note": mask_text(text)}  # the whole note: it is kept
    if asked is None:
        audit(db, actor, REVOKE_ASKED, target, detail)
        return None, None
    if second_person.is_asker(asked, actor):
        message = f"certification {cert.id}: a second supervisor must confirm"
        second_person.refuse_alone(db, actor, REVOKE_REFUSED, target, detail, "REVOKE_SELF", message)
    second_person.check_or_refuse(db, check_second, asked, actor, REVOKE_REFUSED, target, detail)
    if asked.detail.get("reason") != why.value:
        message = f"certification {cert.id}: asked for another reason"
        second_person.refuse_alone(db, actor, REVOKE_REFUSED, target, detail, "REVOKE_REASON_DIFFERS", message)
    done = revoke_certification(
        db, rules, cert.id, why.value, asked.note, actor, beneficiary_id=beneficiary_id, hold_days=hold_days
    )
    return done, asked


def _certification(db: Session, certification_id: int, beneficiary_id: int | None) -> Certification:
    """Certification `certification_id`, of `beneficiary_id` when given (a console form names both: another
    person's certification under this person's page is not found, whatever its id)."""
    cert = db.get(Certification, certification_id)
    if cert is None or (beneficiary_id is not None and cert.beneficiary_id != beneficiary_id):
        raise NotFoundError("certification")
    return cert


def _not_revoked(cert: Certification) -> Certification:
    if cert.revoked_at is not None:
        raise ServiceError("CERTIFICATION_REVOKED", f"certification {cert.id} was revoked already")
    return cert


def revoke_asks(db: Session, certs: Collection[Certification]) -> dict[int, second_person.Ask]:
    """The requests to revoke `certs` waiting for a second supervisor (second_person.ASK_DAYS), by certification
    id, in one read (the person's page shows them)."""
    since = {c.id: c.created_at for c in certs if c.revoked_at is None}
    return second_person.waiting_asks(db, REVOKE_ASKED, "certification", since)


def revalidate(db: Session, b: Beneficiary, revoked: Certification, rules: CycleRules) -> None:
    """The record's validity and last certification as they would stand without `revoked` (one of its present
    person's): from the certifications of that person still in force, each by its own validity (`valid_until` of
    its day, as each row stores it). A later date
    from elsewhere (a later certification, the roster's own dates) stays. With none left, the validity goes back to
    what the record had before the revoked certification (its accept's audit entry, `valid_until_before`), and
    never later than the day before it: nothing on record vouches for the person past it (a roster grace date is
    not kept apart from what certified it; staff who find the person alive record a counter certification, or the
    person certifies again). The one home of the recomputation: a revocation, and a supervisor's same-person
    finding that makes an earlier revoked certification the record's again (identity_review.py)."""
    standing = standing_certifications(db, b)
    cut_back(b, standing, revoked, rules)
    left = [c.certified_on for c in standing]
    if b.valid_until is not None and b.valid_until <= revoked.valid_until:
        fallback = min(d for d in (revoked.certified_on - dt.timedelta(days=1), _before(db, b, revoked)) if d)
        b.valid_until = max((c.valid_until for c in standing), default=fallback)
    if b.last_certified_on is not None and b.last_certified_on <= revoked.certified_on:
        b.last_certified_on = max(left, default=None)


def standing_certifications(db: Session, b: Beneficiary) -> list[Certification]:
    """The certifications of the record's present person still in force (made since its last change of ID number)."""
    rows = db.execute(
        select(Certification, CertSession.created_at)
        .join(CertSession, CertSession.id == Certification.session_id)
        .where(Certification.beneficiary_id == b.id, in_force())
    ).all()
    return [c for c, opened in rows if made_for_current_person(b, opened)]


def cut_back(
    b: Beneficiary, standing: Collection[Certification], revoked: Certification, rules: CycleRules
) -> list[tuple[Certification, dt.date]]:
    """Each of `standing` that may carry `revoked`'s date cut back to its own validity; (row, date it had) of each
    cut. A row entered late before each row stored its own validity (processing.accept_session) carries the
    record's latest date then, the revoked one's maybe: cut back to its own, or the cycle run and the public check
    go on by the revoked one's date. Only a row that may carry it: one stored with its own validity
    (`own_validity`, every row since migration 0028) carries none, so a move to a region under another rule, or
    rules changed since, do not shorten a genuine certificate (before, its validity was recomputed with today's
    region and rules). The one home of the cut: a revocation (`revalidate`) and the daily run's repair of the rows
    a revocation made before this rule left uncut (carried_validity.py)."""
    cut: list[tuple[Certification, dt.date]] = []
    for c in standing:
        if not c.own_validity and c.valid_until >= revoked.valid_until:
            own = valid_until(c.certified_on, rules, b.region, b.birth_date)
            if own < c.valid_until:
                cut.append((c, c.valid_until))
                c.valid_until = own
    return cut


def revalidate_all(db: Session, b: Beneficiary, rules: CycleRules) -> None:
    """`revalidate` for each revoked certification of the record's present person, the latest first (with none
    left, the earliest one's fallback is the last word)."""
    rows = db.execute(
        select(Certification, CertSession.created_at)
        .join(CertSession, CertSession.id == Certification.session_id)
        .where(Certification.beneficiary_id == b.id, Certification.revoked_at.is_not(None))
        .order_by(Certification.certified_on.desc(), Certification.id.desc())
    ).all()
    for cert, opened in rows:
        if made_for_current_person(b, opened):
            revalidate(db, b, cert, rules)


def _before(db: Session, b: Beneficiary, revoked: Certification) -> dt.date | None:
    """The validity the record had before `revoked` was accepted, as its accept's audit entry keeps it; None when
    unknown (an accept before the entry kept it) or the record had none."""
    details = db.scalars(
        select(AuditEntry.detail).where(AuditEntry.action == CERTIFIED_ACTION, AuditEntry.target == b.external_id)
    ).all()
    for detail in details:
        if detail.get("certification") == revoked.id and isinstance(detail.get("valid_until_before"), str):
            return dt.date.fromisoformat(detail["valid_until_before"])
    return None


def _drop_template(db: Session, b: Beneficiary, revoked: Certification) -> bool:
    """Drop `b`'s face template when it may come from the revoked session's face: enrolled by it (a session with
    the person's consent to keep one), or by a certification accepted after it, whose face was compared with that
    one. Which session enrolled a template is not stored: any such session from the revoked one on drops it (a
    template dropped in error costs one comparison with the ID card; one kept in error is the impostor's face)."""
    if b.template is None:
        return False
    since = db.scalar(
        select(func.count())
        .select_from(Certification)
        .join(CertSession, CertSession.id == Certification.session_id)
        .where(
            Certification.beneficiary_id == b.id,
            Certification.id >= revoked.id,
            CertSession.template_consent.is_(True),
        )
    )
    if not since:
        return False
    b.template, b.template_model, b.template_consent = None, None, False
    return True
