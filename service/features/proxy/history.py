"""Who certified an elder by proxy, and when: visible to the elder's bound relatives and the elder."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from service.certification.models import CertSession
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator, ProxySession, ProxySessionKind


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
