"""The daily failure limits: one home for "may this person try again today?" (issue #22, item 5).

A rejected certification counts twice: against whoever asked for the session (the requester) and against the
person certified (the beneficiary). The requester's limit (FAILURES_PER_DAY) is the one a citizen meets; the
beneficiary-wide cap (FAILURES_PER_DAY_BENEFICIARY) is higher, so a stranger who knows a pensioner's name and
ID number spends only their own attempts, never the pensioner's: three garbage uploads from an attacker's
WeChat account used to block every non-staff channel of the victim for the day.

Who the requester was is read from what the session already records, so no new column is needed:
the API client key whose `session.create` audit entry opened it (channels send no end-user reference), else the
family-page operator (proxy_sessions), else the WeChat account the session is linked to (wechat_sessions), else
whoever else the `session.create` audit entry names.
The first two are the features' records: each feature registers a `RequesterSource` on ``ctx.hooks.requesters``
at start-up (proxy before WeChat), so the core reads them without importing a feature.
Requesters are named like audit actors: "wechat:<mac8>", "operator:<id>", "api:<mac8>", "admin:<mac8>".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, CertSession, SessionDecision, SessionState, utcnow
from service.infra.clock import HasTimeZone, local_day_start

# Queued or being processed: a try whose decision may yet be a rejection.
UNDECIDED_STATES = (SessionState.QUEUED, SessionState.PROCESSING)
# The session.create audit entry is written in the request that inserts the session: seconds apart at most.
# The window keeps the audit lookup on the indexed `at` column instead of scanning every session.create entry.
_AUDIT_SLACK = dt.timedelta(minutes=10)
# Audit actors of the API client keys (a channel's, the bureau's admin key): a session they opened is theirs.
CLIENT_KEY_ACTORS = ("api:", "admin:")


def wechat_requester(ctx: ServiceContext, openid: str) -> str:
    """The requester (and audit actor) name of a WeChat account: a keyed hash, never the openid itself."""
    return "wechat:" + ctx.keyring.mac(openid)[:8]


@dataclass(frozen=True)
class Failures:
    """Today's rejected certifications of one beneficiary: all of them, and those of one requester."""

    total: int
    mine: int


def rejected_today(
    db: Session, settings: HasTimeZone, beneficiary_id: int, now: dt.datetime
) -> list[tuple[str, dt.datetime]]:
    """(session id, created at) of the beneficiary's rejections since the bureau's local midnight."""
    return rejected_today_where(db, settings, CertSession.beneficiary_id == beneficiary_id, now)


def rejected_today_where(
    db: Session, settings: HasTimeZone, where: ColumnElement[bool], now: dt.datetime
) -> list[tuple[str, dt.datetime]]:
    """(session id, created at) of today's rejections among the sessions ``where`` selects: a feature counts
    the sessions without a beneficiary it opened (a relative's verifications count against the relative)."""
    rows = db.execute(select(CertSession.id, CertSession.created_at).where(where, _rejected_today(settings, now))).all()
    return [(r[0], r[1]) for r in rows]


def _rejected_today(settings: HasTimeZone, now: dt.datetime) -> ColumnElement[bool]:
    """Rejected since the bureau's local midnight."""
    return and_(
        CertSession.decision == SessionDecision.REJECT, CertSession.decided_at >= local_day_start(settings, now)
    )


def requesters(db: Session, ctx: ServiceContext, rows: list[tuple[str, dt.datetime]]) -> dict[str, str]:
    """Who asked for each of these sessions ("" when nothing records it). A session a client key opened is that
    client's whatever a feature links to it: a WeChat link made with a channel session's token (before the link was
    confined to family sessions, `links.link_family_session`) displaced the key, whose `/outcome` then answered 404."""
    ids = [sid for sid, _ in rows]
    if not ids:
        return {}
    opened = _audited_openers(db, rows)
    found = {sid: who for sid, who in opened.items() if who.startswith(CLIENT_KEY_ACTORS)}
    for source in ctx.hooks.require_installed().requesters.values():  # registration order: proxy, then WeChat
        for sid, who in source(db, ctx, ids).items():
            found.setdefault(sid, who)
    for sid, who in opened.items():
        found.setdefault(sid, who)
    return {sid: found.get(sid, "") for sid in ids}


def opener(db: Session, s: CertSession) -> str:
    """The actor of `s`'s `session.create` audit entry: the API key, WeChat account or operator that opened it
    ("" for a session without one)."""
    return _audited_openers(db, [(s.id, s.created_at)]).get(s.id, "")


