"""A channel's read of a session's outcome with its key, for the sessions that key opened.

The session token ends `SESSION_TTL_S` after the session opened or queued, and a staff review does not renew it
(docs/security.md): a case decided by staff later was unreadable to the app that opened it, which showed 审核中 for
good, and a rejected pensioner was never told to try again. The key reads the outcome instead: state, decision,
reason codes, when decided and whether staff decided it; no media, no scores, nothing of the reviewer."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.certification import attempts
from service.certification.audit import audit_read
from service.certification.context import ServiceContext
from service.certification.errors import NotFoundError
from service.certification.models import CertSession

OUTCOME_READ = "session.outcome.read"


def channel_outcome(
    db: Session, ctx: ServiceContext, s: CertSession, actor: str, aliases: tuple[str, ...]
) -> dict[str, object]:
    """The outcome of `s` for the client that opened it (`actor`, or one of its `aliases`: its names under previous
    signing keys and the keys API_KEYS_REPLACED makes one client with it), audited as a read. Another client's
    session, a relative's (opened by the operator, `attempts.requesters`) and an unknown id answer alike: 404."""
    opener = attempts.requesters(db, ctx, [(s.id, s.created_at)])[s.id]
    if not opener or opener not in (actor, *aliases):
        raise NotFoundError("session")
    audit_read(db, actor, OUTCOME_READ, s.id, {"state": s.state, "decision": s.decision})
    return {
        "session_id": s.id,
        "state": s.state,
        "channel": s.channel,
        "decision": s.decision,
        "reasons": list(s.reasons or []),
        "decided_at": s.decided_at.isoformat() + "Z" if s.decided_at else None,
        "reviewed": "review" in (s.result or {}),
    }
