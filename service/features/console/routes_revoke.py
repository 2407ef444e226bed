"""The revocation of a certification found fraudulent afterwards (冒领, 错误受理), from the person's page:
supervisors only (revoke.py; the rule: service/certification/revocation.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from service.certification.errors import ServiceError
from service.features.console.inputs import RowId
from service.features.console.revoke import revoke_from_console
from service.features.console.web import PREFIX, Supervisor, check_csrf, ctx_of, redirect, render, unit

router = APIRouter(prefix=PREFIX)
# What each refusal answers (a refusal's message is the catalog's, by its code).
REFUSAL_STATUS = {"REVOKE_REASON": 422, "CERTIFICATION_REVOKED": 409}


@router.post("/beneficiaries/{bid}/certifications/{cid}/revoke")
def revoke(
    request: Request,
    staff: Supervisor,
    bid: RowId,
    cid: RowId,
    reason: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(staff, csrf)
    back = f"/beneficiaries/{bid}"
    try:
        with unit(request) as db:
            done = revoke_from_console(db, staff, bid, cid, reason, note, ctx_of(request).rules)
    except ServiceError as exc:
        status = REFUSAL_STATUS.get(exc.code, 404)
        message = exc.message_zh if exc.code in REFUSAL_STATUS else "认证记录不存在"
        return render(request, "message.html", staff, status=status, message=message, back=back)
    return redirect(back if done is not None else "/roster")
