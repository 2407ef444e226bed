"""What processing does differently for sessions opened through proxy certification.

`apply_policy` runs in the worker after the ordinary decision (outside any transaction) and returns the proxy
decision: the operator's template against the elder's best frames (scores.operator_match), the stricter
threshold, first proxy certification → review, deceased → never. `on_decided` runs inside the transaction
that applies the decision: it verifies the operator, records the elder's consent, counts failures (locking the
binding) and flags an operator who filmed themselves; every step is audited with the operator's identity. None
is called by the core directly: `install` registers them on the context (service/certification/contract.py).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipelines.decision.result import Decision, Outcome
from pipelines.reasons import ReasonCode
from proxy_auth import ConsentMethod, OperatorCheck, ProxyContext, apply_proxy_policy, check_operator, record_failure
from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    SessionDecision,
    beneficiary_of,
    certification_revoked,
)
from service.features.proxy.bindings import (
    PROXY_BINDING_REVOKED,
    PROXY_BINDING_WITHDRAWN,
    end_for_identity_change,
    expire_pending,
    record_consent,
    to_rule,
)
from service.features.proxy.claim_retention import erase_unverified_claims
from service.features.proxy.deceased_relatives import end_bindings_of_the_deceased
from service.features.proxy.elder_bindings import ENDED_BY_ELDER, reapply_end
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.holds import BLAMELESS, hold, no_longer_bound, why_not_bound
from service.features.proxy.identity import restore_for_same_person
from service.features.proxy.models import (
    BindingStatus,
    ProxyBinding,
    ProxyClaim,
    ProxyOperator,
    ProxySession,
    ProxySessionKind,
)
from service.features.proxy.operators import actor, load_template, mark_verified, store_template
from service.features.proxy.own_template import WITHDRAWN_ACTION as OPERATOR_WITHDRAWN
from service.features.proxy.own_template import erase_templates_of_the_deceased, reapply_withdrawal
from service.features.proxy.policy import proxy_policy
from service.features.proxy.relatives import apply_rule
from service.features.proxy.requesters import operator_requesters
from service.features.proxy.sessions import claim_of, person_hash, queue_guard, roster_name_differs

if TYPE_CHECKING:
    from service.certification.contract import CertificationReport, Certifier, Template

log = logging.getLogger(__name__)


def first_proxy_certification(db: Session, beneficiary_id: int, session_id: str) -> bool:
    """No earlier proxy certification of this elder was accepted (by the machine or by staff). One made under a
    revoked binding does not count: it certified the record's previous person (the roster has since given the
    record another ID number), not this one; nor does one whose certification a supervisor revoked (found
    fraudulent: service/certification/revocation.py), or the next one after the fraud would be no first."""
    n = db.scalar(
        select(func.count())
        .select_from(ProxySession)
        .join(CertSession, CertSession.id == ProxySession.session_id)
        .join(ProxyBinding, ProxyBinding.id == ProxySession.binding_id)
        .where(
            ProxySession.kind == ProxySessionKind.CERTIFICATION.value,
            CertSession.beneficiary_id == beneficiary_id,
            CertSession.decision == SessionDecision.ACCEPT,
            CertSession.id != session_id,
            ProxyBinding.status != BindingStatus.REVOKED,
            ~certification_revoked(),
        )
    )
    return not n


def install(ctx: ServiceContext) -> None:
    """Register the proxy feature on the core: its policy then the kinship rule revise every decision (in this
    order, as before), its steps run when a decision is applied and whenever a session is accepted."""
    ctx.hooks.decision["proxy.policy"] = apply_policy  # proxy sessions only
    ctx.hooks.decision["proxy.relatives"] = apply_rule  # every session with relatives' templates
    ctx.hooks.holds["proxy"] = hold  # in the applying transaction: what the binding no longer allows
    ctx.hooks.decided["proxy"] = on_decided
    ctx.hooks.accept["proxy"] = on_accept
    ctx.hooks.requesters["proxy"] = operator_requesters  # the daily failure limits count against the operator
    ctx.hooks.claims["proxy"] = claim_of  # what a relative's verification session (no beneficiary) verifies
    ctx.hooks.queue_guards["proxy"] = queue_guard  # tries in flight count: the operator's, a binding's
    ctx.hooks.identity_changes["proxy"] = end_for_identity_change  # the old person's relatives' bindings end
    ctx.hooks.identity_confirmations["proxy"] = restore_for_same_person  # a typo corrected: they are given back
    ctx.hooks.upkeep["proxy"] = expire_pending  # daily: bindings unconsented past the window expire
    ctx.hooks.upkeep["proxy.deceased"] = erase_templates_of_the_deceased  # daily: a dead relative's template goes
    ctx.hooks.upkeep["proxy.deceased_bindings"] = end_bindings_of_the_deceased  # daily: and their bindings end
    ctx.hooks.upkeep["proxy.claims"] = erase_unverified_claims  # daily: a purged, unaccepted claim's number goes
    ctx.hooks.reapply[ENDED_BY_ELDER] = reapply_end  # after a restore: a binding the elder ended ends again
    ctx.hooks.reapply[OPERATOR_WITHDRAWN] = reapply_withdrawal  # after a restore: a relative's withdrawal again
    ctx.hooks.person_hashes["proxy"] = person_hash  # a roster row new during a rotation: the claims' hash


def apply_policy(ctx: ServiceContext, session_id: str, certifier: Certifier, report: CertificationReport) -> Decision:
    """The proxy decision when the session was opened by a proxy; otherwise `report.decision` unchanged."""
    with ctx.db() as db:
        ps = db.get(ProxySession, session_id)
        if ps is None:
            return report.decision
        if ps.kind == ProxySessionKind.VERIFICATION.value:
            return _verification_decision(db, session_id, report.decision)
        s = db.get(CertSession, session_id)
        op = db.get(ProxyOperator, ps.operator_id)
        elder = beneficiary_of(db, s) if s else None
        deceased = elder is None or elder.status == BeneficiaryStatus.DECEASED
        first = ps.kind == ProxySessionKind.CERTIFICATION.value and (
            elder is None or first_proxy_certification(db, elder.id, session_id)
        )
        why = why_not_bound(db, ps)
        if why is not None:
            return _not_bound(report.decision, why)
        template = load_template(ctx, op) if op else None
        kind = ps.kind
    policy = proxy_policy()
    if kind == ProxySessionKind.CONSENT.value:
        # Consent needs the elder present and agreeing: the self-service threshold, the operator check kept.
        policy = dataclasses.replace(policy, accept_margin=0.0, first_proxy_certification_to_review=False)
    live = report.liveness
    probes = [f.observation for f in live.best_frames if f.observation is not None] if live else []
    operator: OperatorCheck | None = None
    matcher = certifier.matcher
    if template is not None and probes and template[1] == str(matcher.recognizer.version):
        operator = check_operator(matcher, probes, template[0], policy)
    return apply_proxy_policy(report.decision, ProxyContext(deceased, first, operator), policy)


def _not_bound(decision: Decision, why: ReasonCode) -> Decision:
    """Rejected for `why` (`holds.why_not_bound`): whatever the video shows, it certifies (or consents) nobody."""
    return dataclasses.replace(
        decision,
        outcome=Outcome.REJECT,
        reasons=list(dict.fromkeys([*decision.reasons, why])),
        references=[],
    )


def _verification_decision(db: Session, session_id: str, decision: Decision) -> Decision:
    """A relative's verification: the roster's name for the claimed number is authoritative. Checked only once
    the card carried that number and the face passed (any outcome but reject), so that learning whether a
    number is on the roster takes that person's card and a live face, not just an account."""
    claim = db.get(ProxyClaim, session_id)
    if decision.outcome is Outcome.REJECT or claim is None or not roster_name_differs(db, claim):
        return decision
    return dataclasses.replace(
        decision,
        outcome=Outcome.REJECT,
        reasons=list(dict.fromkeys([*decision.reasons, ReasonCode.ID_FIELDS_INCONSISTENT])),
        references=[],
    )


