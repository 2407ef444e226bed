"""What the family page shows about each bound elder: certified until, due, being checked / in review, or no
more tries today (the relative's daily limit, or the binding locked after repeated failures: the page then
offers the assist request and the bureau's phone), so the relative sees at a glance whether anything is to be
done (the proxy API itself stays about bindings); and, while a certification is in force, the elder's certificate copy
behind the binding (`copies.elder_copy`, the proxy API's rule), by the WeChat login alone: also under an elder the
roster stopped here (transferred out) while a certificate of theirs is valid today (`certificates.valid_copy`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.adapters.http.deps import DB, Ctx, SessionToken
from service.certification import attempts
from service.certification.catalog import message_zh
from service.certification.certificates import VOID_CODES, certificate_png, valid_copy
from service.certification.context import ServiceContext
from service.certification.cycle import CycleState, states_of
from service.certification.errors import NotFoundError, ServiceError
from service.certification.models import Beneficiary, CertSession, SessionDecision, SessionState, newest_first
from service.features.console.assist import open_kind
from service.features.proxy import copies, operators
from service.features.proxy.models import BindingStatus, ProxyBinding
from service.features.wechat.h5 import identity
from service.features.wechat.h5.login import login
from service.features.wechat.h5.pages import message
from service.features.wechat.messages import zh_date
from service.infra.clock import local_today

router = APIRouter(include_in_schema=False)
IN_FLIGHT = (SessionState.QUEUED, SessionState.PROCESSING)


LIMIT_TEXT = "今日认证次数已达上限,明天可再试;也可申请人工审核或上门认证"
STOPPED_TEXT = "名册显示待遇已停止在本地发放(如已转出),无需在此认证;如有疑问请联系社保经办机构"
# The states that ask the relative to certify: a locked binding replaces only these with "locked" (the lock says why
# they cannot). An elder certified another way (a home visit), in review or being checked keeps their line, and the
# certificate link a certified elder's line carries; before, "已锁定" hid a valid certification.
TO_DO = frozenset(
    {
        "limit",
        CycleState.DUE_SOON.value,
        CycleState.OVERDUE.value,
        CycleState.AWAITING_FIRST.value,
        CycleState.UNDATED.value,
    }
)


def elder_status(
    db: Session, ctx: ServiceContext, b: Beneficiary, today: dt.date, requester: str | None = None
) -> tuple[str, str]:
    """(state, Chinese line) for one elder: checking / review first (a result is coming), then the cycle, where
    an elder still to certify whom `requester` may not try again today is "limit"."""
    latest = db.scalar(select(CertSession).where(CertSession.beneficiary_id == b.id).order_by(*newest_first()).limit(1))
    if latest is not None and latest.state in IN_FLIGHT:
        return "checking", "认证材料正在核验"
    if latest is not None and latest.state == SessionState.DECIDED and latest.decision == SessionDecision.REVIEW:
        return "review", "正在人工审核,结果会通过公众号通知"
    # The one rule of the lists and the console (cycle.states_of): a certification made in time that waits for staff
    # (a failed job among them, which the branches above do not see) is no lapse; a grace date is no certification.
    state = states_of(db, [b], today, ctx.rules, cases=ctx.hooks.case_sources())[b.id]
    if state is CycleState.AWAITING_DECISION:
        # A request for a home visit or a manual review filed in time is being handled, not a video in review.
        asked = open_kind(db, b.id)
        if asked is not None:
            return "review", f"{asked}申请已按时提交,正在办理,结果会通过公众号通知"
        return "review", "认证材料已按时提交,正在人工审核,结果会通过公众号通知"
    to_certify = state not in (CycleState.CERTIFIED, CycleState.DECEASED, CycleState.STOPPED_BY_ROSTER)
    if to_certify and requester is not None and attempts.attempts_left(db, ctx, b.id, requester) == 0:
        return "limit", LIMIT_TEXT
    until = zh_date(b.valid_until) if b.valid_until else ""  # as the messages write it: 2027年3月1日
    text = {
        CycleState.CERTIFIED: f"已认证,有效期至{until}",
        CycleState.AWAITING_FIRST: f"尚未认证,请在{until}前完成首次认证",
        CycleState.DUE_SOON: f"请在{until}前完成认证",
        CycleState.OVERDUE: f"认证已于{until}到期,请尽快认证",
        CycleState.UNDATED: "暂无认证记录",
        CycleState.DECEASED: "已登记死亡",
        # The roster says the benefit system stopped paying here (e.g. transferred out): nobody asks for a
        # certification here (cycle.state_of); before, the line still said 请在…前完成认证 or 认证已于…到期.
        CycleState.STOPPED_BY_ROSTER: STOPPED_TEXT,
    }[state]
    return str(state), text


def links_certificate(db: Session, b: Beneficiary, today: dt.date) -> bool:
    """Whether the elder's line links their certificate copy (`elder_certificate_png`): whenever the copy would be
    served, by the rule it is served by (`certificates.valid_copy`, `latest_copy`'s), whatever the line says: a
    certified elder's, one due soon or whose new attempt is under way, one the roster stopped here (a relative who
    must show it to the new bureau after a transfer). Before, only a `certified` line linked it: a stopped line lost
    it though the copy was served, and an elder dated by the roster alone linked a copy that was refused."""
    return valid_copy(db, b, today) is not None


@router.get("/api/family/elders")
def elders(ctx: Ctx, db: DB, token: SessionToken) -> dict[str, Any]:
    """The status of the elders of the caller's active bindings (operator token, as for the proxy API)."""
    op = operators.authenticate(db, ctx, token)
    rows = db.scalars(
        select(ProxyBinding).where(ProxyBinding.operator_id == op.id, ProxyBinding.status == BindingStatus.ACTIVE)
    )
    today = local_today(ctx.settings)
    out = []
    for row in rows:
        b = db.get(Beneficiary, row.beneficiary_id)
        if b is None:
            continue
        state, text = elder_status(db, ctx, b, today, operators.actor(op))
        if row.locked and state in TO_DO:  # staff must look at the failures first: the same next step as the limit
            state, text = "locked", message_zh("PROXY_BINDING_LOCKED")
        out.append(
            {
                "binding_id": row.id,
                "state": state,
                "text": text,
                "valid_until": b.valid_until.isoformat() if b.valid_until else None,
                "certificate": links_certificate(db, b, today),
            }
        )
    return {"elders": out}


