"""WeChat notifications: the result of a certification, a due-soon reminder and an overdue notice.

Each notice is first recorded (a unique row per kind + reference + openid), then delivered; so a notice goes
out at most once however often the schedule runs or however many schedulers there are. A failed delivery is
retried on later runs up to ``wechat_notify_max_attempts``, then marked failed (the record keeps the error).
A process that dies between claiming and sending leaves the row in ``sending``: it is not re-sent, because
sending twice is worse for a pensioner than a missing reminder that the yearly letter also covers.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.context import ServiceContext
from service.cycle import CycleState, cycle_state
from service.db.models import Beneficiary, CertSession, SessionState, utcnow
from service.db.wechat_models import NoticeStatus, WeChatNotice, WeChatSessionLink, WeChatUser
from service.wechat.client import WeChatApi
from service.wechat.errors import WeChatError

log = logging.getLogger(__name__)

# Only recent decisions are scanned for result messages: the scan stays small as sessions accumulate.
RESULT_WINDOW = dt.timedelta(days=7)
DECISION_TEXT = {"accept": "认证通过", "review": "已提交人工审核", "reject": "认证未通过", "retry": "需要重新认证"}


@dataclass
class NoticeRun:
    queued: int = 0
    sent: int = 0
    failed: int = 0


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


def queue_notices(db: Session, ctx: ServiceContext, today: dt.date) -> int:
    """Record every notice that is due and not yet recorded."""
    n = 0
    decided = db.execute(
        select(WeChatSessionLink.session_id, WeChatSessionLink.openid)
        .join(CertSession, CertSession.id == WeChatSessionLink.session_id)
        .where(CertSession.state == SessionState.DECIDED, CertSession.decided_at >= utcnow() - RESULT_WINDOW)
    )
    for session_id, openid in decided:
        n += _record(db, "result", session_id, openid)
    users = db.execute(
        select(WeChatUser.openid, Beneficiary)
        .join(Beneficiary, Beneficiary.id == WeChatUser.beneficiary_id)
        .where(WeChatUser.beneficiary_id.is_not(None))
    )
    for openid, b in users:
        state = cycle_state(b.status, b.valid_until, today, ctx.rules)
        if state in (CycleState.DUE_SOON, CycleState.OVERDUE):
            # One reminder per validity period: a new certification moves valid_until and re-arms it.
            n += _record(db, state.value, f"{b.id}:{b.valid_until or 'none'}", openid)
    return n


def _message(db: Session, ctx: ServiceContext, notice: WeChatNotice) -> tuple[dict[str, str], str]:
    base = ctx.settings.public_base_url.rstrip("/")
    if notice.kind == "result":
        s = db.get(CertSession, notice.ref)
        decision = s.decision if s else None
        b = db.get(Beneficiary, s.beneficiary_id) if s else None
        data = {
            "first": "您的待遇资格认证结果",
            "keyword1": DECISION_TEXT.get(decision or "", "处理中"),
            "keyword2": b.valid_until.isoformat() if b and b.valid_until and decision == "accept" else "—",
            "remark": "点击查看详情",
        }
        return data, f"{base}/h5/result/{notice.ref}"
    b_id, _, valid = notice.ref.partition(":")
    b = db.get(Beneficiary, int(b_id))
    name = b.name if b else ""
    if notice.kind == "due_soon":
        first, remark = f"{name}的待遇资格认证即将到期", "请在到期前完成认证,以免影响待遇发放。"
    else:
        first, remark = f"{name}的待遇资格认证已逾期", "待遇已暂停发放,完成认证后将恢复并补发。"
    return {"first": first, "keyword1": valid, "remark": remark}, f"{base}/h5/"


def deliver(ctx: ServiceContext, api: WeChatApi) -> NoticeRun:
    run = NoticeRun()
    last = 0
    while True:  # batches in id order: a notice that failed in this run waits for the next run
        with ctx.db() as db:
            ids = list(
                db.scalars(
                    select(WeChatNotice.id)
                    .where(WeChatNotice.status == NoticeStatus.PENDING, WeChatNotice.id > last)
                    .order_by(WeChatNotice.id)
                    .limit(200)
                )
            )
        if not ids:
            return run
        last = ids[-1]
        _deliver_batch(ctx, api, ids, run)


def _deliver_batch(ctx: ServiceContext, api: WeChatApi, ids: list[int], run: NoticeRun) -> None:
    max_attempts = ctx.settings.wechat_notify_max_attempts
    for notice_id in ids:
        with ctx.db() as db:
            # Claim: only one scheduler moves the row out of pending.
            claimed: CursorResult[Any] = db.execute(  # type: ignore[assignment]
                update(WeChatNotice)
                .where(WeChatNotice.id == notice_id, WeChatNotice.status == NoticeStatus.PENDING)
                .values(status=NoticeStatus.SENDING, attempts=WeChatNotice.attempts + 1)
            )
            if not claimed.rowcount:
                continue
            notice = db.get(WeChatNotice, notice_id)
            if notice is None:  # pragma: no cover - just claimed
                continue
            data, url = _message(db, ctx, notice)
            openid, kind = notice.openid, notice.kind
        try:
            msgid = api.send_template(openid, kind, data, url)
        except WeChatError as exc:
            with ctx.db() as db:
                notice = db.get(WeChatNotice, notice_id)
                if notice is not None:
                    notice.last_error = str(exc)[:500]
                    gave_up = notice.attempts >= max_attempts
                    notice.status = NoticeStatus.FAILED if gave_up else NoticeStatus.PENDING
                    run.failed += gave_up
            log.warning("wechat notice %s (%s) not sent: %s", notice_id, kind, exc)
            continue
        with ctx.db() as db:
            notice = db.get(WeChatNotice, notice_id)
            if notice is not None:
                notice.status, notice.msgid, notice.sent_at = NoticeStatus.SENT, str(msgid), utcnow()
                notice.last_error = None
        run.sent += 1


def run_notifications(ctx: ServiceContext, api: WeChatApi, today: dt.date | None = None) -> NoticeRun:
    with ctx.db() as db:
        queued = queue_notices(db, ctx, today or dt.date.today())
    run = deliver(ctx, api)
    run.queued = queued
    return run
