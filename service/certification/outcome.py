"""A channel's read of a session's outcome with its key, for the sessions that key opened.

The session token ends `SESSION_TTL_S` after the session opened or queued, and a staff review does not renew it
(docs/security.md): a case decided by staff later was unreadable to the app that opened it, which showed 审核中 for
good, and a rejected pensioner was never told to try again. The key reads the outcome instead: state, decision,
reason codes, when decided and whether staff decided it; no media, no scores, nothing of the reviewer. For a year-end
reconciliation the key also lists the sessions it opened that were decided in a period, page by page
(`channel_outcomes`), by the same rule of whose a session is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from service.certification import attempts, registry
from service.certification.audit import audit_read, person_ref
from service.certification.context import ServiceContext
from service.certification.errors import NotFoundError, ServiceError
from service.certification.models import AuditEntry, Beneficiary, CertSession
from service.infra.clock import local_midnight

OUTCOME_READ = "session.outcome.read"
OUTCOMES_READ = "session.outcomes.read"  # one entry per page of the list (registry.audit_shown)
OUTCOMES_MAX_PAGE = 500  # a page's most sessions (`limit`); the default is 100
_CURSOR_SEP = "~"


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
    return _view(s)


def _view(s: CertSession) -> dict[str, object]:
    return {
        "session_id": s.id,
        "state": s.state,
        "channel": s.channel,
        "decision": s.decision,
        "reasons": list(s.reasons or []),
        "decided_at": s.decided_at.isoformat() + "Z" if s.decided_at else None,
        "reviewed": "review" in (s.result or {}),
    }


@dataclass(frozen=True)
class OutcomePage:
    """One page of a key's outcomes: each session's outcome with its person (external id, masked number), and the
    cursor of the next page (None: no more)."""

    items: list[dict[str, object]]
    after: str | None


def channel_outcomes(
    db: Session,
    ctx: ServiceContext,
    caller: tuple[str, tuple[str, ...]],
    days: tuple[dt.date, dt.date],
    after: str = "",
    limit: int = 100,
) -> OutcomePage:
    """The outcomes of the sessions the client `caller` (its actor and aliases, as `channel_outcome`) opened whose
    decision time falls on the bureau's days `days` (first and last, both included), by decision time then id, `limit`
    after the cursor `after` (a keyset: no OFFSET). A session still with staff is listed by the time it went to them
    (decision `review`); settled, it moves to its settling time. One audit entry per page names whom it showed.
    ServiceError: a day outside the calendar (INVALID_DATE), the last before the first or a cursor that is none
    (FIELD_INVALID)."""
    actor, aliases = caller
    start, end = _window(ctx, days)
    opened = exists().where(
        AuditEntry.target == CertSession.id,  # ix_audit_entries_target_action (0024)
        AuditEntry.action == "session.create",
        AuditEntry.actor.in_((actor, *aliases)),
    )
    q = (
        select(CertSession, Beneficiary)
        .join(Beneficiary, Beneficiary.id == CertSession.beneficiary_id)
        .where(CertSession.decided_at >= start, CertSession.decided_at < end, opened)
    )
    if after:
        at, sid = _parse_cursor(after)
        q = q.where((CertSession.decided_at > at) | ((CertSession.decided_at == at) & (CertSession.id > sid)))
    rows = [(s, b) for s, b in db.execute(q.order_by(CertSession.decided_at, CertSession.id).limit(limit + 1))]
    page, more = rows[:limit], len(rows) > limit
    # The one rule of whose a session is (`attempts.requesters`, as the single outcome's): the query's own test is
    # the same for a key's sessions, and this keeps the list from showing one the single read would refuse.
    who = attempts.requesters(db, ctx, [(s.id, s.created_at) for s, _ in page])
    mine = [(s, b) for s, b in page if who[s.id] in (actor, *aliases)]
    items = [_view(s) | {"external_id": b.external_id, "id_masked": b.id_masked} for s, b in mine]
    last = page[-1][0] if page else None
    cursor = f"{last.decided_at.isoformat()}{_CURSOR_SEP}{last.id}" if last and last.decided_at and more else None
    detail = {"decided_from": days[0].isoformat(), "decided_to": days[1].isoformat(), "sessions": len(items)}
    registry.audit_shown(db, actor, OUTCOMES_READ, "-", detail, [person_ref(b.external_id, b.id) for _, b in mine])
    return OutcomePage(items, cursor)


def _window(ctx: ServiceContext, days: tuple[dt.date, dt.date]) -> tuple[dt.datetime, dt.datetime]:
    """The stored (naive UTC) instants from the start of the bureau's first day to the end of its last."""
    first, last = days
    for day in days:  # the calendar's edges overflow local_midnight (a 500): the exports' bounds
        if not registry.FIRST_SINCE <= day <= registry.LAST_SINCE:
            raise ServiceError(
                "INVALID_DATE", f"dates must be between {registry.FIRST_SINCE} and {registry.LAST_SINCE}"
            )
    if last < first:
        raise ServiceError("FIELD_INVALID", "decided_to is before decided_from")
    return local_midnight(ctx.settings, first), local_midnight(ctx.settings, last + dt.timedelta(days=1))


def _parse_cursor(after: str) -> tuple[dt.datetime, str]:
    """The place (decision time, session id) a next-page cursor names; FIELD_INVALID for one that is none."""
    at_text, sep, sid = after.rpartition(_CURSOR_SEP)
    try:
        at = dt.datetime.fromisoformat(at_text) if sep and sid else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is not None:  # the cursors this list hands out are naive UTC
        raise ServiceError("FIELD_INVALID", "after is not a cursor of this list (use the `next` of a page)")
    return at, sid