@router.get("/family/bindings/{binding_id}/certificate.png")
def elder_certificate_png(ctx: Ctx, db: DB, request: Request, binding_id: str) -> Response:
    """The certificate copy of the elder of one of this WeChat login's bindings in force, linked from the family page
    (a relative who uses only these pages holds no operator token a link could carry). The pages' own account only
    (`operators.h5_account`); the refusals are the proxy API's, as pages. Audited `certificate.copy`."""
    openid = identity.openid_from(ctx, request)
    if openid is None:
        return login(ctx, request)
    op = operators.h5_account(db, ctx, openid)
    if op is None or len(binding_id) > 36 or "\x00" in binding_id:  # no stored id is such (nor holds a NUL)
        return _not_bound(request)
    try:
        elder, cert, st = copies.elder_copy(db, op, binding_id, local_today(ctx.settings))
    except ServiceError as exc:
        return _refused(request, exc)
    png = certificate_png(elder.name, cert, st, ctx.settings.public_base_url)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def _not_bound(request: Request) -> Response:
    # Another relative's binding reads exactly as an unknown or ended one.
    return message(
        request, "未找到该代办绑定", "该家人不在您当前的代办绑定中。请回到“为家人认证”页面查看。", status=404
    )


def _refused(request: Request, exc: ServiceError) -> Response:
    if exc.code == "PROXY_NOT_BOUND":
        return _not_bound(request)
    if exc.code == "PROXY_CONSENT_PENDING":
        return message(request, "老人尚未同意绑定", message_zh(exc.code), status=409)
    if exc.code in VOID_CODES.values():  # why none is valid: revoked, expired, ...
        return message(request, "暂无有效的认证凭证", message_zh(exc.code), status=409)
    if isinstance(exc, NotFoundError):  # never certified
        return message(request, "暂无有效的认证凭证", "老人还没有通过的认证。", status=404)
    raise exc
