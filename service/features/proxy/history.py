"""Who certified an elder by proxy, and when: visible to the elder's bound relatives and the elder."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from service.certification.audit import audit_read
from service.certification.models import Beneficiary, CertSession
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator, ProxySession, ProxySessionKind

READ_ACTION = "proxy.history.read"


# typing_extensions: pydantic (the API's response models, schemas.py) reads a TypedDict only from there before 3.12.
class HistoryOperator(TypedDict):
    name: str | None
    id_masked: str | None
    relationship: str
    is_me: bool


class HistoryEntry(TypedDict):
    kind: str
    operator: HistoryOperator
    opened_at: str
    state: str
    decision: str | None
    decided_at: str | None


def read_history(
    db: Session, actor: str, elder: Beneficiary, viewer: ProxyOperator | None = None, binding: str = ""
) -> list[HistoryEntry]:
    """The elder's history as `actor` reads it: a channel key (the elder's own page, staff tools) or a relative
    (`viewer`) through their `binding`. Who certified the elder, with the other relatives' names and decisions, is
    personal data: every read is audited alike (`proxy.history.read`, committed now, as audit_read); a relative's
    read was not (the auditor's review, F2)."""
    entries = elder_history(db, elder.id, viewer)
    detail: dict[str, object] = {"entries": len(entries)} | ({"binding": binding} if binding else {})
    audit_read(db, actor, READ_ACTION, elder.external_id, detail)
    return entries


def elder_history(db: Session, beneficiary_id: int, viewer: ProxyOperator | None = None) -> list[HistoryEntry]:
    rows = db.execute(
        select(ProxySession, CertSession, ProxyOperator, ProxyBinding)
        .join(CertSession, CertSession.id == ProxySession.session_id)
        .join(ProxyOperator, ProxyOperator.id == ProxySession.operator_id)
        .join(ProxyBinding, ProxyBinding.id == ProxySession.binding_id)
        .where(
            CertSession.beneficiary_id == beneficiary_id,
            ProxySession.kind.in_([ProxySessionKind.CERTIFICATION.value, ProxySessionKind.CONSENT.value]),
            # Revoked by a roster change of the record's ID number: that relative was the previous person's, and
            # neither they nor their certifications are the new person's to see (or to be shown to).
            ProxyBinding.status != BindingStatus.REVOKED,
        )
        .order_by(CertSession.created_at)
    ).all()
    out: list[HistoryEntry] = []
    for ps, s, op, binding in rows:
        out.append(
            {
                "kind": ps.kind,
                "operator": {
                    "name": op.name,
                    "id_masked": op.id_masked,
                    "relationship": binding.relationship,
                    "is_me": viewer is not None and viewer.id == op.id,
                },
                "opened_at": s.created_at.isoformat() + "Z",
                "state": s.state,
                "decision": s.decision,
                "decided_at": s.decided_at.isoformat() + "Z" if s.decided_at else None,
            }
        )
    return out
