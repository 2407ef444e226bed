"""What each WeChat template message says: one title naming what was decided (or is due) for whom, and every
keyword filled with a real value, never a placeholder (issue 21). The mapping kind → template → keywords → when
sent → recipient is documented in docs/wechat.md ("Template messages").

Every message uses the same fields: ``first`` (the title), ``keyword1`` (the person concerned), ``keyword2``,
``keyword3`` and ``remark`` (what to do next). Composition only reads the database; notify.py decides whether a
message is due at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.certification.models import Beneficiary, BeneficiaryStatus, CertSession, SessionDecision
from service.features.console.assist import KINDS_ZH
from service.features.console.models import AssistOutcome, AssistRequest
from service.features.proxy.models import ProxySession, ProxySessionKind, subject_of
from service.infra.clock import HasTimeZone, local_date

# A kind without a template id of its own is sent with this one (same fields), so a deployment configured with
# the three original templates keeps working: staff decisions look like results, suspensions like overdue notices.
TEMPLATE_FALLBACK = {"review": "result", "suspended": "overdue", "assist": "result", "revoked": "overdue"}

# What a decision means, by what the session was for. "self" and "certification" certify a pensioner.
_ACCEPT, _REJECT, _RETRY = SessionDecision.ACCEPT, SessionDecision.REJECT, SessionDecision.RETRY
OUTCOME: dict[str, dict[str, str]] = {
    "certification": {_ACCEPT: "认证通过", _REJECT: "认证未通过", _RETRY: "需要重新认证"},
    "verification": {_ACCEPT: "实名核验通过", _REJECT: "实名核验未通过", _RETRY: "需要重新核验"},
    "consent": {_ACCEPT: "授权已确认", _REJECT: "授权未确认", _RETRY: "需要重新录制授权视频"},
}
UNDER_REVIEW = "已提交人工审核"
SUBJECT = {
    "certification": "{name}的待遇资格认证",
    "verification": "{name}的代办人实名核验",
    "consent": "{name}的代办授权确认",
}
PROXY_SUBJECT = "{name}的待遇资格认证(家属代办)"


@dataclass(frozen=True)
class Message:
    data: dict[str, str]
    url: str


def template_kind(kind: str, templates: Mapping[str, str]) -> str:
    """The template a notice of `kind` is sent with (see TEMPLATE_FALLBACK)."""
    return kind if templates.get(kind) else TEMPLATE_FALLBACK.get(kind, kind)


def zh_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def session_kind(db: Session, s: CertSession) -> tuple[str, bool]:
    """(what the session was for, whether a relative did it): certification / verification / consent."""
    ps = db.get(ProxySession, s.id)
    if ps is None:
        return "certification", False
    return str(ps.kind), ps.kind == ProxySessionKind.CERTIFICATION.value


def decision_message(
    db: Session, s: CertSession, b: Beneficiary | None, staff: bool, base: str, tz: HasTimeZone
) -> Message | None:
    """The result of a session: the machine's (``staff`` False) or a staff member's decision. None when there is
    nothing true to say (no decision, or nobody to name). ``b`` None: a relative's verification session, about
    the identity they claimed."""
    kind, by_relative = session_kind(db, s)
    named = b if b is not None else subject_of(db, s)
    if named is None:
        return None
    name = named.name
    review = (s.result or {}).get("review")
    # A result notice tells the machine's decision even when staff have decided since (their own notice follows).
    decision = review.get("machine_decision") if (review and not staff) else s.decision
    if decision == SessionDecision.REVIEW and not staff:
        outcome = UNDER_REVIEW
    elif decision in OUTCOME[kind]:
        outcome = OUTCOME[kind][decision]
    else:
        return None
    subject = (PROXY_SUBJECT if by_relative else SUBJECT[kind]).format(name=name)
    title = f"{subject}：人工审核结果" if staff else f"{subject}结果"
    decided = s.decided_at or s.created_at
    data = {
        "first": title,
        "keyword1": name,
        "keyword2": outcome,
        "keyword3": zh_date(local_date(tz, decided)),  # the bureau's date, not UTC's
        "remark": _next_step(kind, decision, b, staff),
    }
    return Message(data, f"{base}/h5/result/{s.id}")


# A reject's next step. A relative's own real-name check is nobody's pension: no home visit, no certification.
# After a staff reject the page shows no reason of the review itself (h5/result_view.py): none is promised.
MACHINE_REJECT = "点击查看原因。可在光线充足处重新认证,或到社保经办窗口办理、申请上门认证。"
STAFF_REJECT = "经工作人员审核,本次认证未通过。可重新认证,或到社保经办窗口办理、申请上门认证。"
VERIFICATION_REJECT = "点击查看原因。可返回“为家人认证”重新核验,或到社保经办窗口办理。"
STAFF_VERIFICATION_REJECT = "经工作人员审核,本次实名核验未通过。可返回“为家人认证”重新核验,或到社保经办窗口办理。"


def _next_step(kind: str, decision: str, b: Beneficiary | None, staff: bool) -> str:
    if decision == SessionDecision.REVIEW:
        return "工作人员将尽快审核,审核结果将另行通知。"
    if decision == SessionDecision.RETRY:
        return "工作人员请您重新录制视频,点击进入重新认证。"
    if decision == SessionDecision.REJECT and kind == "verification":
        return STAFF_VERIFICATION_REJECT if staff else VERIFICATION_REJECT
    if decision == SessionDecision.REJECT:
        return STAFF_REJECT if staff else MACHINE_REJECT
    if kind == "verification":
        return "您现在可以为家人办理代办认证。"
    if kind == "consent" and b is not None:
        return f"现在可以为{b.name}办理代办认证。"
    if b is not None and b.valid_until is not None:
        return f"本次认证有效期至{zh_date(b.valid_until)}。"
    return "点击查看详情。"


def reminder_message(kind: str, b: Beneficiary, base: str) -> Message | None:
    """due_soon / overdue / suspended about `b`; None when a date it must state is missing."""
    until = b.valid_until
    if until is None:
        return None
    name, day = b.name, zh_date(until)
    if kind == "due_soon":
        data = {
            "first": f"{name}的待遇资格认证即将到期",
            "keyword3": "待遇正常发放",
            "remark": f"请在{day}前完成认证,以免影响待遇发放。",
        }
    elif kind == "overdue":
        data = {
            "first": f"{name}的待遇资格认证已到期",
            "keyword3": "待遇仍正常发放,逾期未认证将暂停发放",
            "remark": "请尽快完成认证。",
        }
    elif kind == "suspended" and b.suspended_on is not None:
        data = {
            "first": f"{name}的待遇已暂停发放",
            "keyword3": f"自{zh_date(b.suspended_on)}起暂停发放",
            "remark": "完成认证后将恢复发放,暂停期间的待遇按规定补发。",
        }
    else:
        return None
    return Message({"keyword1": name, "keyword2": day, **data}, f"{base}/h5/")


def revocation_message(b: Beneficiary, certified_on: dt.date, today: dt.date, base: str) -> Message:
    """A certification of `b` made on `certified_on` was revoked (service/features/wechat/revoked.py): certify again,
    by the validity recomputed without it (a date already past, a suspension, or no date said as they are)."""
    until = b.valid_until
    if until is None:
        day, remark = "请尽快重新认证", "请尽快重新完成认证,以免影响待遇发放。"
    elif b.status == BeneficiaryStatus.SUSPENDED:
        day, remark = zh_date(until), "待遇已暂停发放,请尽快重新认证,完成认证后将恢复发放。"
    elif until >= today:
        day, remark = zh_date(until), f"请在{zh_date(until)}前重新完成认证,以免影响待遇发放。"
    else:
        day, remark = zh_date(until), f"认证有效期已于{zh_date(until)}届满,请尽快重新认证,逾期未认证将暂停发放。"
    data = {
        "first": f"{b.name}的待遇资格认证已被撤销",
        "keyword1": b.name,
        "keyword2": day,
        "keyword3": f"{zh_date(certified_on)}的认证已被经办机构撤销",
        "remark": remark,
    }
    return Message(data, f"{base}/h5/")


def assist_message(req: AssistRequest, b: Beneficiary, base: str, tz: HasTimeZone) -> Message | None:
    """A manual-review / home-visit request closed by staff: certified (with the new date) or answered (with the
    staff member's reply). None while the request is open."""
    if req.closed_at is None or req.kind not in KINDS_ZH:
        return None
    if req.outcome == AssistOutcome.CERTIFIED and b.valid_until is not None:
        outcome, remark = "已完成认证", f"本次认证有效期至{zh_date(b.valid_until)}。"
    elif req.outcome == AssistOutcome.ANSWERED and req.outcome_note:
        outcome, remark = "已处理", f"工作人员答复:{req.outcome_note}"
    else:
        return None
    data = {
        "first": f"{b.name}的{KINDS_ZH[req.kind]}申请已办结",
        "keyword1": b.name,
        "keyword2": outcome,
        "keyword3": zh_date(local_date(tz, req.closed_at)),
        "remark": remark,
    }
    return Message(data, f"{base}/h5/")
