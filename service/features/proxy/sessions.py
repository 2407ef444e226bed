"""Sessions opened through proxy certification: the operator's own verification, the elder's consent video,
and proxy certifications. Each is an ordinary certification session (uploads through the normal endpoints)
linked to the operator by a `ProxySession` row."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.reasons import ReasonCode
from proxy_auth import ProxyAuthError, require_usable
from service.certification import idnumber
from service.certification.catalog import ServiceCode
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, BeneficiaryStatus, Channel
from service.certification.sessions import NewSession, create_session
from service.features.proxy.bindings import as_service_error, require_verified, to_rule
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator, ProxySession, ProxySessionKind
from service.features.proxy.operators import actor
from service.infra.security import mask_id, normalise_id

OPERATOR_STATUS = BeneficiaryStatus.PROXY_OPERATOR


def _link(db: Session, new: NewSession, kind: ProxySessionKind, op: ProxyOperator, binding: str | None) -> None:
    db.add(ProxySession(session_id=new.session.id, kind=kind.value, operator_id=op.id, binding_id=binding))
    db.flush()


def open_verification(
    db: Session, ctx: ServiceContext, op: ProxyOperator, id_number: str, name: str, consent: bool
) -> NewSession:
    number = normalise_id(id_number)
    problem = idnumber.validate(number)
    if problem is not None:
        raise ServiceError(ReasonCode.ID_CHECKSUM_FAILED, problem)
    person = db.scalar(select(Beneficiary).where(Beneficiary.id_hash == ctx.keyring.id_hash(number)))
    if person is None:
        person = Beneficiary(
            external_id="OPERATOR-" + uuid.uuid4().hex[:12],
            id_hash=ctx.keyring.id_hash(number),
            id_enc=ctx.keyring.encrypt_field(number, "beneficiary.id_number"),
            id_masked=mask_id(number),
            name=name.strip(),
            region=number[:6],
            birth_date=idnumber.birth_date(number),
            benefit_types=[],
            status=OPERATOR_STATUS,
        )
        db.add(person)
        db.flush()
    elif person.name != name.strip():
        raise ServiceError(ReasonCode.ID_FIELDS_INCONSISTENT, "name does not match the ID number")
    new = create_session(db, ctx, person, Channel.SELF, consent, actor(op))
    _link(db, new, ProxySessionKind.VERIFICATION, op, None)
    return new


def open_consent(db: Session, ctx: ServiceContext, op: ProxyOperator, row: ProxyBinding) -> NewSession:
    """A live video of the elder (with the on-screen consent step shown by the H5 page) and their ID card."""
    if row.status != BindingStatus.PENDING_CONSENT:
        raise ServiceError("SESSION_STATE", f"binding is {row.status}: no consent needed")
    elder = _elder(db, row)
    new = create_session(db, ctx, elder, Channel.PROXY, False, actor(op))
    _link(db, new, ProxySessionKind.CONSENT, op, row.id)
    return new


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
