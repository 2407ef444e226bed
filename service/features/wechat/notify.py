"""WeChat notifications: the result of a certification, a staff decision on a review case, the due-soon
reminder, the overdue notice, the suspension notice and the notice of a revoked certification (revoked.py; what
each says: service/features/wechat/messages.py).

Each notice is first recorded (a unique row per kind + reference + openid), then delivered; so a notice goes
out at most once however often the schedule runs or however many schedulers there are. A failed delivery is
retried on later runs up to ``wechat_notify_max_attempts``, then marked failed (the record keeps the error); WeChat's
quota refusals stop the run without spending an attempt, an unreachable account is given up at once (quota.py).
A process that dies between claiming and sending leaves the row in ``sending``: it is not re-sent, because
sending twice is worse for a pensioner than a missing reminder that the yearly letter also covers.

Reminders are correct by construction (issue 21): only to the openid that certified the person themselves
through the H5 pages (an accepted self session, not one merely opened), only for a real, lapsing or lapsed
validity date, a suspension notice only when the status is really ``suspended``, never while a session of that
person is in flight or awaits review; and checked again just before sending, so a reminder queued a second
before an accept (which moves the date) is cancelled, not sent. Reminders are delivered in the bureau's daytime
only (``REMINDER_HOURS``): a date turns due at local midnight and the schedule runs every minute, so they would
otherwise reach pensioners at 00:01; queued at night, they wait (and are checked again) until the morning.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, or_, select, tuple_, update
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
    beneficiary_of,
    utcnow,
)
from service.features.console.models import AssistRequest
from service.features.wechat import quota
from service.features.wechat.accounts import own_accounts
from service.features.wechat.client import WeChatApi
from service.features.wechat.errors import WeChatError
from service.features.wechat.messages import (
    Message,
    assist_message,
    decision_message,
    reminder_message,
    session_kind,
    template_kind,
)
from service.features.wechat.models import NoticeStatus, WeChatNotice, WeChatSessionLink
from service.features.wechat.quota import REMINDER_HOURS, REMINDERS
from service.features.wechat.requesters import account_requesters
from service.features.wechat.revoked import REVOKED, revocations_to_tell, revoked_message, told_today
from service.infra import clock
from service.infra.clock import HasTimeZone, local_today

log = logging.getLogger(__name__)

# Only recent decisions are scanned for result messages: the scan stays small as sessions accumulate.
RESULT_WINDOW = dt.timedelta(days=7)
STAFF_DECISION = "review"  # notice kind of a staff decision on a review case (ref: the session id)
ASSIST = "assist"  # a citizen's manual-review / home-visit request closed by staff (ref: the request id)
# Held at night and while a session of the person is under way, as reminders are: the notice of a revoked
# certification too (the bureau's doing, not the person's; revoked.py). Its ref starts with the person's id.
DAYTIME = (*REMINDERS, REVOKED)


@dataclass
class NoticeRun:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    # Given up in a row for an unknown openid (quota.MISCONFIGURED): put back when the configuration is the cause.
    suspect: list[int] = field(default_factory=list, repr=False)
    at: dt.datetime | None = field(default=None, repr=False)  # the run's instant (WeChat's quota day: quota.spent)


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


def _reminder_ref(beneficiary_id: int, until: dt.date) -> str:
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
        due.append(((kind, _reminder_ref(b.id, b.valid_until), openid), b.id))
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


class WeChatNotifier:
    """The WeChat channel's `Notifier` (service/certification/contract.py): staff decisions and closed requests
    are queued as notices here and delivered by the schedule (`run_notifications`). Queuing does not need the
    WeChat settings: a notice only exists for a person who used the H5 pages, and it waits for delivery."""

    def staff_decision(self, db: Session, s: CertSession) -> int:
        return queue_staff_decision(db, s)

    def request_closed(self, db: Session, request_id: int, openid: str) -> int:
        return queue_assist_closed(db, request_id, openid)


def install(ctx: ServiceContext) -> None:
    """Register the WeChat notifier on the core (called by service.features.install.install_features)."""
    ctx.hooks.notifiers["wechat"] = WeChatNotifier()
    ctx.hooks.requesters["wechat"] = account_requesters  # after the proxy's: an operator's session is theirs


def superseded(db: Session, s: CertSession, openid: str) -> bool:
    """A later session of the same person and kind (messages.session_kind: a certification, by the person or a
    relative, or the elder's consent), opened from the same WeChat user, has been decided: its own result message
    tells where they stand, and this older one (a reject before the accept of the retry a minute later) would
    only contradict it. An accept is always told: whatever came after, the person is certified."""
    if s.beneficiary_id is None or s.decided_at is None or s.decision == SessionDecision.ACCEPT:
        return False  # no beneficiary: a relative's own verification, not a person's certification
    later = db.scalars(
        select(CertSession)
        .join(WeChatSessionLink, WeChatSessionLink.session_id == CertSession.id)
        .where(
            WeChatSessionLink.openid == openid,
            CertSession.beneficiary_id == s.beneficiary_id,
            CertSession.state == SessionState.DECIDED,
            CertSession.decided_at > s.decided_at,
        )
    )
    kind = session_kind(db, s)[0]
    return any(session_kind(db, other)[0] == kind for other in later)


def _busy_for(db: Session, notice: WeChatNotice) -> bool:
    b_id = notice.ref.partition(":")[0]
    return b_id.isdigit() and busy(db, int(b_id), utcnow())


def _message(db: Session, ctx: ServiceContext, notice: WeChatNotice, today: dt.date) -> Message | None:
    """The message of a notice, or None when it is no longer true (then it is cancelled, not sent)."""
    base = ctx.settings.public_base_url.rstrip("/")
    if notice.kind in ("result", STAFF_DECISION):
        s = db.get(CertSession, notice.ref)
        b = beneficiary_of(db, s) if s else None
        if s is None or (b is None and s.beneficiary_id is not None):
            return None  # the beneficiary row is gone (None with no beneficiary: a relative's verification)
        if notice.kind == "result" and superseded(db, s, notice.openid):
            return None
        return decision_message(db, s, b, notice.kind == STAFF_DECISION, base, ctx.settings)
    if notice.kind == REVOKED:
        return revoked_message(db, notice.ref, notice.openid, today, base)
    if notice.kind == ASSIST:
        req = db.get(AssistRequest, int(notice.ref)) if notice.ref.isdigit() else None
        b = db.get(Beneficiary, req.beneficiary_id) if req is not None else None
        if req is None or b is None or req.closed_at is None:
            return None
        return assist_message(req, b, base, ctx.settings)
    b_id = notice.ref.partition(":")[0]
    b = db.get(Beneficiary, int(b_id)) if b_id.isdigit() else None
    if b is None or b.valid_until is None or _reminder_ref(b.id, b.valid_until) != notice.ref:
        return None  # certified since (a new period) or the date was corrected
    if reminder_kind(b, today, ctx.rules) != notice.kind:
        return None  # no longer due, or due as another kind now (that one has its own notice)
    return reminder_message(notice.kind, b, base)


def reminder_hours(settings: HasTimeZone, now: dt.datetime) -> bool:
    """Whether `now` (aware) is within REMINDER_HOURS in the bureau's time zone."""
    start, end = REMINDER_HOURS
    return start <= now.astimezone(ZoneInfo(settings.time_zone)).hour < end


def deliver(
    ctx: ServiceContext, api: WeChatApi, today: dt.date | None = None, now: dt.datetime | None = None
) -> NoticeRun:
    """Send what is pending: in record order; under the daily reminder cap, the other notices first, then the
    reminders the run may send, the most urgent first (quota.urgency)."""
    at = now or clock.now_utc()
    run = NoticeRun(at=at)
    day = today or local_today(ctx.settings, at)
    if quota.spent(api.store, at):
        return run  # WeChat refuses every send until it renews the quota at midnight Beijing time: not asked
    pending = WeChatNotice.status == NoticeStatus.PENDING
    allowance = quota.Allowance(None)
    if not reminder_hours(ctx.settings, at):
        pending = pending & WeChatNotice.kind.notin_(DAYTIME)  # at night: left pending until the morning
    else:
        allowance = quota.reminders_allowed(ctx, at, day)
    if allowance.left is None:
        _deliver_in_order(ctx, api, pending, run, day, allowance)
    elif _deliver_in_order(ctx, api, pending & WeChatNotice.kind.notin_(REMINDERS), run, day, allowance):
        _deliver_in_order(ctx, api, pending & WeChatNotice.kind.in_(REMINDERS), run, day, allowance, capped=True)
    return run


def _deliver_in_order(
    ctx: ServiceContext,
    api: WeChatApi,
    which: ColumnElement[bool],
    run: NoticeRun,
    day: dt.date,
    allowance: quota.Allowance,
    capped: bool = False,
) -> bool:
    """Batches of the notices `which` in record order, or `capped` (reminders under the cap) the most urgent first
    while the allowance lasts (keyset: a notice that failed in this run waits for the next run). False when WeChat
    stopped the run (quota.py)."""
    order = quota.urgency() if capped else (WeChatNotice.id,)
    after: tuple[Any, ...] | None = None
    while not capped or allowance.allows(True):
        with ctx.db() as db:
            query = select(WeChatNotice.id, WeChatNotice.kind, *order).where(which)
            if after is not None:
                query = query.where(tuple_(*order) > tuple_(*after))
            rows = db.execute(query.order_by(*order).limit(200)).all()
        if not rows:
            return True
        after = tuple(rows[-1][2:])
        if not _deliver_batch(ctx, api, [(int(r[0]), str(r[1])) for r in rows], run, day, allowance):
            return False  # WeChat's quota is spent, or it is out of reach (quota.py): the rest wait, untouched
    return True


def _claim(ctx: ServiceContext, notice_id: int, today: dt.date, run: NoticeRun) -> tuple[str, str, Message] | None:
    """Claim a pending notice (only one scheduler moves the row out of pending) and compose its message.
    None when another scheduler has it, when its person is in a session (left pending), or when it is no
    longer true (then it is cancelled, kept as a record)."""
    with ctx.db() as db:
        claimed: CursorResult[Any] = db.execute(  # type: ignore[assignment]
            update(WeChatNotice)
            .where(WeChatNotice.id == notice_id, WeChatNotice.status == NoticeStatus.PENDING)
            .values(status=NoticeStatus.SENDING, attempts=WeChatNotice.attempts + 1)
        )
        notice = db.get(WeChatNotice, notice_id) if claimed.rowcount else None
        if notice is None:
            return None
        if notice.kind in DAYTIME and _busy_for(db, notice):
            # A session of this person is under way: not now, and not lost either (the next run looks again).
            notice.status, notice.attempts = NoticeStatus.PENDING, notice.attempts - 1
            return None
        message = _message(db, ctx, notice, today)
        if message is None:
            notice.status = NoticeStatus.CANCELLED
            run.cancelled += 1
            log.info("wechat notice %s (%s) cancelled: no longer true", notice_id, notice.kind)
            return None
        return notice.openid, notice.kind, message


def _deliver_batch(
    ctx: ServiceContext,
    api: WeChatApi,
    rows: list[tuple[int, str]],
    run: NoticeRun,
    today: dt.date,
    allowance: quota.Allowance,
) -> bool:
    """Send the batch of (id, kind); False when WeChat's quota stopped it (quota.py: the rest are not tried).
    Reminders past the run's allowance are left pending, untouched (the next runs and days send them)."""
    for notice_id, notice_kind in rows:
        if not allowance.allows(notice_kind in REMINDERS):
            continue
        claimed = _claim(ctx, notice_id, today, run)
        if claimed is None:
            continue
        openid, kind, message = claimed
        try:
            template = template_kind(kind, ctx.settings.wechat.templates)
            msgid = api.send_template(openid, template, message.data, message.url)
        except WeChatError as exc:
            log.warning("wechat notice %s (%s) not sent: %s", notice_id, kind, exc)
            if not _not_sent(ctx, api, notice_id, exc, run):
                return False
            continue
        with ctx.db() as db:
            notice = db.get(WeChatNotice, notice_id)
            if notice is not None:
                notice.status, notice.msgid, notice.sent_at = NoticeStatus.SENT, str(msgid), utcnow()
                notice.last_error = None
        run.sent += 1
        run.suspect.clear()  # a send answered: not the account's configuration
        allowance.spend(kind in REMINDERS)
    return True


def _not_sent(ctx: ServiceContext, api: WeChatApi, notice_id: int, exc: WeChatError, run: NoticeRun) -> bool:
    """Record a refused send; False when the run must stop (WeChat's quota is spent, or it is unreachable: quota.py)."""
    stop = quota.stops_run(exc)
    with ctx.db() as db:
        notice = db.get(WeChatNotice, notice_id)
        if notice is not None:
            notice.last_error = str(exc)[:500]
            if stop:  # nothing wrong with the notice: put back as it was, no attempt spent
                notice.status, notice.attempts = NoticeStatus.PENDING, notice.attempts - 1
            else:
                gave_up = notice.attempts >= ctx.settings.wechat.notify_max_attempts or exc.errcode in quota.UNREACHABLE
                notice.status = NoticeStatus.FAILED if gave_up else NoticeStatus.PENDING
                run.failed += gave_up
    if exc.errcode == quota.DAY_SPENT:
        quota.mark_spent(api.store, run.at or clock.now_utc())
        log.warning(
            "wechat: the day's template-message quota is spent: every notice (results, staff decisions, revocation"
            " notices, reminders) waits until WeChat renews it at midnight Beijing time (北京时间零点)"
        )
    refunded = quota.misconfigured(ctx, run.suspect, notice_id, exc)
    run.failed -= refunded or 0
    return not stop and refunded is None


def run_notifications(
    ctx: ServiceContext, api: WeChatApi, today: dt.date | None = None, now: dt.datetime | None = None
) -> NoticeRun:
    """`now` (aware): the instant whose local hour decides whether reminders go out (default: the clock)."""
    at = now or clock.now_utc()
    day = today or local_today(ctx.settings, at)  # the bureau's date: reminders change day at local midnight
    with ctx.db() as db:
        queued = queue_notices(db, ctx, day)
    run = deliver(ctx, api, day, at)
    run.queued = queued
    return run
