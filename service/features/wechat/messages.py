"""What each WeChat template message says: one title naming what was decided (or is due) for whom, and every
field filled with a real value, never a placeholder (issue 21). The mapping kind → template → fields → when sent →
recipient is documented in docs/wechat.md ("Template messages").

A message is composed of SEMANTIC fields (`FIELDS_OF`): ``title``, ``name`` (the person concerned), ``status`` (the
outcome or state in words), ``state`` (the same as one word of PHRASES, for a template's ``phrase`` key),
``due_date`` or ``decided_on`` (the date that matters), ``detail``, ``next_step`` (what to do now) and ``ref`` (the
session's or request's number, digits and letters only). A text field may hold shorter wordings after the full one
(each still saying what to do: a template key of 20 characters takes the first that fits, never a text cut
mid-word). Which field goes into which key of the bureau's template: its mapping in WECHAT_TEMPLATES, else the
kind's classic form (`CLASSIC`: the old layout its historic template's labels were chosen for; WeChat no longer
shows ``first``/``remark``, so its next step is not shown and runtime.py warns); fitted to the key's type by
template_fit.py. Composition only reads the database; notify.py decides whether a message is due at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from pipelines.reasons import screen_light_advice
from service.certification.models import Beneficiary, BeneficiaryStatus, CertSession, SessionDecision
from service.features.console.assist import KINDS_ZH
from service.features.console.models import AssistOutcome, AssistRequest
from service.features.proxy.models import ProxySession, ProxySessionKind, subject_of
from service.infra.clock import HasTimeZone

# A kind without a template id of its own is sent with this one (same fields), so a deployment configured with
# the three original templates keeps working: staff decisions look like results, suspensions like overdue notices.
TEMPLATE_FALLBACK = {
    "review": "result",
    "suspended": "overdue",
    "assist": "result",
    "assist_video": "result",
    "revoked": "overdue",
}

# Every text field a notice may have; dates are `due_date` (by when to certify) and `decided_on` (when it was decided).
Value = str | tuple[str, ...] | dt.date | dt.datetime
TEXT_FIELDS = frozenset({"title", "name", "status", "state", "detail", "next_step", "ref"})
DATE_FIELDS = frozenset({"due_date", "decided_on"})
# The words a `phrase` key may take (≤ 5 Chinese characters): a notice's `state` is always one of them.
PHRASES = frozenset(
    {"已通过", "未通过", "待审核", "需重新认证", "即将到期", "已到期", "已暂停", "已撤销", "已办结", "视频已删除"}
)
_DECIDED = frozenset({"title", "name", "status", "state", "decided_on", "detail", "next_step", "ref"})
_DUE = frozenset({"title", "name", "status", "state", "due_date", "detail", "next_step"})
# What each kind ALWAYS has (template_fit.check refuses a key for any other field). A revocation's `due_date` is the
# validity recomputed without it, past or not, but a record may have none: a `date`/`time` key cannot carry it.
FIELDS_OF: dict[str, frozenset[str]] = {
    "result": _DECIDED,
    "review": _DECIDED,
    "assist": _DECIDED,
    "assist_video": _DECIDED,
    "due_soon": _DUE,
    "overdue": _DUE,
    "suspended": _DUE,
    "revoked": _DUE - {"due_date"},
}
# The classic form (a template id alone in WECHAT_TEMPLATES): the layout bureaus chose their historic templates'
# labels for before WeChat dropped `first`/`remark`, kept key for key (a label like 认证时间 must not show another
# field): decisions show the decision date in keyword3, reminders the payment's state, a revocation (sent with the
# overdue template, whose keyword2 is its date label) the recomputed date, or 请尽快重新认证 when the record has none.
# The next step is only in `remark`, no longer shown: runtime.py warns the operator to map the template.
_CLASSIC_DECIDED = {"first": "title", "keyword1": "name", "keyword2": "status", "keyword3": "decided_on"}
_CLASSIC_DUE = {"first": "title", "keyword1": "name", "keyword2": "due_date", "keyword3": "detail"}
CLASSIC: dict[str, dict[str, str]] = {
    "result": {**_CLASSIC_DECIDED, "remark": "next_step"},
    "review": {**_CLASSIC_DECIDED, "remark": "next_step"},
    "assist": {**_CLASSIC_DECIDED, "remark": "next_step"},
    "assist_video": {**_CLASSIC_DECIDED, "remark": "next_step"},
    "due_soon": {**_CLASSIC_DUE, "remark": "next_step"},
    "overdue": {**_CLASSIC_DUE, "remark": "next_step"},
    "suspended": {**_CLASSIC_DUE, "remark": "next_step"},
    "revoked": {
        "first": "title",
        "keyword1": "name",
        "keyword2": "due_date",
        "keyword3": "status",
        "remark": "next_step",
    },
}
# A revocation's `due_date` when the record has no validity date (the classic keyword2 said so before).
NO_DATE = "请尽快重新认证"

# What a decision means, by what the session was for. "self" and "certification" certify a pensioner.
_ACCEPT, _REJECT, _RETRY = SessionDecision.ACCEPT, SessionDecision.REJECT, SessionDecision.RETRY
OUTCOME: dict[str, dict[str, str]] = {
    "certification": {_ACCEPT: "认证通过", _REJECT: "认证未通过", _RETRY: "需要重新认证"},
    "verification": {_ACCEPT: "实名核验通过", _REJECT: "实名核验未通过", _RETRY: "需要重新核验"},
    "consent": {_ACCEPT: "授权已确认", _REJECT: "授权未确认", _RETRY: "需要重新录制授权视频"},
}
STATE: dict[str, str] = {_ACCEPT: "已通过", _REJECT: "未通过", _RETRY: "需重新认证", SessionDecision.REVIEW: "待审核"}
UNDER_REVIEW = "已提交人工审核"
SUBJECT = {
    "certification": "{name}的待遇资格认证",
    "verification": "{name}的代办人实名核验",
    "consent": "{name}的代办授权确认",
}
PROXY_SUBJECT = "{name}的待遇资格认证(家属代办)"


@dataclass(frozen=True)
class Message:
    """`fields`: semantic field → value (a tuple: the full wording, then shorter ones); `classic`: the kind's
    classic key → field."""

    fields: dict[str, Value]
    url: str
    classic: dict[str, str]


def _titled(name: str, title: str) -> tuple[str, str]:
    """A title and its short form without the name (the name has a key of its own)."""
    return (title, title.removeprefix(f"{name}的"))


def template_kind(kind: str, templates: Mapping[str, object]) -> str:
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


def _local(tz: HasTimeZone, at: dt.datetime) -> dt.datetime:
    """The bureau's wall-clock time of an instant (a naive datetime is UTC, as stored)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(ZoneInfo(tz.time_zone))


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
    fields: dict[str, Value] = {
        "title": _titled(name, title),
        "name": name,
        "status": outcome,
        "state": STATE[decision],
        "decided_on": _local(tz, s.decided_at or s.created_at),  # the bureau's date, not UTC's
        "detail": _titled(name, subject),
        "next_step": _next_step(kind, s, decision, b, staff),
        "ref": s.id.replace("-", ""),  # 32 hex digits: a character_string key's limit
    }
    return Message(fields, f"{base}/h5/result/{s.id}", CLASSIC["result"])