def on_decided(
    db: Session,
    ctx: ServiceContext,
    s: CertSession,
    elder: Beneficiary | None,
    outcome: Outcome,
    reasons: list[str],
    new_template: Template | None,
) -> bool:
    """Apply a proxy session's decision. True when an accept was fully handled here (verification and consent
    sessions certify nobody); False lets the ordinary acceptance (certification, cycle) go on."""
    ps = db.get(ProxySession, s.id)
    if ps is None:
        return False
    # The operator, then the binding: after the session and (an accept) the elder, which `processing._apply` has
    # locked already (the lock order, service/certification/lock_order.py).
    op = db.get(ProxyOperator, ps.operator_id, with_for_update=True)
    if op is None:
        return False
    who = actor(op)
    claim = db.get(ProxyClaim, s.id) if ps.kind == ProxySessionKind.VERIFICATION.value else None
    # A verification has no beneficiary: its entries name the claimed (masked) number instead.
    target = elder.external_id if elder else claim.id_masked if claim else "-"
    audit(db, who, f"proxy.{ps.kind}.decided", target, {"session": s.id, "decision": outcome.value, "reasons": reasons})
    if ps.kind == ProxySessionKind.VERIFICATION.value:
        if outcome is Outcome.ACCEPT and claim is not None and op.verified_at is not None:
            # Verified meanwhile by another session opened before it: the identity and template stay (staff
            # change them), so two sessions in flight cannot swap the operator-face check's reference.
            audit(db, who, "proxy.operator.verification_ignored", op.id, {"session": s.id})
        elif outcome is Outcome.ACCEPT and claim is not None:
            claim = locked_claim(db, s.id)
            mark_verified(op, claim.id_hash, claim.id_masked, claim.name)
            if new_template is not None:
                store_template(ctx, op, new_template.embedding, new_template.model)
            audit(db, who, "proxy.operator.verified", op.id, {"session": s.id, "template": new_template is not None})
        return True
    binding = db.get(ProxyBinding, ps.binding_id, with_for_update=True) if ps.binding_id else None
    if binding is None:
        return ps.kind != ProxySessionKind.CERTIFICATION.value
    operator_face = ReasonCode.PROXY_OPERATOR_FACE.value in reasons
    # A session that could not succeed anyway (`no_longer_bound`, the elder's relative slots full: nothing the
    # relative did) counts no failure on the binding's record, which carries over to a later binding of the pair;
    # one who filmed themselves is flagged all the same. An unbound binding's failures still count: unbinding must
    # not be a way around them.
    blameless = no_longer_bound(db, ps) or not BLAMELESS.isdisjoint(reasons)
    if outcome is Outcome.REJECT and (operator_face or not blameless):
        _failed(db, binding, who, target, operator_face)
    if ps.kind == ProxySessionKind.CONSENT.value:
        if outcome is Outcome.ACCEPT:
            record_consent(db, binding, ConsentMethod.LIVE_VIDEO, s.id, who)
        return True
    if outcome is Outcome.ACCEPT:
        binding.failures = 0
    return False


