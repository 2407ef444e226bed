"""WeChat notifications, (3) the send loop: each pending notice is claimed (only one scheduler moves it out of
``pending``), its message composed again (notice_message.py: cancelled when no longer true), then sent.

A failed delivery is retried on later runs up to ``wechat_notify_max_attempts``, then marked failed (the record
keeps the error); WeChat's quota refusals stop the run without spending an attempt, an unreachable account is
given up at once (quota.py). A send whose answer was lost after the request was written (a read timeout: WeChat
may have delivered it; ``last_error`` says so) stays in ``sending``, never resent by itself: sending twice is worse
for a pensioner than a late notice. So does one whose process died between the claim and WeChat's answer (killed,
a deploy, OOM); the claim is dated (``claimed_at``), and past ``STALE_CLAIM`` such a notice is answer-unknown like
a lost answer: staff settle both (``answer_unknown``; staff_notices.py). Reminders are delivered in the bureau's
daytime only (``REMINDER_HOURS``): a date turns due at local midnight and the schedule runs every minute, so they
would otherwise reach pensioners at 00:01; queued at night, they wait (and are checked again) until the morning.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, select, tuple_, update

from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.features.wechat import config_guard, quota
from service.features.wechat.client import WeChatApi
from service.features.wechat.config import DEADLINE_S
from service.features.wechat.errors import WeChatAnswerLostError, WeChatError
from service.features.wechat.messages import Message, template_kind
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_message import busy_for, compose
from service.features.wechat.notice_queue import ASSIST_VIDEO
from service.features.wechat.quota import REMINDER_HOURS, REMINDERS
from service.features.wechat.revoked import REVOKED
from service.features.wechat.template_fit import TemplateFitError, keys_of, render
from service.infra import clock
from service.infra.clock import HasTimeZone, local_today

log = logging.getLogger(__name__)

# Held at night and while a session of the person is under way, as reminders are: the notice of a revoked
# certification too (the bureau's doing, not the person's; revoked.py), and of a manual review's video deleted after
# its hold (the daily purge runs at night). Their refs start with the person's id.
DAYTIME = (*REMINDERS, REVOKED, ASSIST_VIDEO)
# How `last_error` of a notice left in `sending` for a lost answer begins: staff settle those by hand
# (staff_notices.py); a `sending` notice without it is being sent now.
ANSWER_LOST = "may have been delivered (WeChat's answer lost)"
# How long after its claim a `sending` notice without WeChat's answer is taken for one whose process died mid-send.
# The client's timeouts bound nothing (requests' read timeout is per read: a server trickling its answer keeps a call
# alive indefinitely); the sender's own deadline does: `api.send_template` gives up by SEND_DEADLINE whatever the
# server does and writes nothing to WeChat after it (deadline.py). A quarter of an hour leaves room on top for what it
# cannot cut (name resolution before the request, a frozen process or VM) and costs only a later listing; staff are
# told it may have been delivered.
STALE_CLAIM = dt.timedelta(minutes=15)
# How `last_error` of a notice whose message cannot be made valid for its template begins (template_fit.py).
UNFIT = "模板字段不符合微信规则"
# WeChat refusing a value of the message ("argument invalid! data.phrase3.value invalid"): sent again it fails alike,
# so it is given up at once (staff send it again once the template configuration is fixed).
BAD_VALUE = 47003
SEND_DEADLINE = dt.timedelta(seconds=DEADLINE_S)  # one home: config.DEADLINE_S (WeChatConfig.deadline_s)
if SEND_DEADLINE * 4 > STALE_CLAIM:
    raise RuntimeError("the WeChat sender's deadline must stay well under STALE_CLAIM (a quarter of it at most)")


def answer_unknown(now: dt.datetime) -> ColumnElement[bool]:
    """SQL: the `sending` notices nobody will settle but staff, at `now` (naive UTC): WeChat's answer lost
    (ANSWER_LOST), or taken for dead mid-send (claimed before `now` - STALE_CLAIM, or before claims were dated:
    migration 0020; that process is gone since the upgrade). May have been delivered: never resent by the schedule.
    One send cannot be proven not to have started: the claim's commit is followed by the HTTP calls, no stored step
    between (docs/wechat.md)."""
    n = WeChatNotice
    died = n.claimed_at.is_(None) | (n.claimed_at < now - STALE_CLAIM)
    return (n.status == NoticeStatus.SENDING) & (n.last_error.startswith(ANSWER_LOST) | died)


def is_answer_unknown(notice: WeChatNotice, now: dt.datetime) -> bool:
    """`answer_unknown` for one loaded notice."""
    if notice.status != NoticeStatus.SENDING:
        return False
    died = notice.claimed_at is None or notice.claimed_at < now - STALE_CLAIM
    return (notice.last_error or "").startswith(ANSWER_LOST) or died


@dataclass
class NoticeRun:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    unsure: int = 0  # WeChat's answer lost: may have been delivered, left in `sending` (docs/wechat.md)
    # Given up in a row for an unknown openid (quota.MISCONFIGURED), as this run wrote them (quota.Refused): put back
    # when the configuration is the cause.
    suspect: list[quota.Refused | None] = field(default_factory=list, repr=False)
    at: dt.datetime | None = field(default=None, repr=False)  # the run's instant (WeChat's quota day: quota.spent)


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
    if config_guard.blocked(api.store, api.config, at, api.host):
        return run  # WeChat refuses the settings or this host's address: not asked within the back-off (config_guard)
    pending = WeChatNotice.status == NoticeStatus.PENDING
    allowance = quota.Allowance(None)
    if not reminder_hours(ctx.settings, at):
        pending = pending & WeChatNotice.kind.notin_(DAYTIME)  # at night: left pending until the morning
    else:
        allowance = quota.reminders_allowed(ctx, at, day)
    held = quota.held_back(api.store)  # put back for a likely wrong AppID: the notices behind them first
    if not held:
        _deliver_pass(ctx, api, pending, run, day, allowance)
    elif _deliver_pass(ctx, api, pending & WeChatNotice.id.notin_(held), run, day, allowance):
        _deliver_pass(ctx, api, pending & WeChatNotice.id.in_(held), run, day, allowance)
    if run.unsure:
        log.error(
            "wechat: %d notice(s) left in sending: WeChat's answer was lost, they may have been delivered and are"
            " not resent; check them by hand (docs/wechat.md)",
            run.unsure,
        )
    return run


def _deliver_pass(
    ctx: ServiceContext,
    api: WeChatApi,
    pending: ColumnElement[bool],
    run: NoticeRun,
    day: dt.date,
    allowance: quota.Allowance,
) -> bool:
    """The notices `pending` in record order, or under the cap the others first, then the reminders the allowance
    leaves, the most urgent first. False when WeChat stopped the run."""
    if allowance.left is None:
        return _deliver_in_order(ctx, api, pending, run, day, allowance)
    if not _deliver_in_order(ctx, api, pending & WeChatNotice.kind.notin_(REMINDERS), run, day, allowance):
        return False
    return _deliver_in_order(ctx, api, pending & WeChatNotice.kind.in_(REMINDERS), run, day, allowance, capped=True)


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


def _claim(
    ctx: ServiceContext, notice_id: int, today: dt.date, run: NoticeRun
) -> tuple[str, str, Message, dt.datetime] | None:
    """Claim a pending notice (only one scheduler moves the row out of pending) and compose its message; with the
    claim's time, which tells this claim apart from a later one (`_owned`). None when another scheduler has it, when
    its person is in a session (left pending), or when it is no longer true (then it is cancelled, kept as a record)."""
    at = utcnow()
    with ctx.db() as db:
        claimed: CursorResult[Any] = db.execute(  # type: ignore[assignment]
            update(WeChatNotice)
            .where(WeChatNotice.id == notice_id, WeChatNotice.status == NoticeStatus.PENDING)
            .values(status=NoticeStatus.SENDING, attempts=WeChatNotice.attempts + 1, claimed_at=at)
        )
        notice = db.get(WeChatNotice, notice_id) if claimed.rowcount else None
        if notice is None:
            return None
        if notice.kind in DAYTIME and busy_for(db, ctx, notice, today):
            # A session of this person is under way, or a request filed in time shelters them: not now, and not
            # lost either (the next run looks again).
            notice.status, notice.attempts = NoticeStatus.PENDING, notice.attempts - 1
            return None
        message = compose(db, ctx, notice, today)
        if message is None:
            notice.status = NoticeStatus.CANCELLED
            run.cancelled += 1
            log.info("wechat notice %s (%s) cancelled: no longer true", notice_id, notice.kind)
            return None
        return notice.openid, notice.kind, message, at


def _owned(notice_id: int, claimed_at: dt.datetime) -> ColumnElement[bool]:
    """SQL: the notice is still `sending` under this run's claim: not settled by staff meanwhile (a send slower than
    STALE_CLAIM is shown to them), nor claimed again by another run after their resend."""
    n = WeChatNotice
    return (n.id == notice_id) & (n.status == NoticeStatus.SENDING) & (n.claimed_at == claimed_at)


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
        openid, kind, message, claimed_at = claimed
        template = template_kind(kind, ctx.settings.wechat.templates)
        try:
            data = render(message, keys_of(ctx.settings.wechat.templates, template))
        except TemplateFitError as exc:
            _unfit(ctx, (notice_id, claimed_at), exc, run)
            continue
        try:
            msgid = api.send_template(openid, template, data, message.url)
        except WeChatError as exc:
            log.warning("wechat notice %s (%s) not sent: %s", notice_id, kind, exc)
            if not _not_sent(ctx, api, (notice_id, claimed_at), exc, run):
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


def _unfit(ctx: ServiceContext, claim: tuple[int, dt.datetime], exc: TemplateFitError, run: NoticeRun) -> None:
    """A message that cannot be made valid for its template (template_fit.py) is not sent blindly: failed at once,
    with the reason for staff (staff_notices.py), not retried (it would fail alike until the template is changed)."""
    notice_id, claimed_at = claim
    log.error("wechat notice %s not sent: its message does not fit the template (%s)", notice_id, exc)
    with ctx.db() as db:
        done: CursorResult[Any] = db.execute(  # type: ignore[assignment]
            update(WeChatNotice)
            .where(_owned(notice_id, claimed_at))
            .values(status=NoticeStatus.FAILED, last_error=f"{UNFIT}: {exc}"[:500])
            .execution_options(synchronize_session=False)
        )
    run.failed += bool(done.rowcount)


def _not_sent(
    ctx: ServiceContext, api: WeChatApi, claim: tuple[int, dt.datetime], exc: WeChatError, run: NoticeRun
) -> bool:
    """Record a refused send; False when the run must stop (WeChat's quota is spent, or it is unreachable: quota.py)."""
    stop = quota.stops_run(exc)
    written = _record_refusal(ctx, claim, exc, stop, run)
    if exc.errcode == quota.DAY_SPENT:
        quota.mark_spent(api.store, run.at or clock.now_utc())
        log.warning(
            "wechat: the day's template-message quota is spent: every notice (results, staff decisions, revocation"
            " notices, reminders) waits until WeChat renews it at midnight Beijing time (北京时间零点)"
        )
    refunded = quota.misconfigured(ctx, api.store, run.suspect, written, exc, run.sent)
    run.failed -= refunded or 0
    return not stop and refunded is None


def _record_refusal(
    ctx: ServiceContext, claim: tuple[int, dt.datetime], exc: WeChatError, stop: bool, run: NoticeRun
) -> quota.Refused | None:
    """Write the refusal on the notice, only while it is still this run's claim (one conditional UPDATE: staff's
    decision, or another run's claim after their resend, stands). What was written; None when nothing was."""
    notice_id, claimed_at = claim
    with ctx.db() as db:
        notice = db.get(WeChatNotice, notice_id)
        if notice is None or notice.status != NoticeStatus.SENDING or notice.claimed_at != claimed_at:
            return None
        status, attempts, error = NoticeStatus.FAILED, notice.attempts, str(exc)[:500]
        if isinstance(exc, WeChatAnswerLostError):  # WeChat may have delivered it: left in sending, never resent
            status, error = NoticeStatus.SENDING, f"{ANSWER_LOST}: {exc}"[:500]
        elif stop:  # nothing wrong with the notice: put back as it was, no attempt spent
            status, attempts = NoticeStatus.PENDING, attempts - 1
        elif attempts < ctx.settings.wechat.notify_max_attempts and exc.errcode not in (*quota.UNREACHABLE, BAD_VALUE):
            status = NoticeStatus.PENDING
        done: CursorResult[Any] = db.execute(  # type: ignore[assignment]
            update(WeChatNotice)
            .where(_owned(notice_id, claimed_at))
            .values(status=status, attempts=attempts, last_error=error)
            .execution_options(synchronize_session=False)
        )
        if not done.rowcount:
            return None
    run.unsure += isinstance(exc, WeChatAnswerLostError)
    run.failed += status == NoticeStatus.FAILED and not stop
    return quota.Refused(notice_id, claimed_at, status)
