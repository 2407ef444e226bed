"""Sessions opened through proxy certification: the operator's own verification, the elder's consent video,
and proxy certifications. Each is an ordinary certification session (uploads through the normal endpoints)
linked to the operator by a `ProxySession` row. A verification session has no beneficiary: what it verifies is
the operator's `ProxyClaim` (issue 20)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from pipelines.names import same_name
from pipelines.reasons import ReasonCode
from proxy_auth import ProxyAuthError, require_usable
from service.certification import attempts, idnumber
from service.certification.audit import audit
from service.certification.catalog import ServiceCode
from service.certification.context import ServiceContext
from service.certification.contract import Claim
from service.certification.errors import NotFoundError, ServiceError
from service.certification.fingerprints import MAX_COMPARED
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    one_of_hashes,
    utcnow,
)
from service.certification.sessions import NewSession, create_claim_session, create_session
from service.features.proxy.bindings import (
    PROXY_CONSENT_EXPIRED,
    PROXY_CONSENT_GIVEN,
    PROXY_ELDER_SLOTS_FULL,
    as_service_error,
    consent_expired,
    elder_slots_full,
    require_verified,
    to_rule,
)
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import (
    CLAIM_FIELD,
    ENDED_STATUSES,
    BindingStatus,
    ProxyBinding,
    ProxyClaim,
    ProxyOperator,
    ProxyOperatorIdentity,
    ProxySession,
    ProxySessionKind,
)
from service.features.proxy.operators import actor
from service.features.proxy.policy import proxy_policy
from service.infra.clock import local_today
from service.infra.security import mask_id, normalise_id


def _link(db: Session, new: NewSession, kind: ProxySessionKind, op: ProxyOperator, binding: str | None) -> None:
    db.add(ProxySession(session_id=new.session.id, kind=kind.value, operator_id=op.id, binding_id=binding))
    db.flush()


def open_verification(
    db: Session, ctx: ServiceContext, op: ProxyOperator, id_number: str, name: str, consent: bool
) -> NewSession:
    """The relative's own real-name session: no beneficiary (the relative is nobody's pension, or certifies
    their own elsewhere); what it verifies is a `ProxyClaim`, and its failures count against the operator."""
    if op.verified_at is not None:
        # A new verification would replace the verified identity and face template (the operator-face check's
        # reference): once verified, a relative's identity changes only through staff.
        audit(db, actor(op), "proxy.verification.refused", op.id, {"reason": "PROXY_OPERATOR_VERIFIED"})
        db.commit()  # the refusal is on record even though the request fails (nothing else was written)
        raise ProxyServiceError("PROXY_OPERATOR_VERIFIED", "operator already verified; identity changes go to staff")
    number = normalise_id(id_number)
    problem = idnumber.validate(number, local_today(ctx.settings))  # born up to the bureau's today
    if problem is not None:
        # Typed, not read from a photo: the card reason ("请核对后重拍") would ask for a photo nobody took.
        raise ServiceError("PROXY_ID_NUMBER", problem)
    hashes = ctx.keyring.id_hashes(number)
    # No answer here may depend on the roster (whether the number is on it, under which name): anyone with an
    # account could probe it. The roster's name is checked when the session is decided (`roster_name_differs`),
    # after a card carrying the number and a live face.
    listed = db.scalar(select(Beneficiary).where(one_of_hashes(Beneficiary.id_hash, hashes)))
    id_hash = _stored_hash(db, hashes, listed)
    new = create_claim_session(db, ctx, Channel.SELF, consent, actor(op), verification_failures(db, ctx, op.id))
    _link(db, new, ProxySessionKind.VERIFICATION, op, None)
    db.add(
        ProxyClaim(
            session_id=new.session.id,
            operator_id=op.id,
            id_hash=id_hash,
            id_enc=ctx.keyring.encrypt_field(number, CLAIM_FIELD),
            id_masked=mask_id(number),
            name=name.strip(),
            region=listed.region if listed is not None else idnumber.residence_region(number) or number[:6],
        )
    )
    db.flush()
    return new


def _stored_hash(db: Session, hashes: tuple[str, ...], listed: Beneficiary | None) -> str:
    """The hash this person's rows already carry (a previous signing key's until `pension-cert rekey` reaches
    them, which moves them all at once), else the current key's: one hash per person, so that the comparisons of
    stored hashes (roster row, claims, the relative's identity) hold during a rotation."""
    if listed is not None:
        return listed.id_hash
    return person_hash(db, hashes) or hashes[0]


def person_hash(db: Session, hashes: tuple[str, ...], /) -> str | None:
    """A `PersonHashSource`: the previous signing key's hash a relative's claim or verified identity carries for
    this person (`hashes`: the number's under every key in use, current first); None when none does. A claim and a
    roster row created during a rotation take it (`_stored_hash`, the roster's new rows)."""
    if len(hashes) < 2:
        return None
    claimed = db.scalar(select(ProxyClaim.id_hash).where(one_of_hashes(ProxyClaim.id_hash, hashes[1:])).limit(1))
    if claimed is not None:
        return claimed
    who = ProxyOperatorIdentity.person_hash
    return db.scalar(select(who).where(one_of_hashes(who, hashes[1:])).limit(1))


def roster_name_differs(db: Session, claim: ProxyClaim) -> bool:
    """The claimed number is on the roster under another name: the roster's name is authoritative. Compared as
    names (pipelines.names.same_name: a middle dot typed as • or ・, spaces, full-width letters are the same)."""
    listed = db.scalar(select(Beneficiary.name).where(Beneficiary.id_hash == claim.id_hash))
    return listed is not None and not same_name(listed, claim.name)


def _verifications_of(operator_id: str) -> ColumnElement[bool]:
    """The sessions that are this operator's verifications (for CertSession queries)."""
    mine = select(ProxyClaim.session_id).where(ProxyClaim.operator_id == operator_id)
    return CertSession.id.in_(mine)


def verification_failures(db: Session, ctx: ServiceContext, operator_id: str) -> attempts.Failures:
    """Today's rejected verifications of this operator: a verification session has no beneficiary, its failures
    count against the relative who opened it (the ordinary FAILURES_PER_DAY, service/certification/attempts.py)."""
    n = len(attempts.rejected_today_where(db, ctx.settings, _verifications_of(operator_id), utcnow()))
    return attempts.Failures(total=n, mine=n)


def queue_guard(db: Session, ctx: ServiceContext, s: CertSession, /) -> None:
    """A `QueueGuard` (docs/proxy.md, *Sessions in flight*): the upload that would queue a relative's verification
    or a proxy certification counts that session's other tries still awaiting their decision as failures, so
    sessions opened together (each passed the check when it opened: nothing was decided yet) give no more tries
    than the operator's daily limit, or than the binding's failures before its lock."""
    ps = db.get(ProxySession, s.id)
    if ps is None:
        return
    if ps.kind == ProxySessionKind.VERIFICATION.value:
        _check_verification_queue(db, ctx, ps.operator_id, s.id)
    elif ps.kind == ProxySessionKind.CERTIFICATION.value and ps.binding_id is not None:
        _check_binding_queue(db, ps.binding_id, s.id)


def _check_verification_queue(db: Session, ctx: ServiceContext, operator_id: str, session_id: str) -> None:
    # Two uploads queueing two of the operator's verifications at once would each miss the other: serialised on
    # the operator's row (PostgreSQL; SQLite serialises writers). After the session's own row, as a worker's
    # decision takes them (`hooks.on_decided`): the lock order of service/certification/lock_order.py.
    db.execute(select(ProxyOperator.id).where(ProxyOperator.id == operator_id).with_for_update())
    tries = attempts.rejected_or_undecided_today(db, ctx.settings, _verifications_of(operator_id), utcnow(), session_id)
    if attempts.limit_reached(attempts.Failures(total=len(tries), mine=len(tries)), ctx):
        raise ServiceError(ReasonCode.ATTEMPTS_EXCEEDED, "daily failures reached", extra={"staff_review": True})


def _check_binding_queue(db: Session, binding_id: str, session_id: str) -> None:
    """The binding's failures plus its other certifications awaiting their decision must stay under the lock.
    Serialised by the elder's row, which the core locks first for every session with a beneficiary."""
    pending = (
        select(func.count())
        .select_from(CertSession)
        .join(ProxySession, ProxySession.session_id == CertSession.id)
        .where(
            ProxySession.binding_id == binding_id,
            CertSession.id != session_id,
            CertSession.state.in_(attempts.UNDECIDED_STATES),
        )
        .scalar_subquery()
        .label("pending")
    )
    # One statement: a worker's decision moves its session from pending into `failures` in one commit.
    row = db.execute(
        select(ProxyBinding.status, ProxyBinding.locked, ProxyBinding.failures, pending).where(
            ProxyBinding.id == binding_id
        )
    ).one()
    if row.status in ENDED_STATUSES:
        # Unbound, or revoked by a roster change of the elder's ID number, since the session was opened.
        raise NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    if row.locked:
        raise ProxyServiceError("PROXY_BINDING_LOCKED", "binding locked pending staff review")
    if row.failures + row.pending >= proxy_policy().failures_before_lock:
        # Not the daily limit: the earlier video's decision decides whether this one may count (or the lock).
        raise ProxyServiceError("PROXY_DECISION_PENDING", "failures before the lock in flight")


def verification_attempts_left(db: Session, ctx: ServiceContext, operator_id: str) -> int:
    """Failed verifications this operator may still have today."""
    return attempts.remaining(verification_failures(db, ctx, operator_id), ctx)


def claim_of(db: Session, ctx: ServiceContext, s: CertSession, /) -> Claim | None:
    """The claim of a verification session (a `ClaimSource`): the number the card must carry, and the earlier
    verification sessions claiming the same number (the near-duplicate check's "same person")."""
    row = db.get(ProxyClaim, s.id)
    if row is None:
        return None
    peers = db.scalars(
        select(ProxyClaim.session_id)
        .where(ProxyClaim.id_hash == row.id_hash, ProxyClaim.session_id != s.id)
        .order_by(ProxyClaim.created_at.desc())
        .limit(MAX_COMPARED)
    ).all()
    return Claim(ctx.keyring.decrypt_field(row.id_enc, CLAIM_FIELD), tuple(peers))


def open_consent(db: Session, ctx: ServiceContext, op: ProxyOperator, row: ProxyBinding) -> NewSession:
    """A live video of the elder (with the on-screen consent step shown by the H5 page) and their ID card."""
    if consent_expired(row):
        raise ProxyServiceError(PROXY_CONSENT_EXPIRED, "the elder did not consent within the consent window")
    if row.status in ENDED_STATUSES:
        raise NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    if row.status != BindingStatus.PENDING_CONSENT:
        raise ProxyServiceError(PROXY_CONSENT_GIVEN, f"binding is {row.status}: no consent needed")
    elder = _elder(db, row)
    _check_consent_can_count(db, op, row, elder)
    new = create_session(db, ctx, elder, Channel.PROXY, False, actor(op))
    _link(db, new, ProxySessionKind.CONSENT, op, row.id)
    return new


def _check_consent_can_count(db: Session, op: ProxyOperator, row: ProxyBinding, elder: Beneficiary) -> None:
    """Refuse, before anyone films, a consent video that could not count (the refusal audited with its reason).

    The elder recorded dead: nobody the elder accepted holds this binding (it waits for consent), so the answer
    is an unknown binding's (404 PROXY_NOT_BOUND, the same body), never BENEFICIARY_DECEASED: whoever typed a name
    and number learns nothing of a death (docs/security.md Part T). The elder's relative slots full: 409
    PROXY_ELDER_SLOTS_FULL, rather than a video reported accepted while the binding stays pending (the slots are
    checked again when the video is decided, `holds.hold`)."""
    if elder.status == BeneficiaryStatus.DECEASED:
        reason = "deceased"
        error: ServiceError = NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    elif elder_slots_full(db, row):
        reason = PROXY_ELDER_SLOTS_FULL
        error = ProxyServiceError(reason, "the elder already has as many relatives as allowed")
    else:
        return
    audit(db, actor(op), "proxy.consent.refused", elder.external_id, {"binding": row.id, "reason": reason})
    db.commit()  # the refusal is on record even though the request fails (nothing else was written)
    raise error


def open_certification(db: Session, ctx: ServiceContext, op: ProxyOperator, row: ProxyBinding) -> NewSession:
    require_verified(op)
    try:
        require_usable(to_rule(row, op.id, str(row.beneficiary_id)))
    except ProxyAuthError as exc:
        if exc.reason is ReasonCode.ATTEMPTS_EXCEEDED:
            raise ProxyServiceError("PROXY_BINDING_LOCKED", exc.detail) from exc
        raise as_service_error(exc) from exc
    if row.status == BindingStatus.PENDING_CONSENT:
        raise ProxyServiceError("PROXY_CONSENT_PENDING", "the elder has not consented yet")
    elder = _elder(db, row)
    if elder.status == BeneficiaryStatus.DECEASED:
        raise ServiceError(ReasonCode.BENEFICIARY_DECEASED, "beneficiary is registered as deceased")
    # Never enrol the elder's template from a proxy video: that is the video a fraudster controls.
    new = create_session(db, ctx, elder, Channel.PROXY, False, actor(op))
    _link(db, new, ProxySessionKind.CERTIFICATION, op, row.id)
    return new


def _elder(db: Session, row: ProxyBinding) -> Beneficiary:
    elder = db.get(Beneficiary, row.beneficiary_id)
    if elder is None:
        raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "beneficiary gone")
    return elder
