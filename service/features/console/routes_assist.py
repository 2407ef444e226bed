"""Citizens' requests for a manual review or a home visit (from the H5 pages): the list, one request with the
person's recent attempts and the alternative-certification form pre-filled from it, and closing it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from service.certification.models import Beneficiary, utcnow
from service.features.console import access_log, audit_chain, scope
from service.features.console.alt_cert import AltCertError, StaleIdentityForm, identity_stamp
from service.features.console.alt_cert_form import RefusedForm, refused_form
from service.features.console.assist import KINDS_ZH, OUTCOMES_ZH, AssistError, certify_and_close, close
from service.features.console.assist_video import VideoRefused, accept_video, check_video, recent_attempts, video_gone
from service.features.console.auth import Staff
from service.features.console.inputs import RowId
from service.features.console.models import AssistKind, AssistOutcome, AssistRequest, AssistStatus
from service.features.console.web import CurrentStaff, check_csrf, ctx_of, no_store, redirect, render, unit
from service.infra.clock import local_today

router = APIRouter()  # mounted under the console prefix by routes_alt
ERRORS = {
    "certify": "认证未记录：请选择方式、填写日期（不晚于今天）和核验情况",
    "reply": "请填写给申请人的答复",
    "closed": "该申请已办结",
}


@router.get("/requests")
def requests_page(request: Request, staff: CurrentStaff) -> Response:
    """Open requests first (oldest first: first come, first served), then the latest closed ones."""
    with unit(request) as db:
        rows = db.execute(
            select(AssistRequest, Beneficiary)
            .join(Beneficiary, Beneficiary.id == AssistRequest.beneficiary_id)
            .where(scope.region_filter(staff, Beneficiary.region))
            .order_by(AssistRequest.status.desc(), AssistRequest.id)  # "open" sorts after "closed": desc
            .limit(500)
        ).all()
        open_rows = [r for r in rows if r[0].status == AssistStatus.OPEN]
        closed_rows = sorted((r for r in rows if r[0].status != AssistStatus.OPEN), key=lambda r: -r[0].id)[:50]
        # Phone numbers are personal data: who looked at the list is recorded.
        shown = [b.external_id for _, b in open_rows + closed_rows]  # who saw whose phone number
        people = [b.id for _, b in open_rows + closed_rows]  # each counts on their 查阅记录 (Part BK)
        access_log.record_list(db, staff.actor, "assist.list", "-", {"open": len(open_rows), "shown": shown}, people)
        # A manual review whose video the purge no longer keeps and took (assist_hold.py): now a home visit or the
        # counter.
        settings, now = ctx_of(request).settings, utcnow()
        expired = {r.id for r, _ in open_rows if video_gone(db, settings, r, now)}
    return no_store(
        render(
            request,
            "requests.html",
            staff,
            open_rows=open_rows,
            closed_rows=closed_rows,
            expired=expired,
            KINDS=KINDS_ZH,
            OUTCOMES=OUTCOMES_ZH,
        )
    )


@router.get("/requests/{rid}")
def request_page(request: Request, staff: CurrentStaff, rid: RowId) -> Response:
    return _request_page(request, staff, rid, ERRORS.get(request.query_params.get("e", "")))


def _request_page(
    request: Request,
    staff: Staff,
    rid: int,
    error: str | None,
    refused: RefusedForm | None = None,
    status: int = 200,
    video_note: str = "",
) -> Response:
    """One request's page; `refused`: its certification form refused, the reason shown and the fields kept;
    `error` with `status`: another form refused (`video_note`: the 视频审核通过 form's note, kept)."""
    with unit(request) as db:
        found = scope.request(db, staff, rid)  # out of the staff member's scope: as missing
        if found is None:
            return render(request, "message.html", staff, status=404, message="申请不存在", back="/requests")
        req, b = found
        attempts = recent_attempts(db, b.id)
        video = check_video(db, req, attempts)  # the video staff may accept from here, or why not
        audit_chain.record(db, staff.actor, "assist.view", audit_chain.person_target(b), {"request": req.id})
    # Pre-filled from the request: a home visit is recorded as one; a manual review leaves the way to staff.
    prefill_kind = "home_visit" if req.kind == AssistKind.HOME_VISIT else ""  # alt_cert.KINDS' home visit
    # The request's reference only: its phone stays in the request (shown above the form for the call), where the
    # retention erasure reaches it; a copy in the note would be kept with the certification and its alert.
    prefill_note = f"依据公众号申请 #{req.id}({KINDS_ZH[req.kind]})。"
    if refused is not None:  # what the clerk typed, not the request's pre-fill
        prefill_kind, prefill_note = refused.kind, refused.evidence
    return no_store(
        render(
            request,
            "request.html",
            staff,
            status=refused.status if refused else status,
            req=req,
            b=b,
            attempts=attempts,
            KINDS=KINDS_ZH,
            OUTCOMES=OUTCOMES_ZH,
            prefill_kind=prefill_kind,
            prefill_note=prefill_note,
            today=local_today(ctx_of(request).settings).isoformat(),
            identity_stamp=identity_stamp(b),  # the record's ID number as the form saw it (alt_cert)
            error=error,
            refused=refused,
            prefill_date=refused.on_date if refused else None,
            video=video,
            video_note=video_note,
        )
    )


@router.post("/requests/{rid}/certify")
def certify(
    request: Request,
    staff: CurrentStaff,
    rid: RowId,
    kind: Annotated[str, Form()] = "",
    on_date: Annotated[str, Form()] = "",
    evidence: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    seen_identity: Annotated[str | None, Form(alias="identity_stamp")] = None,  # the record's, as rendered
) -> Response:
    """The counter / home-visit certification the request led to (service/features/console/alt_cert.py), which closes
    it."""
    check_csrf(staff, csrf)
    if kind not in ("counter", "home_visit") or not evidence.strip():
        return redirect(f"/requests/{rid}?e=certify")
    ctx = ctx_of(request)
    try:
        when = dt.date.fromisoformat(on_date)
        if when > local_today(ctx.settings):
            return redirect(f"/requests/{rid}?e=certify")
        with unit(request) as db:
            found = scope.request(db, staff, rid, for_update=True)
            if found is None:
                return redirect("/requests")
            req = found[0]
            certify_and_close(db, ctx, staff, req, kind, when, evidence, seen_identity)
    except StaleIdentityForm as exc:
        return render(request, "message.html", staff, status=409, message=exc.message, back=f"/requests/{rid}")
    except (ValueError, AltCertError) as exc:
        return _request_page(request, staff, rid, None, refused_form(exc, kind, on_date, evidence))
    except AssistError as exc:
        return redirect(f"/requests/{rid}?e={'closed' if exc.code == 'ASSIST_CLOSED' else 'certify'}")
    return redirect(f"/requests/{rid}")


@router.post("/requests/{rid}/overrule")
def accept_request_video(
    request: Request,
    staff: CurrentStaff,
    rid: RowId,
    session: Annotated[str, Form(max_length=36)] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """视频审核通过: the video the page showed (`session`) accepted, which closes the request as certified
    (service/features/console/assist_video.py)."""
    check_csrf(staff, csrf)
    try:
        with unit(request) as db:
            found = scope.request(db, staff, rid, for_update=True)
            if found is None:
                return redirect("/requests")
            accept_video(db, ctx_of(request), staff, found[0], session, note)
    except VideoRefused as exc:
        return _request_page(request, staff, rid, f"视频审核未保存：{exc.message}", status=409, video_note=note)
    except AssistError:
        return redirect(f"/requests/{rid}?e=closed")
    return redirect(f"/requests/{rid}")


@router.post("/requests/{rid}/close")
def close_request(
    request: Request,
    staff: CurrentStaff,
    rid: RowId,
    reply: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Closed without a certification (e.g. the person will come to the counter): the reply is sent to them."""
    check_csrf(staff, csrf)
    try:
        with unit(request) as db:
            found = scope.request(db, staff, rid, for_update=True)
            if found is None:
                return redirect("/requests")
            req = found[0]
            close(db, ctx_of(request), staff, req, AssistOutcome.ANSWERED, reply)
    except AssistError as exc:
        return redirect(f"/requests/{rid}?e={'closed' if exc.code == 'ASSIST_CLOSED' else 'reply'}")
    return redirect(f"/requests/{rid}")