def opening_entry() -> ColumnElement[bool]:
    """Join condition of a session (CertSession) with its `session.create` audit entry (AuditEntry), whose actor
    is the session's opener (`opener`): one index probe per session (by (target, action): migration 0024). The
    queue's requester: its share (`undecided_opened_by`) and its turn (`job_order.next_job`)."""
    return and_(AuditEntry.target == CertSession.id, AuditEntry.action == "session.create")


def undecided_opened_by(db: Session, actor: str, limit: int) -> int:
    """Sessions awaiting their decision (queued or processing) that `actor` opened, counted up to `limit`: the
    queue's undecided sessions, each found by its `session.create` entry (`opening_entry`)."""
    opened = (
        select(CertSession.id)
        .join(AuditEntry, opening_entry())
        .where(CertSession.state.in_(UNDECIDED_STATES), AuditEntry.actor == actor)
        .limit(limit)
    )
    return int(db.scalar(select(func.count()).select_from(opened.subquery())) or 0)


def _audited_openers(db: Session, rows: list[tuple[str, dt.datetime]]) -> dict[str, str]:
    """The actor of each session's `session.create` audit entry (none for a session without one)."""
    windows = [
        and_(AuditEntry.target == sid, AuditEntry.at.between(at - _AUDIT_SLACK, at + _AUDIT_SLACK)) for sid, at in rows
    ]
    query = select(AuditEntry.target, AuditEntry.actor).where(AuditEntry.action == "session.create", or_(*windows))
    return {sid: actor for sid, actor in db.execute(query)}


def failures(
    db: Session, ctx: ServiceContext, beneficiary_id: int, requester: str | None, now: dt.datetime | None = None
) -> Failures:
    """Today's rejections of the beneficiary; `mine` counts those `requester` asked for (all of them when the
    requester is unknown: the strict, pre-#22 reading)."""
    rows = rejected_today(db, ctx.settings, beneficiary_id, now or utcnow())
    if requester is None:
        return Failures(len(rows), len(rows))
    who = requesters(db, ctx, rows)
    return Failures(len(rows), sum(1 for sid, _ in rows if who[sid] == requester))


def rejected_or_undecided_today(
    db: Session, settings: HasTimeZone, where: ColumnElement[bool], now: dt.datetime, besides: str
) -> list[tuple[str, dt.datetime]]:
    """(session id, created at) of today's rejections among the sessions ``where`` selects, and of those still
    awaiting their decision (each may yet be a rejection), session ``besides`` left out. One statement: a decision
    committed meanwhile moves a session from undecided to rejected, never out of both."""
    tried = or_(_rejected_today(settings, now), CertSession.state.in_(UNDECIDED_STATES))
    rows = db.execute(
        select(CertSession.id, CertSession.created_at).where(where, CertSession.id != besides, tried)
    ).all()
    return [(r[0], r[1]) for r in rows]


def with_pending(db: Session, ctx: ServiceContext, s: CertSession, now: dt.datetime | None = None) -> Failures:
    """Today's rejections of the beneficiary of `s` plus every session of theirs still awaiting its decision,
    `mine` counted for the requester of `s` (all of them when nothing records it). The limit at session creation
    alone counted only decided rejections: sessions opened together all passed it, and every one of them then
    sent a video (a try at the face match and liveness)."""
    person = CertSession.beneficiary_id == s.beneficiary_id
    rows = rejected_or_undecided_today(db, ctx.settings, person, now or utcnow(), s.id)
    who = requesters(db, ctx, [*rows, (s.id, s.created_at)])
    me = who[s.id]
    return Failures(len(rows), sum(1 for sid, _ in rows if not me or who[sid] == me))


def limit_reached(f: Failures, ctx: ServiceContext) -> bool:
    return remaining(f, ctx) == 0


def attempts_left(db: Session, ctx: ServiceContext, beneficiary_id: int, requester: str | None) -> int:
    """Failed certifications this requester may still have today for this beneficiary."""
    return remaining(failures(db, ctx, beneficiary_id, requester), ctx)


def remaining(f: Failures, ctx: ServiceContext) -> int:
    """Failures still allowed today after ``f`` (0 exactly when `limit_reached`)."""
    s = ctx.settings
    cap = max(s.certification.failures_per_day, s.certification.failures_per_day_beneficiary)
    return max(0, min(s.certification.failures_per_day - f.mine, cap - f.total))