# A reject's next step. A relative's own real-name check is nobody's pension: no home visit, no certification.
# After a staff reject the page shows no reason of the review itself (h5/result_view.py): none is promised.
MACHINE_REJECT = "点击查看原因。可在光线充足处重新认证,或到社保经办窗口办理、申请上门认证。"
# A reject for the screen's colours not seen on the face: bright light drowns them, so not "光线充足处".
LIGHT_REJECT = "点击查看原因。可在室内调亮手机屏幕、脸靠近屏幕后重新认证,或到社保经办窗口办理、申请上门认证。"
STAFF_REJECT = "经工作人员审核,本次认证未通过。可重新认证,或到社保经办窗口办理、申请上门认证。"
VERIFICATION_REJECT = "点击查看原因。可返回“为家人认证”重新核验,或到社保经办窗口办理。"
STAFF_VERIFICATION_REJECT = "经工作人员审核,本次实名核验未通过。可返回“为家人认证”重新核验,或到社保经办窗口办理。"
REVIEWING = "工作人员将尽快审核,审核结果将另行通知。"
RETAKE = "工作人员请您重新录制视频,点击进入重新认证。"
# The same next steps in 20 characters at most, for a key that takes no more (a historic keyword, a `thing`).
SHORT = {
    MACHINE_REJECT: "点击查看原因,可重新认证或申请上门认证",
    LIGHT_REJECT: "点击查看原因,调亮屏幕后重新认证",
    STAFF_REJECT: "审核未通过,可重新认证或到社保窗口办理",
    VERIFICATION_REJECT: "点击查看原因,可重新核验或到窗口办理",
    STAFF_VERIFICATION_REJECT: "可重新核验或到社保窗口办理",
    RETAKE: "请点击进入,重新录制视频认证",
}


