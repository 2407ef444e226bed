"""The revocation of a certification found fraudulent afterwards (冒领, 错误受理), from the person's page:
supervisors only (revoke.py; the rule: service/certification/revocation.py). From the same page, a hold on a
session's media as evidence and its early release (service/certification/evidence_hold.py); and 解除锁定 of a
relative's binding, by any staff member (a flagged one: a supervisor; binding_unlock.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from service.certification.errors import ServiceError
from service.features.console import audit_chain
from service.features.console.auth import Role, Staff
from service.features.console.binding_unlock import FLAGGED_REFUSED, NOTE_REFUSED, unlock_from_console
from service.features.console.inputs import RowId
from service.features.console.revoke import hold_from_console, release_from_console, revoke_from_console
from service.features.console.web import (
    PREFIX,
    ROLE_DENIED,
    CurrentStaff,
    Supervisor,
    check_csrf,
    ctx_of,
    redirect,
    render,
    unit,
)

router = APIRouter(prefix=PREFIX)
# What each refusal answers (a refusal's message is the catalog's, by its code).
REFUSAL_STATUS = {
    "REVOKE_REASON": 422,
    "CERTIFICATION_REVOKED": 409,
    "REVOKE_SELF": 409,
    "SECOND_UNCONFIRMED": 409,
    "REVOKE_REASON_DIFFERS": 409,
    "EVIDENCE_HOLD_REASON": 422,
    "EVIDENCE_RELEASE_NOTE": 422,
    "EVIDENCE_PURGED": 409,
    "EVIDENCE_NONE": 409,
    "EVIDENCE_HOLD_ENDED": 409,
    "EVIDENCE_RELEASE_SELF": 409,
    NOTE_REFUSED: 422,
    FLAGGED_REFUSED: 403,
}


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
    ctx = ctx_of(request)
    days = ctx.settings.storage.evidence_hold_days
    return _on_person_page(
        request,
        staff,
        bid,
        "认证记录不存在",
        lambda db: revoke_from_console(db, staff, bid, cid, reason, note, ctx.rules, days, ctx.hooks),
    )


@router.post("/beneficiaries/{bid}/sessions/{sid}/hold")
def hold(
    request: Request,
    staff: Supervisor,
    bid: RowId,
    sid: Annotated[str, Path(max_length=36)],
    reason: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(staff, csrf)
    days = ctx_of(request).settings.storage.evidence_hold_days
    return _on_person_page(
        request, staff, bid, "认证记录不存在", lambda db: hold_from_console(db, staff, bid, sid, reason, note, days)
    )


@router.post("/beneficiaries/{bid}/holds/{hid}/release")
def release(
    request: Request,
    staff: Supervisor,
    bid: RowId,
    hid: RowId,
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(staff, csrf)
    return _on_person_page(
        request, staff, bid, "保全记录不存在", lambda db: release_from_console(db, staff, bid, hid, note)
    )


@router.post("/beneficiaries/{bid}/bindings/{binding_id}/unlock")
def unlock_binding(
    request: Request,
    staff: CurrentStaff,
    bid: RowId,
    binding_id: Annotated[str, Path(max_length=36)],
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """解除锁定 of a relative's binding (binding_unlock.py): any staff member; a flagged binding, a supervisor."""
    check_csrf(staff, csrf)
    back = f"/beneficiaries/{bid}"
    try:
        with unit(request) as db:
            done = unlock_from_console(db, staff, bid, binding_id, note)
    except ServiceError as exc:
        if exc.code == FLAGGED_REFUSED:  # refused to the role: on the chain as any page refused to it (web.require)
            with unit(request) as db:
                audit_chain.record(db, staff.actor, ROLE_DENIED, request.url.path, {"need": Role.SUPERVISOR.value})
        return _refused(request, staff, exc, back, "代办绑定不存在或已解除")
    return redirect(back if done is not None else "/roster")


def _on_person_page(
    request: Request, staff: Staff, bid: int, missing: str, act: Callable[[Session], object | None]
) -> Response:
    """A supervisor's action from the person's page, in one unit of work: back to the page when done, to the
    roster when the record is gone (None), a refusal's page otherwise (`missing`: the words for NOT_FOUND)."""
    back = f"/beneficiaries/{bid}"
    try:
        with unit(request) as db:
            done = act(db)
    except ServiceError as exc:
        return _refused(request, staff, exc, back, missing)
    return redirect(back if done is not None else "/roster")


def _refused(request: Request, staff: Staff, exc: ServiceError, back: str, missing: str) -> Response:
    """A refusal's page: the catalog's message for a listed code, `missing` for the rest (NOT_FOUND)."""
    status = REFUSAL_STATUS.get(exc.code, 404)
    message = exc.message_zh if exc.code in REFUSAL_STATUS else missing
    return render(request, "message.html", staff, status=status, message=message, back=back)
