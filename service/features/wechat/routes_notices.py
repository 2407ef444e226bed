"""Console page 微信通知 (supervisors): the WeChat notices to settle by hand, and the decisions on them
(staff_notices.py). Mounted by install_wechat on the console's prefix; the console's login, role, CSRF and
input checks apply as on its own pages (the console lies below this feature, so the page lives here)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from service.certification.errors import ServiceError
from service.features.console.inputs import RowId
from service.features.console.web import PREFIX, Supervisor, check_csrf, no_store, redirect, render, unit
from service.features.wechat.staff_notices import KIND_ZH, settle, stuck_notices

router = APIRouter(prefix=PREFIX)
REFUSED = {
    "WECHAT_DUPLICATE_RISK": (422, "再发一次前请勾选“我已知晓该通知可能已送达，再发一次可能使本人收到两次”"),
    "WECHAT_NOTICE_UNREACHABLE": (
        409,
        "该用户已取消关注、拒收公众号消息或不是本公众号用户，再发也无法送达：请线下告知后点“已线下告知/关闭”",
    ),
    "WECHAT_CLOSE_NOTE": (422, "关闭前请填写如何告知了本人（不超过 200 字）"),
    "NOT_FOUND": (404, "该通知不存在，或已由他人处理"),
}


def _page(request: Request, staff: Supervisor, bid: int | None) -> Response:
    try:
        with unit(request) as db:
            rows = stuck_notices(db, staff, bid)
    except ServiceError:  # the person out of scope or unknown: as missing (scope.py)
        return render(request, "message.html", staff, status=404, message="人员不存在", back="/roster")
    return no_store(render(request, "wechat_notices.html", staff, rows=rows, kind_zh=KIND_ZH, bid=bid))


@router.get("/wechat-notices")
def notices(request: Request, staff: Supervisor) -> Response:
    return _page(request, staff, None)


@router.get("/beneficiaries/{bid}/wechat-notices")
def person_notices(request: Request, staff: Supervisor, bid: RowId) -> Response:
    return _page(request, staff, bid)


@router.post("/wechat-notices/{nid}/{action}")
def decide(
    request: Request,
    staff: Supervisor,
    nid: RowId,
    action: Literal["resend", "delivered", "close"],
    accept_duplicate: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(staff, csrf)
    try:
        with unit(request) as db:
            settle(db, staff, nid, action, accept_duplicate == "1", note)
    except ServiceError as exc:
        status, message = REFUSED.get(exc.code, REFUSED["NOT_FOUND"])
        return render(request, "message.html", staff, status=status, message=message, back="/wechat-notices")
    return redirect("/wechat-notices")