def _step(full: str, *short: str) -> tuple[str, ...]:
    return (full, *short, *([SHORT[full]] if full in SHORT else []))


def _next_step(kind: str, s: CertSession, decision: str, b: Beneficiary | None, staff: bool) -> tuple[str, ...]:
    if decision == SessionDecision.REVIEW:
        return _step(REVIEWING)
    if decision == SessionDecision.RETRY:
        return _step(RETAKE)
    if decision == SessionDecision.REJECT and kind == "verification":
        return _step(STAFF_VERIFICATION_REJECT if staff else VERIFICATION_REJECT)
    if decision == SessionDecision.REJECT and staff:
        return _step(STAFF_REJECT)
    if decision == SessionDecision.REJECT:
        return _step(LIGHT_REJECT if screen_light_advice(s.reasons or []) else MACHINE_REJECT)
    if kind == "verification":
        return _step("您现在可以为家人办理代办认证。")
    if kind == "consent" and b is not None:
        return _step(f"现在可以为{b.name}办理代办认证。", "现在可以办理代办认证")
    if b is not None and b.valid_until is not None:
        return _valid_until(b.valid_until)
    return _step("点击查看详情。")


def _valid_until(until: dt.date) -> tuple[str, ...]:
    return _step(f"本次认证有效期至{zh_date(until)}。", f"有效期至{zh_date(until)}")


def reminder_message(kind: str, b: Beneficiary, base: str) -> Message | None:
    """due_soon / overdue / suspended about `b`; None when a date it must state is missing."""
    until = b.valid_until
    if until is None:
        return None
    name, day = b.name, zh_date(until)
    fields: dict[str, Value]
    if kind == "due_soon":
        fields = {
            "title": _titled(name, f"{name}的待遇资格认证即将到期"),
            "status": "即将到期",
            "state": "即将到期",
            "detail": "待遇正常发放",
            "next_step": _step(f"请在{day}前完成认证,以免影响待遇发放。", f"请在{day}前完成认证"),
        }
    elif kind == "overdue":
        fields = {
            "title": _titled(name, f"{name}的待遇资格认证已到期"),
            "status": "已到期",
            "state": "已到期",
            "detail": "待遇仍正常发放,逾期未认证将暂停发放",
            # The way on without filming too (/h5/ links the request form), in a 20-character key as well.
            "next_step": _step(
                "请尽快完成认证,逾期未认证将暂停发放;行动不便可申请上门认证。", "请尽快认证,行动不便可申请上门认证"
            ),
        }
    elif kind == "suspended" and b.suspended_on is not None:
        fields = {
            "title": _titled(name, f"{name}的待遇已暂停发放"),
            "status": "待遇已暂停发放",
            "state": "已暂停",
            "detail": f"自{zh_date(b.suspended_on)}起暂停发放",
            "next_step": _step(
                "待遇已暂停发放,完成认证后将恢复发放,暂停期间的待遇按规定补发。", "待遇已暂停,完成认证后恢复发放"
            ),
        }
    else:
        return None
    return Message({"name": name, "due_date": until, **fields}, f"{base}/h5/", CLASSIC[kind])


def revocation_message(b: Beneficiary, certified_on: dt.date, today: dt.date, base: str) -> Message:
    """A certification of `b` made on `certified_on` was revoked (service/features/wechat/revoked.py): certify again,
    by the validity recomputed without it (a date already past, a suspension, or no date said as they are)."""
    until = b.valid_until
    if until is None:
        step = _step("请尽快重新完成认证,以免影响待遇发放。")
    elif b.status == BeneficiaryStatus.SUSPENDED:
        step = _step("待遇已暂停发放,请尽快重新认证,完成认证后将恢复发放。", "待遇已暂停,请尽快重新认证")
    elif until >= today:
        step = _step(f"请在{zh_date(until)}前重新完成认证,以免影响待遇发放。", f"请在{zh_date(until)}前重新完成认证")
    else:
        step = _step(
            f"认证有效期已于{zh_date(until)}届满,请尽快重新认证,逾期未认证将暂停发放。", "有效期已届满,请尽快重新认证"
        )
    on = zh_date(certified_on)
    # What was revoked, dated: 21 characters and more in full (any date), so `detail` too carries the shorter
    # wordings a 20-character key takes.
    revoked = (f"{on}的认证已被经办机构撤销", f"{on}的认证已被撤销", "此前的认证已被撤销")
    fields: dict[str, Value] = {
        "title": _titled(b.name, f"{b.name}的待遇资格认证已被撤销"),
        "name": b.name,
        "status": revoked,
        "state": "已撤销",
        "detail": revoked,
        "next_step": step,
    }
    fields["due_date"] = until if until is not None else NO_DATE
    return Message(fields, f"{base}/h5/", CLASSIC["revoked"])


