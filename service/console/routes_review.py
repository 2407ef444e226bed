"""Review queue and case pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pipelines.reasons import ReasonCode
from service.console import audit_chain, case_media
from service.console.config import ConsoleConfig
from service.console.review_queue import (
    CaseError,
    claim_case,
    decide_case,
    decisions_of,
    is_open,
    list_queue,
    open_session,
    release_case,
)
from service.console.web import PREFIX, CurrentStaff, check_csrf, config_of, ctx_of, no_store, redirect, render, unit
from service.db.console_models import AltCertification, ReviewClaim, StaffUser
from service.db.models import Beneficiary, Certification, CertSession

router = APIRouter(prefix=PREFIX)


def reason_zh(code: str) -> str:
    try:
        return f"{ReasonCode(code).message_zh}（{code}）"
    except ValueError:
        return code


@router.get("/")
def home() -> Response:
    return redirect("/queue")


@router.get("/queue")
def queue_page(
    request: Request, staff: CurrentStaff, channel: str = "", region: str = "", reason: str = ""
) -> Response:
    # The filters are codes (channel, region prefix, reason code), never personal data.
    with unit(request) as db:
        items = list_queue(db, channel, region[:12], reason[:40])
        audit_chain.record(db, staff.actor, "queue.view", "-", {"n": len(items)})
    filters = {"channel": channel, "region": region, "reason": reason}
    return no_store(
        render(
            request, "queue.html", staff, items=items, filters=filters, reasons=list(ReasonCode), reason_zh=reason_zh
        )
    )


@router.post("/cases/{session_id}/claim")
def claim(request: Request, staff: CurrentStaff, session_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(staff, csrf)
    try:
        with unit(request) as db:
            claim_case(db, config_of(request), staff, session_id)
    except CaseError as exc:
        return render(request, "message.html", staff, status=409, message=exc.message, back="/queue")
    except IntegrityError:
        # Two first claims at the same moment: the other reviewer's insert won.
        return render(request, "message.html", staff, status=409, message="该案件已被其他审核员领取", back="/queue")
    return redirect(f"/cases/{session_id}")


@router.post("/cases/{session_id}/release")
def release(request: Request, staff: CurrentStaff, session_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(staff, csrf)
    try:
        with unit(request) as db:
            release_case(db, staff, session_id)
    except CaseError as exc:
        return render(request, "message.html", staff, status=409, message=exc.message, back="/queue")
    return redirect("/queue")


@router.post("/cases/{session_id}/decide")
def decide(
    request: Request,
    staff: CurrentStaff,
    session_id: str,
    decision: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(staff, csrf)
    try:
        with unit(request) as db:
            outcome = decide_case(db, ctx_of(request), staff, session_id, decision, reason[:1000])
    except CaseError as exc:
        return render(request, "message.html", staff, status=409, message=exc.message, back=f"/cases/{session_id}")
    msg = "已提交，等待主管复核" if outcome == "awaiting_supervisor" else "已完成审核"
    return render(request, "message.html", staff, message=msg, back="/queue")


@router.get("/cases/{session_id}")
def case_page(request: Request, staff: CurrentStaff, session_id: str) -> Response:
    ctx = ctx_of(request)
    cfg: ConsoleConfig = config_of(request)
    try:
        with unit(request) as db:
            s = open_session(db, session_id)
            b = db.get(Beneficiary, s.beneficiary_id)
            claim = db.get(ReviewClaim, s.id)
            holder = db.get(StaffUser, claim.claimed_by) if claim and claim.claimed_by else None
            history = db.scalars(
                select(CertSession)
                .where(CertSession.beneficiary_id == s.beneficiary_id)
                .order_by(CertSession.created_at.desc())
                .limit(20)
            ).all()
            certs = db.scalars(
                select(Certification)
                .where(Certification.beneficiary_id == s.beneficiary_id)
                .order_by(Certification.certified_on.desc())
            ).all()
            alts = db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == s.beneficiary_id)).all()
            tpl = case_media.template_source(db, s)
            decisions = decisions_of(db, s.id)
            audit_chain.record(db, staff.actor, "case.view", s.id, {"beneficiary": b.external_id if b else None})
    except CaseError as exc:
        return render(request, "message.html", staff, status=404, message=exc.message, back="/queue")
    result = s.result or {}
    return no_store(
        render(
            request,
            "case.html",
            staff,
            s=s,
            b=b,
            r=result,
            claim=claim,
            holder=holder,
            mine=bool(claim and claim.claimed_by == staff.id),
            open=is_open(s),
            frames=range(len(case_media.best_frame_times(s))),
            tpl=tpl,
            history=history,
            certs=certs,
            alts=alts,
            decisions=decisions,
            reason_zh=reason_zh,
            media_kept=s.media_purged_at is None and ctx is not None,
            claim_ttl_min=cfg.claim_ttl_s // 60,
        )
    )


@router.get("/cases/{session_id}/img/{kind}/{index}")
def case_image(request: Request, staff: CurrentStaff, session_id: str, kind: str, index: int) -> Response:
    ctx = ctx_of(request)
    with unit(request) as db:
        s = db.get(CertSession, session_id)
        if s is None:
            return Response(status_code=404)
        if kind == "template":
            src = case_media.template_source(db, s)
            data = case_media.video_frame(ctx, src, 0) if src else None
        elif kind == "card":
            data = case_media.card_portrait(ctx, s)
        elif kind == "frame":
            data = case_media.video_frame(ctx, s, index)
        else:
            data = None
        audit_chain.record(db, staff.actor, "case.image", s.id, {"kind": kind, "index": index})
    if data is None:
        return Response(status_code=404)
    return no_store(Response(data, media_type="image/jpeg"))