def locked_claim(db: Session, session_id: str) -> ProxyClaim:
    """The verification's claim read again under its row lock, right before its hash is copied to the relative's
    identity: `pension-cert rekey` moves a claim's hash and its copies in one transaction, so a hash read before
    a rekey batch committed would be copied after it and stay under the previous key (docs/security.md, Part AH).
    Taken after the operator (the lock order, service/certification/lock_order.py)."""
    query = select(ProxyClaim).where(ProxyClaim.session_id == session_id).with_for_update()
    return db.scalars(query.execution_options(populate_existing=True)).one()


def _failed(db: Session, binding: ProxyBinding, who: str, target: str, operator_face: bool) -> None:
    was_locked = binding.locked
    counted = record_failure(to_rule(binding, binding.operator_id, target), proxy_policy())
    binding.failures, binding.locked = counted.failures, counted.locked
    if operator_face:
        # The relative filmed themselves: flagged, and no further proxy session until staff have looked.
        binding.flagged = binding.locked = True
        audit(db, who, "proxy.flag.operator_face", target, {"binding": binding.id})
    if binding.locked and not was_locked:
        audit(db, who, "proxy.binding.locked", target, {"binding": binding.id, "failures": binding.failures})


def on_accept(db: Session, s: CertSession, elder: Beneficiary | None) -> bool:
    """Called whenever a session is accepted (by the machine or by staff review). True when the session was
    a verification or consent session, which certify nobody; a proxy certification of a deceased elder is
    refused outright (staff cannot accept it either)."""
    ps = db.get(ProxySession, s.id)
    if ps is None:
        return False
    if ps.kind == ProxySessionKind.CERTIFICATION.value:
        if elder is not None and elder.status == BeneficiaryStatus.DECEASED:
            raise ServiceError(ReasonCode.BENEFICIARY_DECEASED, "beneficiary is registered as deceased")
        why = why_not_bound(db, ps)
        if why == PROXY_BINDING_WITHDRAWN:
            # The elder ended the binding (withdrew consent) after it was opened: staff cannot certify with it.
            raise ProxyServiceError(PROXY_BINDING_WITHDRAWN, "the elder ended the binding after it was opened")
        if why is not None:
            # Opened for the record's previous person (its binding revoked by a roster change of the ID number):
            # neither staff nor a worker whose decision raced the import may certify the new person with it.
            raise ProxyServiceError(PROXY_BINDING_REVOKED, "the binding was revoked by a roster change")
        return False
    # Consent and verification sessions: the operator, then the binding; never the elder after them (they certify
    # nobody): the lock order, service/certification/lock_order.py.
    op = db.get(ProxyOperator, ps.operator_id, with_for_update=True)
    if op is None:
        return True
    claim = db.get(ProxyClaim, s.id) if ps.kind == ProxySessionKind.VERIFICATION.value else None
    if claim is not None and roster_name_differs(db, claim):
        raise ServiceError(ReasonCode.ID_FIELDS_INCONSISTENT, "the claimed name is not the roster's for this number")
    if claim is not None and op.verified_at is None:
        claim = locked_claim(db, s.id)
        mark_verified(op, claim.id_hash, claim.id_masked, claim.name)
        audit(db, actor(op), "proxy.operator.verified", op.id, {"session": s.id, "template": False})
    binding = db.get(ProxyBinding, ps.binding_id, with_for_update=True) if ps.binding_id else None
    if ps.kind == ProxySessionKind.CONSENT.value and binding is not None and binding.consent_at is None:
        refusal = record_consent(db, binding, ConsentMethod.LIVE_VIDEO, s.id, actor(op))
        if refusal is not None:
            # Refused, not accepted with nothing recorded: a staff accept that activated no binding read as done
            # (docs/proxy.md, *A late consent*). The refusal's audit entry goes with the rolled-back review.
            raise ProxyServiceError(refusal, "the elder's consent can no longer be recorded for this binding")
    return True
