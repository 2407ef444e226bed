"""What a proxy session's decision may no longer give when it is applied (docs/proxy.md, *Sessions in flight*).

The proxy policy (`hooks.apply_policy`) reads the binding outside any transaction, seconds before the decision is
applied; meanwhile another decision may have flagged the binding, staff may have consented the elder's last free
relative slot, the elder may have been recorded dead. `hold` is the proxy feature's HoldHook (`ctx.hooks.holds`,
called by `processing._apply` in the applying transaction, after the session and, for an accept, the elder are
locked): it reads the binding again under its row lock (the operator's first, as `hooks.on_decided` takes them:
service/certification/lock_order.py) and holds back what it no longer allows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.decision.result import Outcome
from pipelines.reasons import ReasonCode
from service.certification.audit import audit
from service.certification.models import Beneficiary, BeneficiaryStatus, CertSession, SessionDecision
from service.features.proxy.bindings import (
    PROXY_BINDING_HELD,
    PROXY_BINDING_WITHDRAWN,
    PROXY_ELDER_SLOTS_FULL,
    consent_expired,
    elder_slots_full,
)
from service.features.proxy.models import (
    ENDED_STATUSES,
    BindingStatus,
    ProxyBinding,
    ProxyOperator,
    ProxyOperatorIdentity,
    ProxySession,
    ProxySessionKind,
)
from service.features.proxy.operators import actor

# The reasons of a rejection that is no failure of the relative's (nothing carries over to the pair's record).
BLAMELESS = frozenset({ReasonCode.PROXY_NOT_BOUND.value, PROXY_ELDER_SLOTS_FULL, PROXY_BINDING_WITHDRAWN})


def no_longer_bound(db: Session, ps: ProxySession) -> bool:
    """The binding a proxy session was opened under can no longer give it effect (`why_not_bound`)."""
    return why_not_bound(db, ps) is not None


def why_not_bound(db: Session, ps: ProxySession) -> ReasonCode | None:
    """Why the binding a proxy session was opened under can no longer give it effect, None while it can.

    A certification: PROXY_BINDING_WITHDRAWN when the elder ended the binding (withdrew consent: whatever the video
    shows, nothing is certified under a consent withdrawn), PROXY_NOT_BOUND when it was revoked (the roster gave
    the elder's record another ID number: the relative was the old person's, and the face and card now checked
    are the new person's). A consent video: PROXY_NOT_BOUND when its binding's consent window passed or it ended
    meanwhile (unbound too: an elder's consent to a binding that no longer exists gives nothing, and must not read
    as accepted), or its elder was recorded dead (rejected as not bound: the relative it would answer is nobody the
    elder accepted, and must not learn of the death from it). Never for a certification whose relative ended
    (unbound, or moved to their other account) the binding themself: that decision stands and its failure counts,
    as before."""
    row = db.get(ProxyBinding, ps.binding_id) if ps.binding_id else None
    if row is None:
        return None
    if ps.kind == ProxySessionKind.CERTIFICATION.value:
        if row.status == BindingStatus.WITHDRAWN:
            return PROXY_BINDING_WITHDRAWN
        return ReasonCode.PROXY_NOT_BOUND if row.status == BindingStatus.REVOKED else None
    if ps.kind == ProxySessionKind.CONSENT.value:
        elder = db.get(Beneficiary, row.beneficiary_id)
        dead = elder is None or elder.status == BeneficiaryStatus.DECEASED
        ended = dead or consent_expired(row) or row.status in ENDED_STATUSES
        return ReasonCode.PROXY_NOT_BOUND if ended else None
    return None


def hold(
    db: Session, s: CertSession, elder: Beneficiary | None, outcome: Outcome, reasons: list[str], /
) -> tuple[Outcome, list[str]]:
    """A HoldHook. An elder's consent video: rejected PROXY_NOT_BOUND when it can no longer give anything
    (`why_not_bound`; a death recorded meanwhile is not named), PROXY_ELDER_SLOTS_FULL when the elder has
    meanwhile consented to as many relatives as allowed (an accept with nothing recorded read as done). A proxy
    certification whose binding the elder ended since it was opened: rejected PROXY_BINDING_WITHDRAWN, whatever
    the machine decided (staff could not accept it either: `hooks.on_accept`; no failure counted; a death is not
    named to a relative the elder no longer accepts). A proxy certification's accept: to staff (review,
    PROXY_BINDING_HELD) when the pair's binding is locked or another certification of the pair was flagged after
    this one was opened."""
    ps = db.get(ProxySession, s.id)
    if ps is None or ps.binding_id is None or ps.kind == ProxySessionKind.VERIFICATION.value:
        return outcome, reasons
    why = why_not_bound(db, ps)
    if why is not None and (ps.kind == ProxySessionKind.CONSENT.value or why == PROXY_BINDING_WITHDRAWN):
        kept = [r for r in reasons if r != ReasonCode.BENEFICIARY_DECEASED.value]
        return Outcome.REJECT, list(dict.fromkeys([*kept, why.value]))
    if outcome is not Outcome.ACCEPT:
        return outcome, reasons
    op = db.get(ProxyOperator, ps.operator_id, with_for_update=True)
    row = db.get(ProxyBinding, ps.binding_id, with_for_update=True)
    if op is None or row is None:
        return outcome, reasons
    target = elder.external_id if elder else "-"
    if ps.kind == ProxySessionKind.CONSENT.value:
        if row.consent_at is None and elder_slots_full(db, row):
            audit(db, actor(op), "proxy.consent.refused", target, {"binding": row.id, "reason": PROXY_ELDER_SLOTS_FULL})
            return Outcome.REJECT, [*reasons, PROXY_ELDER_SLOTS_FULL]
        return outcome, reasons
    if _held(db, s, row, op):
        audit(db, actor(op), "proxy.certification.held", target, {"session": s.id, "binding": row.id})
        return Outcome.REVIEW, [*reasons, PROXY_BINDING_HELD]
    return outcome, reasons


def _held(db: Session, s: CertSession, row: ProxyBinding, op: ProxyOperator) -> bool:
    """The pair's record (this binding and the same person's other live bindings of the elder: a relative is a
    person, `bindings.person_accounts`) is locked now, or another of its certifications was flagged (the relative
    filming themselves) after `s` was opened: staff lifting the lock had not seen `s`."""
    pair = [row]
    if op.person_hash is not None:
        accounts = select(ProxyOperatorIdentity.operator_id).where(ProxyOperatorIdentity.person_hash == op.person_hash)
        pair += db.scalars(
            select(ProxyBinding).where(
                ProxyBinding.beneficiary_id == row.beneficiary_id,
                ProxyBinding.operator_id.in_(accounts),
                ProxyBinding.id != row.id,
                ProxyBinding.status.not_in(ENDED_STATUSES),  # a revoked one was the record's previous person's
            )
        ).all()
    if any(b.locked for b in pair):
        return True
    later = db.scalars(
        select(CertSession.reasons)
        .join(ProxySession, ProxySession.session_id == CertSession.id)
        .where(
            ProxySession.binding_id.in_([b.id for b in pair]),
            ProxySession.kind == ProxySessionKind.CERTIFICATION.value,
            CertSession.id != s.id,
            CertSession.decision == SessionDecision.REJECT,
            CertSession.decided_at >= s.created_at,
        )
    )
    return any(ReasonCode.PROXY_OPERATOR_FACE.value in (r or []) for r in later)
