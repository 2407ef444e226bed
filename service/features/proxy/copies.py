"""The certificate copy a relative gets of the elder of one of their bindings in force: the one rule behind the proxy
API (`/api/v1/proxy/bindings/{id}/certificate(.png)`, the operator token) and the H5 family page
(`/h5/family/bindings/{id}/certificate.png`, the WeChat login of the H5 pages' own account), docs/security.md Part BZ.

By the relative's lasting identity, as a reviewed case is accepted after the session's token has ended; through
`bindings.accepted` (the single rule for a binding in force) and `certificates.latest_copy` (the single rule for
serving a copy); audited `certificate.copy`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from service.certification.audit import audit_read
from service.certification.certificates import COPY_ACTION, Standing, latest_copy
from service.certification.errors import NotFoundError
from service.certification.models import Beneficiary, Certification
from service.features.proxy import bindings, operators
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import BindingStatus, ProxyOperator


def elder_copy(
    db: Session, op: ProxyOperator, binding_id: str, today: dt.date
) -> tuple[Beneficiary, Certification, Standing]:
    """(elder, certification, standing) of the latest valid certificate of the elder of `op`'s binding `binding_id`.
    Another relative's or an ended binding: NotFoundError PROXY_NOT_BOUND (as an unknown id); pending consent:
    PROXY_CONSENT_PENDING; none valid: `latest_copy`'s refusal (revoked, expired, ...; NOT_FOUND never certified).
    The copy is audited and committed (a read of personal data)."""
    row = bindings.own_binding(db, op, binding_id)
    if row.status == BindingStatus.PENDING_CONSENT:
        raise ProxyServiceError("PROXY_CONSENT_PENDING", "the elder has not consented to this binding yet")
    elder = db.get(Beneficiary, row.beneficiary_id)
    if not bindings.accepted(row) or elder is None:
        raise NotFoundError("binding", code="PROXY_NOT_BOUND")
    cert, st = latest_copy(db, elder, today)
    audit_read(db, operators.actor(op), COPY_ACTION, elder.external_id, {"certification": cert.id, "binding": row.id})
    return elder, cert, st
