"""打印凭证 at the counter: a person who walks in (no WeChat, a phone lost, a bank asking for the paper) gets a printed
copy of their certificate. Any staff member who may see the person (the region scope: one outside it reads as
missing), as for the person page's other counter actions; the copy is the one every lasting identity gets,
`certificates.latest_copy` (the latest certification valid today; none valid: why), recorded in the console's audit
chain as `certificate.copy` with the staff member and the certification."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from service.certification.catalog import staff_label
from service.certification.certificates import COPY_ACTION, Standing, latest_copy
from service.certification.errors import NotFoundError, ServiceError
from service.certification.models import Beneficiary, Certification
from service.features.console import audit_chain, scope
from service.features.console.auth import Staff

NONE_YET_ZH = "该人员还没有通过的认证，无凭证可打印"


def counter_copy(
    db: Session, staff: Staff, bid: int, today: dt.date
) -> tuple[Beneficiary, Certification, Standing] | None:
    """(person, certification, standing) of the copy to print for person `bid`, audited in the unit of work; None when
    `staff` may not see them. None valid today: `latest_copy`'s refusal (NotFoundError when never certified; else
    the latest one's code: revoked, expired, deceased, superseded), read with `refusal_zh`."""
    b = scope.beneficiary(db, staff, bid)
    if b is None:
        return None
    cert, st = latest_copy(db, b, today)
    audit_chain.record(db, staff.actor, COPY_ACTION, audit_chain.person_target(b), {"certification": cert.id})
    return b, cert, st


def refusal_zh(exc: ServiceError) -> str:
    """What the staff member reads when there is no copy to print."""
    if isinstance(exc, NotFoundError):
        return NONE_YET_ZH
    return f"无法打印凭证：{staff_label(exc.code)}"
