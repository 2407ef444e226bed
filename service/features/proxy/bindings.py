"""Bindings of operators to elders, persisted; the limits and consent rules come from `proxy_auth`."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.reasons import ReasonCode
from proxy_auth import (
    Binding,
    Consent,
    ConsentMethod,
    ProxyAuthError,
    Relationship,
    carried_over,
    check_new_binding,
    check_relative_slot,
    needs_consent,
)
from service.certification.audit import audit
from service.certification.catalog import ServiceCode
from service.certification.context import ServiceContext
from service.certification.errors import LockedError, NotFoundError, ServiceError
from service.certification.models import Beneficiary, utcnow
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator
from service.features.proxy.operators import actor
from service.features.proxy.policy import proxy_policy
from service.infra.security import normalise_id


def as_service_error(exc: ProxyAuthError) -> ServiceError:
    # A binding locked after repeated failures waits for staff review, unlike a citizen's daily limit (same code).
    kind = LockedError if exc.reason is ReasonCode.ATTEMPTS_EXCEEDED else ServiceError
    return kind(exc.reason.value, exc.detail)


def to_rule(row: ProxyBinding, relative: str, elder: str) -> Binding:
    consent = None
    if row.consent_method and row.consent_at:
        consent = Consent(ConsentMethod(row.consent_method), row.consent_at, row.consent_ref or "")
    return Binding(
        relative_id=relative,
        elder_id=elder,
        relationship=Relationship(row.relationship),
        created_at=row.created_at,
        consent=consent,
        ended_at=row.ended_at,
        locked=row.locked,
        failures=row.failures,
        flagged=row.flagged,
    )


def require_verified(op: ProxyOperator) -> None:
    if op.verified_at is None or op.person_hash is None:
        raise ProxyServiceError("PROXY_OPERATOR_UNVERIFIED", "operator has not passed real-name verification")


def elder_bindings(db: Session, elder_id: int) -> list[ProxyBinding]:
    return list(db.scalars(select(ProxyBinding).where(ProxyBinding.beneficiary_id == elder_id)))


def bind(
    db: Session, ctx: ServiceContext, op: ProxyOperator, elder_name: str, elder_id_number: str, relationship: str
) -> ProxyBinding:
    require_verified(op)
    try:
        rel = Relationship(relationship)
    except ValueError as exc:
        raise ServiceError("PROXY_RELATIONSHIP", f"relationship {relationship!r}") from exc
    number = normalise_id(elder_id_number)
    # Both rows locked: two concurrent bindings cannot both pass a limit (PostgreSQL row locks; SQLite
    # serialises writers anyway).
    number_hash = ctx.keyring.id_hash(number)
    elder = db.scalar(select(Beneficiary).where(Beneficiary.id_hash == number_hash).with_for_update())
    if elder is None or elder.name != elder_name.strip():
        # Name and number must both match the roster: nobody binds a stranger by guessing numbers.
        raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "no beneficiary with this name and ID number")
    db.refresh(op, with_for_update=True)
    policy = proxy_policy()
    mine = list(db.scalars(select(ProxyBinding).where(ProxyBinding.operator_id == op.id)))
    theirs = elder_bindings(db, elder.id)
    person = op.person_hash or op.id
    try:
        check_new_binding(
            person,
            elder.id_hash,
            [to_rule(b, person, _elder_hash(db, b)) for b in mine],
            [to_rule(b, b.operator_id, elder.id_hash) for b in theirs],
            policy,
        )
    except ProxyAuthError as exc:
        audit(db, actor(op), "proxy.bind.refused", elder.external_id, {"reason": exc.reason.value})
        db.commit()  # the refusal is on record even though the request fails (nothing else was written)
        raise as_service_error(exc) from exc
    rules = [to_rule(b, b.operator_id, elder.id_hash) for b in theirs]
    consented = not needs_consent(op.id, rules)
    kept = carried_over(op.id, rules)
    row = ProxyBinding(
        id=str(uuid.uuid4()),
        operator_id=op.id,
        beneficiary_id=elder.id,
        relationship=rel.value,
        status=BindingStatus.ACTIVE if consented else BindingStatus.PENDING_CONSENT,
        failures=kept.failures,
        locked=kept.locked,
        flagged=kept.flagged,
    )
    if consented:
        # This relative's own earlier binding of the elder was consented (and never flagged): that consent is
        # theirs to keep. Another relative's consent is not: the elder agreed to that person, not to everyone.
        mine_before = [b for b in theirs if b.operator_id == op.id and b.consent_at is not None]
        last = max(mine_before, key=lambda b: b.consent_at or b.created_at)
        row.consent_method, row.consent_ref, row.consent_at = last.consent_method, last.consent_ref, utcnow()
    db.add(row)
    db.flush()
    audit(
        db,
        actor(op),
        "proxy.bind",
        elder.external_id,
        {
            "binding": row.id,
            "relationship": rel.value,
            "status": row.status,
            "carried": {"failures": kept.failures, "locked": kept.locked, "flagged": kept.flagged},
        },
    )
    return row


def _elder_hash(db: Session, b: ProxyBinding) -> str:
    elder = db.get(Beneficiary, b.beneficiary_id)
    return elder.id_hash if elder else str(b.beneficiary_id)


def own_binding(db: Session, op: ProxyOperator, binding_id: str, for_update: bool = False) -> ProxyBinding:
    """The caller's binding; another relative's id answers exactly like an unknown id."""
    row = db.get(ProxyBinding, binding_id, with_for_update=for_update)
    if row is None or row.operator_id != op.id:
        raise NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    return row


def unbind(db: Session, op: ProxyOperator, binding_id: str) -> ProxyBinding:
    row = own_binding(db, op, binding_id, for_update=True)
    if row.status == BindingStatus.ENDED:
        raise ServiceError("SESSION_STATE", "binding already ended")
    elder = db.get(Beneficiary, row.beneficiary_id)
    target = elder.external_id if elder else "-"
    if row.locked:
        # A lock waits for staff: unbinding (and binding again) must not be the relative's way around it.
        audit(db, actor(op), "proxy.unbind.refused", target, {"binding": row.id, "reason": "PROXY_BINDING_LOCKED"})
        db.commit()  # the refusal is on record even though the request fails (nothing else was written)
        raise ProxyServiceError("PROXY_BINDING_LOCKED", "binding locked pending staff review; staff unlock it first")
    row.status, row.ended_at = BindingStatus.ENDED, utcnow()
    audit(db, actor(op), "proxy.unbind", target, {"binding": row.id})
    return row


def record_consent(db: Session, row: ProxyBinding, method: ConsentMethod, ref: str, who: str) -> bool:
    """Record the elder's consent to this binding's relative. False (nothing recorded, the refusal audited) when
    the elder has meanwhile consented to as many other relatives as allowed: a pending binding holds no slot."""
    elder = db.get(Beneficiary, row.beneficiary_id)
    target = elder.external_id if elder else "-"
    others = db.scalars(select(ProxyBinding).where(ProxyBinding.beneficiary_id == row.beneficiary_id)).all()
    try:
        rules = [to_rule(b, b.operator_id, str(b.beneficiary_id)) for b in others]
        check_relative_slot(row.operator_id, rules, proxy_policy())
    except ProxyAuthError as exc:
        audit(db, who, "proxy.consent.refused", target, {"binding": row.id, "reason": exc.reason.value})
        return False
    row.consent_method, row.consent_ref, row.consent_at = method.value, ref[:64], utcnow()
    if row.status == BindingStatus.PENDING_CONSENT:
        row.status = BindingStatus.ACTIVE
    audit(
        db,
        who,
        "proxy.consent",
        target,
        {"binding": row.id, "method": method.value, "ref": ref[:64]},
    )
    return True


def unlock(db: Session, row: ProxyBinding, who: str, note: str) -> None:
    """Staff lift a lock; the flag stays (it is part of the binding's record)."""
    row.locked, row.failures = False, 0
    elder = db.get(Beneficiary, row.beneficiary_id)
    audit(
        db, who, "proxy.binding.unlocked", elder.external_id if elder else "-", {"binding": row.id, "note": note[:200]}
    )
