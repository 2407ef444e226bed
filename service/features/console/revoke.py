"""Two supervisors revoke a certification found fraudulent afterwards, from the person's page: one asks, another
confirms (revocation.revoke_by_two; docs/security.md, Part BK; the rule and its consequences:
service/certification/revocation.py). The console checks the role (the route's `Supervisor`) and the
region scope (a person outside it reads as missing), locks the relative's binding when the certification was a
proxy one, and records the revocation in its audit chain.

From the same page a supervisor holds a session's media as evidence, or releases a hold early
(service/certification/evidence_hold.py), with the same checks: the session must be the person's."""

from __future__ import annotations

from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.contract import FeatureHooks
from service.certification.cycle import CycleRules
from service.certification.errors import InvalidInputError, NotFoundError
from service.certification.evidence_hold import HoldReason, place_hold, release_ask, release_hold
from service.certification.models import CertSession, EvidenceHold
from service.certification.revocation import Revoked, revoke_by_two
from service.features.console import accounts, audit_chain, scope
from service.features.console.assist import reopen_on_revocation
from service.features.console.auth import Staff
from service.features.proxy.models import ProxyBinding, ProxySession, ProxySessionKind
from service.infra.security import mask_text

ACTION = "certification.revoke"
ASK_ACTION = "certification.revoke.ask"  # the first of the two supervisors a revocation needs
HOLD_ACTION = "evidence.hold"
RELEASE_ACTION = "evidence.release"
RELEASE_ASK_ACTION = "evidence.release.ask"  # the first of the two supervisors a release needs


def revoke_from_console(
    db: Session,
    staff: Staff,
    bid: int,
    certification_id: int,
    reason: str,
    note: str,
    rules: CycleRules,
    hold_days: int,
    hooks: FeatureHooks,
) -> Revoked | bool | None:
    """Ask to revoke certification `certification_id` of person `bid`, or confirm another supervisor's request
    (revoked then: `revocation.revoke_by_two`, two supervisors), in the unit of work: the revocation, True when
    asked, None when the person is not one `staff` may see (out of scope, or missing). Raises the core's refusals
    (REVOKE_REASON, NOT_FOUND, CERTIFICATION_REVOKED, REVOKE_SELF, REVOKE_REASON_DIFFERS, SECOND_UNCONFIRMED)."""
    b = scope.beneficiary(db, staff, bid)
    if b is None:
        return None
    done, asked = revoke_by_two(
        db,
        rules,
        certification_id,
        reason,
        note,
        staff.actor,
        beneficiary_id=b.id,
        hold_days=hold_days,
        check_second=partial(accounts.check_second_person, db, staff),  # either account unconfirmed (Part BK)
    )
    if done is None or asked is None:
        detail = {"certification": certification_id, "reason": reason}
        audit_chain.record(db, staff.actor, ASK_ACTION, audit_chain.person_target(b), detail)
        return True
    binding = _lock_binding(db, done.session_id, staff.actor, b.external_id)
    reopen_on_revocation(db, hooks, done.session_id, staff.actor)  # the requests it answered go back to staff
    detail = {
        "certification": done.certification_id,
        "reason": reason,
        "valid_until": done.valid_until.isoformat() if done.valid_until else None,
        "template_cleared": done.template_cleared,
        "binding_locked": binding,
        "evidence": done.evidence.value,
        "asked_by": asked.actor,
        "confirm_note": mask_text(note.strip()),
    }
    audit_chain.record(db, staff.actor, ACTION, audit_chain.person_target(b), detail)
    return done


def _lock_binding(db: Session, session_id: str, actor: str, target: str) -> str | None:
    """A relative's proxy certification revoked: their binding is locked pending staff review, as after repeated
    failures (staff unlock it: POST /api/v1/proxy/bindings/{id}/unlock), so the same relative does not certify the
    elder again that way before staff have looked. Not flagged: the flag says the relative filmed themselves. The
    binding's row is taken after the person's (service/certification/lock_order.py). Its id, or None."""
    ps = db.get(ProxySession, session_id)
    if ps is None or ps.kind != ProxySessionKind.CERTIFICATION.value or ps.binding_id is None:
        return None
    row = db.get(ProxyBinding, ps.binding_id, with_for_update=True)
    if row is None:
        return None
    if not row.locked:
        row.locked = True
        audit(db, actor, "proxy.binding.locked", target, {"binding": row.id, "revoked_session": session_id})
    return row.id


def hold_from_console(
    db: Session, staff: Staff, bid: int, session_id: str, reason: str, note: str, hold_days: int
) -> EvidenceHold | None:
    """Hold the media of session `session_id` of person `bid`; None when the person is not one `staff` may see.
    Raises the core's refusals (EVIDENCE_HOLD_REASON, NOT_FOUND: not the person's session, EVIDENCE_PURGED,
    EVIDENCE_NONE)."""
    b = scope.beneficiary(db, staff, bid)
    if b is None:
        return None
    if reason == HoldReason.REVOKED:  # a revocation's own: the form offers the others
        raise InvalidInputError("EVIDENCE_HOLD_REASON", "a revocation places its own hold")
    if db.scalar(select(CertSession.beneficiary_id).where(CertSession.id == session_id)) != b.id:
        raise NotFoundError("session")
    hold = place_hold(db, session_id, reason, note, staff.actor, b.external_id, hold_days)
    detail = {"hold": hold.id, "session": session_id, "reason": hold.reason}
    audit_chain.record(db, staff.actor, HOLD_ACTION, audit_chain.person_target(b), detail)
    return hold


def release_from_console(db: Session, staff: Staff, bid: int, hold_id: int, note: str) -> EvidenceHold | None:
    """Ask to release hold `hold_id` on a session of person `bid` early, or confirm another supervisor's request
    (released then: `evidence_hold.release_hold`, two supervisors); None when the person is not one `staff` may see.
    Raises the core's refusals (EVIDENCE_RELEASE_NOTE, NOT_FOUND: not a hold on the person's sessions,
    EVIDENCE_HOLD_ENDED, EVIDENCE_RELEASE_SELF)."""
    b = scope.beneficiary(db, staff, bid)
    if b is None:
        return None
    own = db.scalars(select(CertSession.id).where(CertSession.beneficiary_id == b.id)).all()
    second = partial(accounts.check_second_person, db, staff)  # either account unconfirmed (Part BK)
    hold = release_hold(db, hold_id, note, staff.actor, b.external_id, session_ids=own, check_second=second)
    detail: dict[str, object] = {"hold": hold.id, "session": hold.session_id}
    if hold.released_at is None:
        audit_chain.record(db, staff.actor, RELEASE_ASK_ACTION, audit_chain.person_target(b), detail)
    else:
        asked = release_ask(db, hold)  # the request this release confirmed
        detail["asked_by"] = asked.actor if asked else None
        audit_chain.record(db, staff.actor, RELEASE_ACTION, audit_chain.person_target(b), detail)
    return hold
