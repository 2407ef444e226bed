"""WeChat notifications, (1) the queue: which notices are due, each recorded once (a unique row per kind +
reference + openid), so a notice goes out at most once however often the schedule runs or however many
schedulers there are (notify.py: the whole; notice_send.py delivers them, notice_message.py composes them).

Reminders are correct by construction (issue 21): only to the openid that certified the person themselves
through the H5 pages (an accepted self session, not one merely opened), only for a real, lapsing or lapsed
validity date, a suspension notice only when the status is really ``suspended``, never while a session of that
person is in flight or awaits review.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import CycleRules, CycleState, cycle_state
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    SessionDecision,
    SessionState,
    utcnow,
)
from service.features.wechat.accounts import own_accounts
from service.features.wechat.models import WeChatNotice, WeChatSessionLink
from service.features.wechat.revoked import REVOKED, revocations_to_tell, told_today
from service.infra import clock

# Only recent decisions are scanned for result messages: the scan stays small as sessions accumulate.
RESULT_WINDOW = dt.timedelta(days=7)
STAFF_DECISION = "review"  # notice kind of a staff decision on a review case (ref: the session id)
ASSIST = "assist"  # a citizen's manual-review / home-visit request closed by staff (ref: the request id)


def _record(db: Session, kind: str, ref: str, openid: str) -> bool:
    """Insert the notice row unless it exists. True when this call created it."""
    exists = db.scalar(
        select(WeChatNotice.id).where(WeChatNotice.kind == kind, WeChatNotice.ref == ref, WeChatNotice.openid == openid)
    )
    if exists is not None:
        return False
    try:
        with db.begin_nested():  # a concurrent scheduler may insert the same row: the constraint decides
            db.add(WeChatNotice(kind=kind, ref=ref, openid=openid))
    except IntegrityError:
        return False
    return True


def reminder_kind(b: Beneficiary, today: dt.date, rules: CycleRules) -> str | None:
    """The reminder `b` is due on `today`, if any: due_soon / overdue (still paid) / suspended."""
    if b.valid_until is None:
        return None  # undated: nothing true to remind of (service/certification/cycle.py)
    state = cycle_state(b.status, b.valid_until, today, rules)
    if b.status == BeneficiaryStatus.SUSPENDED:
        return "suspended" if state is CycleState.OVERDUE and b.suspended_on is not None else None
    if b.status != BeneficiaryStatus.ACTIVE:
        return None
    return {CycleState.DUE_SOON: "due_soon", CycleState.OVERDUE: "overdue"}.get(state)


def in_flight(now: dt.datetime) -> ColumnElement[bool]:
    """A session that is not final: uploads awaited, queued, being processed, or an open review case (the
    same cases as service.features.console.review_queue.open_case_filter: review decision or failed job)."""
    return or_(
        (CertSession.state == SessionState.OPEN) & (CertSession.expires_at > now),
        CertSession.state.in_((SessionState.QUEUED, SessionState.PROCESSING, SessionState.FAILED)),
        (CertSession.state == SessionState.DECIDED) & (CertSession.decision == SessionDecision.REVIEW),
    )


def busy(db: Session, beneficiary_id: int, now: dt.datetime) -> bool:
    q = select(CertSession.id).where(CertSession.beneficiary_id == beneficiary_id, in_flight(now)).limit(1)
    return db.scalar(q) is not None


def reminder_ref(beneficiary_id: int, until: dt.date) -> str:
    # One reminder per kind and validity period: a new certification moves valid_until and re-arms them.
    return f"{beneficiary_id}:{until.isoformat()}"


def _own_openids(db: Session, today: dt.date, rules: CycleRules) -> dict[int, tuple[str, Beneficiary]]:
    """Beneficiaries whose date is due within the reminder window, with the openid of their latest accepted
    self-certification through the H5 pages (a relative's proxy or verification session does not count, nor one
    whose certification a supervisor revoked: that account was not the person's; certification/revocation.py;
    nor one opened before the roster gave the record another ID number: that was the previous number's person;
    certification/current_person.py)."""
    horizon = today + dt.timedelta(days=rules.due_soon_days)
    rows = db.execute(own_accounts().where(Beneficiary.valid_until < horizon))  # the rule: accounts.py
    return {b.id: (openid, b) for openid, b in rows}  # the latest accept wins


def queue_notices(db: Session, ctx: ServiceContext, today: dt.date) -> int:
    """Record every notice that is due and not yet recorded."""
    n = 0
    decided = db.execute(
        select(WeChatSessionLink.session_id, WeChatSessionLink.openid, CertSession.result)
        .join(CertSession, CertSession.id == WeChatSessionLink.session_id)
        .where(CertSession.state == SessionState.DECIDED, CertSession.decided_at >= utcnow() - RESULT_WINDOW)
        .order_by(CertSession.decided_at, CertSession.id)  # recorded, so sent, in the order they were decided
    )
    # Settled by staff: their decision has its own notice (queue_staff_decision).
    results = [("result", sid, openid) for sid, openid, result in decided if not (result or {}).get("review")]
    known = _recorded(db, results)
    n += sum(_record(db, *notice) for notice in results if notice not in known)
    now = utcnow()
    for ref, openid in revocations_to_tell(db, now - RESULT_WINDOW):  # before the reminders: they wait a day
        n += _record(db, REVOKED, ref, openid)
    day = clock.local_midnight(ctx.settings, today), clock.local_midnight(ctx.settings, today + dt.timedelta(days=1))
    told = told_today(db, day)
    # The earliest date first: recorded, so sent, in that order (a capped day picks the most urgent: quota.urgency).
    owners = sorted(_own_openids(db, today, ctx.rules).values(), key=lambda ob: (ob[1].valid_until or today, ob[1].id))
    due: list[tuple[tuple[str, str, str], int]] = []
    for openid, b in owners:
        kind = reminder_kind(b, today, ctx.rules)
        if kind is None or b.valid_until is None or b.id in told:
            continue  # told_today: the notice of a revocation says the new date already (revoked.py)
        due.append(((kind, reminder_ref(b.id, b.valid_until), openid), b.id))
    known = _recorded(db, [notice for notice, _ in due])
    for notice, b_id in due:
        if notice not in known and not busy(db, b_id, now):
            n += _record(db, *notice)
    return n


def _recorded(db: Session, notices: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which of these (kind, ref, openid) are recorded already, in a few statements: each run (every minute) looks
    at everyone due, a whole campaign's worth on its busiest days, and a look-up each was hundreds of thousands
    of statements a minute."""
    found: set[tuple[str, str, str]] = set()
    kinds, refs = sorted({k for k, _, _ in notices}), sorted({r for _, r, _ in notices})
    for i in range(0, len(refs), 500):
        rows = db.execute(
            select(WeChatNotice.kind, WeChatNotice.ref, WeChatNotice.openid).where(
                WeChatNotice.kind.in_(kinds), WeChatNotice.ref.in_(refs[i : i + 500])
            )
        )
        found.update((str(k), str(r), str(o)) for k, r, o in rows)
    return found


def queue_staff_decision(db: Session, s: CertSession) -> int:
    """One message for a staff decision on a review case, to the openid that opened (or linked) the session
    from the H5 pages; sessions from other channels have nobody to message. Idempotent; in the caller's
    transaction, so the message exists exactly when the decision does."""
    link = db.get(WeChatSessionLink, s.id)
    if link is None:
        return 0
    return int(_record(db, STAFF_DECISION, s.id, link.openid))


def queue_assist_closed(db: Session, request_id: int, openid: str) -> int:
    """One message to the openid that asked, when staff close a manual-review / home-visit request; in the
    caller's transaction (the message exists exactly when the closing does)."""
    return int(_record(db, ASSIST, str(request_id), openid))
