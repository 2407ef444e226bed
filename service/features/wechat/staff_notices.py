"""The notices staff must settle by hand (console page 微信通知, routes_notices.py): those given up after
``wechat_notify_max_attempts`` (``failed``) and those whose send WeChat may have delivered though its answer was
lost (``sending``, marked by notice_send.ANSWER_LOST: never resent by the schedule). A supervisor sends a failed
one again (back to ``pending``, attempts reset), and settles a lost answer as delivered (``sent``) or sends it
again, accepting that the person may get it twice. Either is closed (``closed``, never sent) once the person was
told another way, with a note of how: the only way out for a notice WeChat refused for the person's account
(quota.UNREACHABLE: unfollowed, refusing the account's messages, unknown), which is not sent again (it would fail
alike). Every listing and action is in the audit chain; each is limited to the supervisor's region scope (the
person a notice is about: scope.py).

A ``sending`` notice whose process died between the claim and WeChat's answer (killed, a deploy, OOM) is settled
alike once its claim is older than STALE_CLAIM (a quarter of an hour; notice_send.answer_unknown), shown as
发送未完成 (it may still be in flight, very rarely: no bound on a send holds); a younger one may be being sent now, so
it is neither listed nor acted on.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, CursorResult, Select, case, cast, func, null, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from service.certification.errors import NotFoundError, ServiceError
from service.certification.evidence_hold import checked_note
from service.certification.models import Beneficiary, CertSession, utcnow
from service.features.console import audit_chain, scope
from service.features.console.auth import Staff
from service.features.console.models import AssistRequest
from service.features.proxy.models import ProxyClaim, subject_of
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_queue import ASSIST, ASSIST_VIDEO, STAFF_DECISION, assist_closing
from service.features.wechat.notice_send import ANSWER_LOST, answer_unknown, is_answer_unknown
from service.features.wechat.quota import UNREACHABLE
from service.infra.security import mask_text

KIND_ZH = {
    "result": "认证结果",
    STAFF_DECISION: "人工审核结果",
    ASSIST: "申请办结通知",
    ASSIST_VIDEO: "人工审核视频删除通知",
    "due_soon": "即将到期提醒",
    "overdue": "逾期提醒",
    "suspended": "暂停发放通知",
    "revoked": "认证撤销通知",
}
ERROR_ZH = {
    -1: "微信系统繁忙（多次重试未成功）",
    40003: "微信不认识该用户（可能已注销或不是本公众号的用户）",
    41001: "公众号凭证缺失（请检查 AppID / AppSecret 配置）",
    43004: "用户已取消关注公众号",
    43101: "用户拒收公众号消息",
}
_CODE = re.compile(r"WeChat error (-?\d+)")
SESSION_KINDS = ("result", STAFF_DECISION)  # notices whose ref is a session's id
PAGE_SIZE = 200  # the newest this many in scope
LOST_ZH = "微信未回应，可能已经送达"
DIED_ZH = "发送未完成，可能已经送达"  # claimed long ago, no answer recorded: not proof the service stopped
_People = tuple[Beneficiary, ProxyClaim, Beneficiary, Beneficiary]  # outer joined: each may be None
MAX_NOTE_CHARS = 200


@dataclass(frozen=True)
class StuckNotice:
    id: int
    kind: str
    status: str
    attempts: int
    created_at: dt.datetime
    error_zh: str
    person: str  # name and masked ID number, or what the notice is about when nobody's record is left
    beneficiary_id: int | None
    resendable: bool  # not a failure WeChat would answer alike (quota.UNREACHABLE): closed only


def unreachable(notice: WeChatNotice) -> bool:
    """Whether a failed notice was refused for the person's account (unfollowed, refusing messages, unknown):
    sent again, it would fail alike."""
    m = _CODE.search(notice.last_error or "")
    return notice.status == NoticeStatus.FAILED and m is not None and int(m.group(1)) in UNREACHABLE


def error_zh(notice: WeChatNotice) -> str:
    """The last error in words for staff (the stored text is WeChat's, in English, for the logs)."""
    text = notice.last_error or ""
    if notice.status == NoticeStatus.SENDING:
        return LOST_ZH if text.startswith(ANSWER_LOST) else DIED_ZH
    m = _CODE.search(text)
    if m:
        code = int(m.group(1))
        return ERROR_ZH.get(code, f"微信拒绝发送（错误码 {code}）")
    if "no template configured" in text:
        return "未配置该类通知的消息模板"
    return "无法连接微信（多次重试未成功）" if text else "原因未记录"


def _person(db: Session, notice: WeChatNotice) -> Beneficiary | ProxyClaim | None:
    """Whom a notice is about: the person of its session (results, staff decisions), of the closed request, or
    whose id starts the ref (reminders, revocations: ``<person id>:...``). The listing finds them alike, in SQL."""
    if notice.kind in SESSION_KINDS:
        s = db.get(CertSession, notice.ref)
        return subject_of(db, s) if s is not None else None
    if notice.kind == ASSIST:
        closing = assist_closing(notice.ref)
        req = db.get(AssistRequest, closing[0]) if closing is not None else None
        return db.get(Beneficiary, req.beneficiary_id) if req is not None else None
    b_id = notice.ref.partition(":")[0]
    return db.get(Beneficiary, int(b_id)) if b_id.isdigit() else None


_DIGITS = "0123456789"


def _leading_id(ref: InstrumentedAttribute[str]) -> ColumnElement[int | None]:
    """The number a ref starts with (a person's id before ``:``, a request's id), as SQL; NULL when none (the
    dialects share substr, length and ltrim with a character set; the CASE keeps PostgreSQL from casting '')."""
    digits = func.substr(ref, 1, func.length(ref) - func.length(func.ltrim(ref, _DIGITS)))
    return case((func.length(digits).between(1, 18), cast(digits, BigInteger)), else_=null())


def _stuck_query(staff: Staff, beneficiary_id: int | None) -> Select[WeChatNotice, *_People]:
    """The stuck notices with whom each is about (as `_person` finds them: the session's beneficiary or claimed
    identity; the request's person; the person whose id starts the ref), in `staff`'s scope (scope.region_filter on
    the person's region, '' when gone) and, with `beneficiary_id`, that person's only: one statement."""
    n = WeChatNotice
    lost = answer_unknown(utcnow())
    s_b, r_b, p_b = aliased(Beneficiary), aliased(Beneficiary), aliased(Beneficiary)
    rest = func.ltrim(n.ref, _DIGITS)
    query = (
        select(n, s_b, ProxyClaim, r_b, p_b)
        .outerjoin(CertSession, n.kind.in_(SESSION_KINDS) & (CertSession.id == n.ref))
        .outerjoin(s_b, s_b.id == CertSession.beneficiary_id)
        .outerjoin(ProxyClaim, ProxyClaim.session_id == CertSession.id)
        .outerjoin(
            AssistRequest,
            (n.kind == ASSIST) & ((rest == "") | rest.startswith(":")) & (AssistRequest.id == _leading_id(n.ref)),
        )
        .outerjoin(r_b, r_b.id == AssistRequest.beneficiary_id)
        .outerjoin(
            p_b,
            n.kind.not_in([*SESSION_KINDS, ASSIST])
            & ((rest == "") | rest.startswith(":"))
            & (p_b.id == _leading_id(n.ref)),
        )
        .where((n.status == NoticeStatus.FAILED) | lost)
        .where(scope.region_filter(staff, func.coalesce(s_b.region, ProxyClaim.region, r_b.region, p_b.region, "")))
    )
    if beneficiary_id is not None:
        query = query.where(func.coalesce(s_b.id, r_b.id, p_b.id) == beneficiary_id)
    return query.order_by(n.created_at.desc(), n.id.desc()).limit(PAGE_SIZE)


def _row(notice: WeChatNotice, who: Beneficiary | ProxyClaim | None) -> StuckNotice:
    person = f"{who.name}（{who.id_masked}）" if who is not None else "（人员记录已不存在）"
    b_id = who.id if isinstance(who, Beneficiary) else None
    return StuckNotice(
        notice.id,
        notice.kind,
        notice.status,
        notice.attempts,
        notice.created_at,
        error_zh(notice),
        person,
        b_id,
        not unreachable(notice),
    )


def stuck_notices(db: Session, staff: Staff, beneficiary_id: int | None = None) -> list[StuckNotice]:
    """The notices to settle by hand about people in `staff`'s scope (one person's with `beneficiary_id`),
    newest first, at most PAGE_SIZE; the listing is audited. A notice whose person is gone is shown to unscoped
    staff only (its region is unknown: scope.within). A person out of scope or unknown: NOT_FOUND, alike (scope.py)."""
    if beneficiary_id is not None and scope.beneficiary(db, staff, beneficiary_id) is None:
        raise NotFoundError("beneficiary")
    rows = []
    for notice, s_b, claim, r_b, p_b in db.execute(_stuck_query(staff, beneficiary_id)):
        who: Beneficiary | ProxyClaim | None = s_b or claim or r_b or p_b  # as _person: the session's beneficiary first
        rows.append(_row(notice, who))
    detail = {"shown": [r.id for r in rows], "beneficiary_id": beneficiary_id}
    audit_chain.record(db, staff.actor, "wechat_notices.view", "wechat_notices", detail)
    return rows


def settle(
    db: Session, staff: Staff, notice_id: int, action: str, accept_duplicate: bool = False, note: str = ""
) -> None:
    """A supervisor's decision on one stuck notice: ``resend`` (a failed one, or a lost answer: back to pending,
    attempts reset), ``delivered`` (a lost answer only: recorded as sent) or ``close`` (either, the person told
    another way: `note` says how). Refused with NOT_FOUND for a notice out of scope, gone, or no longer stuck
    (another supervisor settled it first: the update is conditional); WECHAT_DUPLICATE_RISK for a lost answer sent
    again without `accept_duplicate` (the person may get it twice); WECHAT_NOTICE_UNREACHABLE for a failed one WeChat
    refused for the person's account (it would fail again); WECHAT_CLOSE_NOTE for a close without a note."""
    notice = db.get(WeChatNotice, notice_id)
    who = _person(db, notice) if notice is not None else None
    # A notice whose person is gone has no region: unscoped staff only (as listed); none at all: not found.
    region = None if notice is None else (who.region if who is not None else "")
    if notice is None or not scope.visible(db, staff, region, "wechat_notice", str(notice_id)):
        raise ServiceError("NOT_FOUND", "no such notice")
    values, detail = _decision(notice, action, accept_duplicate, note)
    done: CursorResult[Any] = db.execute(  # type: ignore[assignment]
        update(WeChatNotice)
        .where(
            WeChatNotice.id == notice_id,
            WeChatNotice.status == notice.status,
            WeChatNotice.attempts == notice.attempts,
            WeChatNotice.claimed_at.is_(None)
            if notice.claimed_at is None
            else WeChatNotice.claimed_at == notice.claimed_at,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:
        raise ServiceError("NOT_FOUND", "settled meanwhile")
    detail = {"kind": notice.kind, "was": notice.status, "attempts": notice.attempts, "action": action, **detail}
    audit_chain.record(db, staff.actor, f"wechat_notice.{action}", str(notice_id), detail)


def _decision(
    notice: WeChatNotice, action: str, accept_duplicate: bool, note: str
) -> tuple[dict[str, object], dict[str, object]]:
    """The columns `action` sets on `notice` and what the audit entry adds; the refusals of `settle`."""
    lost = is_answer_unknown(notice, utcnow())  # WeChat's answer lost, or the process died mid-send
    failed = notice.status == NoticeStatus.FAILED
    if action == "resend" and lost and not accept_duplicate:
        raise ServiceError("WECHAT_DUPLICATE_RISK", "a lost answer resent without accepting a duplicate")
    if action == "resend" and unreachable(notice):
        raise ServiceError("WECHAT_NOTICE_UNREACHABLE", "refused for the person's account: it would fail again")
    if action == "resend" and (failed or lost):
        return {"status": NoticeStatus.PENDING, "attempts": 0, "last_error": None}, {}
    if action == "delivered" and lost:
        return {"status": NoticeStatus.SENT, "sent_at": utcnow()}, {}
    if action == "close" and (failed or lost):
        # An ID number typed in the note masked, as everywhere in the audit chain.
        text = mask_text(checked_note(note, "WECHAT_CLOSE_NOTE", MAX_NOTE_CHARS))
        return {"status": NoticeStatus.CLOSED}, {"note": text}
    raise ServiceError("NOT_FOUND", "the notice is not awaiting this decision")