def relative_revocation_message(b: Beneficiary, today: dt.date, base: str) -> Message:
    """What a relative reads of a revocation of `b`'s certification (relatives_told.py): certify `b` again, by the
    date if it is still ahead (a date already past, a suspension or no date: "as soon as possible", the payment's
    state not said)."""
    until = b.valid_until
    if until is not None and until >= today:
        day = zh_date(until)
        step = _step(f"请在{day}前为其重新办理认证,或陪同本人到社保经办窗口办理。", f"请在{day}前为其重新认证")
    else:
        step = _step("请尽快为其重新办理认证,或陪同本人到社保经办窗口办理。", "请尽快为其重新办理认证")
    fields: dict[str, Value] = {
        "title": (f"您绑定的家属{b.name}的待遇资格认证已被撤销", "家属的待遇资格认证已被撤销"),  # whoever made it
        "name": b.name,
        "status": "此前的一次认证已被经办机构撤销",
        "state": "已撤销",
        "detail": "此前的一次认证已被经办机构撤销",
        "next_step": step,
    }
    # The date while it is ahead; else, as the classic keyword2 said it, 请尽快重新认证 (a relative is not told a
    # lapsed date or the payment's state). Never a `date` key's: messages.FIELDS_OF.
    fields["due_date"] = until if until is not None and until >= today else NO_DATE
    return Message(fields, f"{base}/h5/", CLASSIC["revoked"])


REPLIED = "工作人员已回复,请点击查看"  # a reply's shown next step when the reply itself is over 20 characters


def assist_message(req: AssistRequest, b: Beneficiary, base: str, tz: HasTimeZone) -> Message | None:
    """A manual-review / home-visit request closed by staff: certified (with the new date) or answered (with the
    staff member's reply). None while the request is open."""
    if req.closed_at is None or req.kind not in KINDS_ZH:
        return None
    url = f"{base}/h5/"
    if req.outcome == AssistOutcome.CERTIFIED and b.valid_until is not None:
        outcome, step = "已完成认证", _valid_until(b.valid_until)
    elif req.outcome == AssistOutcome.ANSWERED and req.outcome_note:
        # A reply (up to assist.MAX_REPLY) is never cut: a 20-character key shows it alone when it fits, else the
        # fixed wording, and the link opens the page with the full reply (h5/requests.py, `reply_page`).
        outcome, step = "已处理", (f"工作人员答复:{req.outcome_note}", req.outcome_note, REPLIED)
        url = f"{base}/h5/reply/{req.id}"
    else:
        return None
    matter = f"{b.name}的{KINDS_ZH[req.kind]}申请"
    fields: dict[str, Value] = {
        "title": _titled(b.name, f"{matter}已办结"),
        "name": b.name,
        "status": outcome,
        "state": "已办结",
        "decided_on": _local(tz, req.closed_at),
        "detail": _titled(b.name, matter),
        "next_step": step,
        "ref": str(req.id),
    }
    return Message(fields, url, CLASSIC["assist"])


def video_purged_message(
    req: AssistRequest, b: Beneficiary, purged_at: dt.datetime, hold_days: int, base: str, tz: HasTimeZone
) -> Message:
    """The video a manual-review request (still open) waited on was deleted once its hold of `hold_days` ended
    (console/assist_hold_end.py): staff can no longer review it; a home visit or the counter is the way on (the H5
    request page says the same)."""
    matter = f"{b.name}的人工审核申请"
    step = (
        f"视频自申请之日起最长保留{hold_days}天,现已删除,工作人员无法再查看。"
        "工作人员会与您联系安排上门认证,也可携带身份证到社保经办窗口办理。"
    )
    fields: dict[str, Value] = {
        "title": _titled(b.name, f"{matter}：视频已删除"),
        "name": b.name,
        "status": "视频已按保存期限删除",
        "state": "视频已删除",
        "decided_on": _local(tz, purged_at),
        "detail": _titled(b.name, matter),
        "next_step": _step(step, "视频已删除,可上门认证或到窗口办理"),
        "ref": str(req.id),
    }
    return Message(fields, f"{base}/h5/", CLASSIC["assist_video"])
