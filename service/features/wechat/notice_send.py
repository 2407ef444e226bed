"""WeChat notifications, (3) the send loop: each pending notice is claimed (only one scheduler moves it out of
``pending``), its message composed again (notice_message.py: cancelled when no longer true), then sent.

A failed delivery is retried on later runs up to ``wechat_notify_max_attempts``, then marked failed (the record
keeps the error); WeChat's quota refusals stop the run without spending an attempt, an unreachable account is
given up at once (quota.py). A process that dies between claiming and sending leaves the row in ``sending``: it
is not re-sent, because sending twice is worse for a pensioner than a missing reminder that the yearly letter
also covers. So is a send whose answer was lost after the request was written (a read timeout: WeChat may have
delivered it; ``last_error`` says so). Reminders are delivered in the bureau's daytime only (``REMINDER_HOURS``):
a date turns due at local midnight and the schedule runs every minute, so they would otherwise reach pensioners at
00:01; queued at night, they wait (and are checked again) until the morning.
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
from service.features.wechat.errors import WeChatAnswerLostError, WeChatError
from service.features.wechat.messages import Message, template_kind
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_message import busy_for, compose
from service.features.wechat.quota import REMINDER_HOURS, REMINDERS
from service.features.wechat.revoked import REVOKED
from service.infra import clock
from service.infra.clock import HasTimeZone, local_today

log = logging.getLogger(__name__)

# Held at night and while a session of the person is under way, as reminders are: the notice of a revoked
# certification too (the bureau's doing, not the person's; revoked.py). Its ref starts with the person's id.
DAYTIME = (*REMINDERS, REVOKED)
# How `last_error` of a notice left in `sending` for a lost answer begins: staff settle those by hand
# (staff_notices.py); a `sending` notice without it is being sent now.
ANSWER_LOST = "may have been delivered (WeChat's answer lost)"


@dataclass
class NoticeRun:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    unsure: int = 0  # WeChat's answer lost: may have been delivered, left in `sending` (docs/wechat.md)
    # Given up in a row for an unknown openid (quota.MISCONFIGURED): put back when the configuration is the cause.
    suspect: list[int] = field(default_factory=list, repr=False)
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
    if config_guard.blocked(api.store, api.config, at):
        return run  # WeChat refuses the account's settings: not asked until the back-off passes (config_guard.py)
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
        if notice.kind in DAYTIME and busy_for(db, notice):
            # A session of this person is under way: not now, and not lost either (the next run looks again).
            notice.status, notice.attempts = NoticeStatus.PENDING, notice.attempts - 1
            return None
        message = compose(db, ctx, notice, today)
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
            if isinstance(exc, WeChatAnswerLostError):  # WeChat may have delivered it: left in sending, never resent
                notice.last_error = f"{ANSWER_LOST}: {exc}"[:500]
                run.unsure += 1
            elif stop:  # nothing wrong with the notice: put back as it was, no attempt spent
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
    refunded = quota.misconfigured(ctx, api.store, run.suspect, notice_id, exc, run.sent)
    run.failed -= refunded or 0
    return not stop and refunded is None
