"""Review queue and case pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipelines.reasons import ReasonCode
from service.adapters.http.errors import http_status
from service.certification.catalog import message_zh
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, Certification, CertSession, beneficiary_of, utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import access_log, audit_chain, case_media, scope
from service.features.console.auth import Staff
from service.features.console.case_media import CaseImage
from service.features.console.case_view import (
    IDENTITY_CHANGED_REFUSAL_ZH,
    identity_changed_since,
    light_evidence,
    review_reasons,
    score_rows,
)
from service.features.console.config import ConsoleConfig
from service.features.console.models import AltCertification, ReviewClaim, StaffUser
from service.features.console.review_queue import (
    OVERRULED,
    AlreadyDecided,
    BadCursor,
    CaseError,
    NoCase,
    SettledMeanwhile,
    TakenOver,
    claim_case,
    claim_next,
    decide_case,
    decisions_of,
    is_open,
    list_queue,
    may_claim,
    open_session,
    person_of,
    reclaim_at,
    release_case,
    second_needed_zh,
)
from service.features.console.web import (
    PREFIX,
    CurrentStaff,
    LoginRequired,
    StaleForm,
    check_csrf,
    config_of,
    ctx_of,
    current_staff,
    kept_decision,
    no_store,
    redirect,
    render,
    unit,
)

router = APIRouter(prefix=PREFIX)
# The pictures of a case page load right after the page: fetched within this time of the reviewer's own
# `case.view` of that case, they are covered by that row (which lists them) instead of one row each.
IMAGE_COVERED_S = 10 * 60


@router.get("/")
def home() -> Response:
    return redirect("/queue")


@router.get("/queue")
def queue_page(
    request: Request, staff: CurrentStaff, channel: str = "", region: str = "", reason: str = "", after: str = ""
) -> Response:
    # The filters are codes (channel, region prefix, reason code), the page's cursor a time and a case id: no
    # personal data.
    try:
        with unit(request) as db:
            page = list_queue(db, channel, region[:12], reason[:40], staff=staff, after=after[:100])
            items = page.items
            # Who saw whom: every person on the page (a relative's verification, which has none, by its session).
            shown = [it.beneficiary.external_id if it.beneficiary else f"session:{it.session.id}" for it in items]
            people = [it.beneficiary.id for it in items if it.beneficiary]  # each counts on their 查阅记录 (Part BK)
            people += access_log.claimed_people(db, [it.session.id for it in items if it.beneficiary is None])
            access_log.record_list(db, staff.actor, "queue.view", "-", {"n": len(items), "shown": shown}, people)
            # The 领取 / 接手 buttons, read as the claim is checked: the first decider's account too (Part BN).
            cfg = config_of(request)
            claimable = {it.session.id for it in items if may_claim(staff, it.claim, cfg, db)}
    except BadCursor as exc:  # an edited or outdated next-page link: back to the first page
        return render(request, "message.html", staff, status=400, message=exc.message, back="/queue")
    filters = {"channel": channel, "region": region, "reason": reason}
    return no_store(
        render(
            request,
            "queue.html",
            staff,
            items=items,
            page=page,
            filters=filters,
            filtered=any(filters.values()),
            reasons=list(ReasonCode),
            review_reasons=review_reasons,
            claimable=claimable,
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
    session_id: str,
    decision: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    # The login read here, not as a dependency: a decision sent after the login ran out goes with the login form
    # (KeptDecision), and the login reopens the case with it (reopen_decision), as a page opened before a newer
    # login does; only one this browser provably sent from the console (web.kept_decision).
    try:
        staff = current_staff(request)
    except LoginRequired as ran_out:
        raise LoginRequired(kept_decision(request, ran_out, decision, reason, csrf)) from None
    try:
        check_csrf(staff, csrf)
        with unit(request) as db:
            outcome = decide_case(db, ctx_of(request), staff, session_id, decision, reason[:1000])
    except AlreadyDecided as exc:  # a second click: the decision is the reviewer's own, nothing lost
        back = f"/cases/{session_id}"
        return render(request, "message.html", staff, status=409, message=exc.message, back=back, next_case=True)
    except NoCase as exc:  # unknown or out of scope: no case page to go back to
        return render(request, "message.html", staff, status=409, message=exc.message, back="/queue")
    except StaleForm:  # a page opened before a newer login: the case again, the typed decision and reason kept
        return reopen_decision(request, staff, session_id, STALE_DECISION_ZH, decision, reason, 403)
    except CaseError as exc:
        # Not saved (taken over, settled meanwhile, no claim): the case again, the decision and reason kept.
        taken = exc if isinstance(exc, TakenOver) else None
        settled = exc if isinstance(exc, SettledMeanwhile) else None
        refused = Refused(exc.message, decision, reason[:1000], taken, settled)
        return _case_view(request, staff, session_id, 409, refused)
    except ServiceError as exc:
        # The core or a feature refused the acceptance (a person recorded deceased meanwhile, a relative's binding
        # revoked or its consent window past): the reason in words on the console's page, not the API's JSON.
        status = http_status(exc)
        if exc.code == ReasonCode.IDENTITY_CHANGED:  # the case stays the reviewer's: back to it, to reject it
            back, message = f"/cases/{session_id}", IDENTITY_CHANGED_REFUSAL_ZH
            return render(request, "message.html", staff, status=status, message=message, back=back)
        return render(request, "message.html", staff, status=status, message=message_zh(exc.code), back="/queue")
    msg = {
        "awaiting_supervisor": "已提交，等待主管复核",
        OVERRULED: "您的决定与初审意见不同，已作为新的初审意见提交，须由另一位主管复核后生效",
    }.get(outcome, "已完成审核")
    return render(request, "message.html", staff, message=msg, back="/queue", next_case=True)


@router.post("/cases/next")
def next_case(
    request: Request,
    staff: CurrentStaff,
    csrf: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """ "下一件": claim the oldest open case this reviewer may decide among those the queue page's filters show,
    and open it (a POST: it claims)."""
    check_csrf(staff, csrf)
    with unit(request) as db:
        sid = claim_next(db, config_of(request), staff, channel, region[:12], reason[:40])
    if sid is None:
        return render(request, "message.html", staff, message="队列中暂无可处理的案件", back="/queue")
    return redirect(f"/cases/{sid}")


def _face_source(db: Session, operator: CertSession | None) -> tuple[dict[str, str], list[int]]:
    """The relative's picture (a frame of their verification session `operator`), for a view's audit entry: the
    detail naming that session, and the person whose number it claims, for their 查阅记录 too (access_log)."""
    if operator is None:
        return {}, []
    return {"operator_source": operator.id}, access_log.claimed_people(db, [operator.id])


def _images(s: CertSession, tpl: CertSession | None, operator: CertSession | None) -> list[str]:
    """The pictures the case page shows (named in its `case.view` audit row)."""
    names = [str(CaseImage.CARD)] + [f"{CaseImage.FRAME}:{i}" for i in range(case_media.frame_count(s))]
    return names + ([str(CaseImage.TEMPLATE)] if tpl else []) + ([str(CaseImage.OPERATOR)] if operator else [])


def _records(
    db: Session, s: CertSession, b: Beneficiary | None
) -> tuple[Sequence[CertSession], Sequence[Certification], Sequence[AltCertification]]:
    """The beneficiary's recent sessions, certifications and alternative certifications; a session without a
    beneficiary has only itself."""
    if b is None:
        return [s], [], []
    history = db.scalars(
        select(CertSession).where(CertSession.beneficiary_id == b.id).order_by(CertSession.created_at.desc()).limit(20)
    ).all() or [s]
    certs = db.scalars(
        select(Certification).where(Certification.beneficiary_id == b.id).order_by(Certification.certified_on.desc())
    ).all()
    alts = db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == b.id)).all()
    return history, certs, alts


# A decision sent from a page opened before the current login (another tab's login, an idle timeout).
STALE_DECISION_ZH = "页面已过期（可能已在其他窗口重新登录），您的决定未保存。已重新打开本案件，请核对后再次提交"
# A decision sent after the login ran out, as the case page says it after the new login (routes_auth.login).
RELOGGED_DECISION_ZH = "登录已超时，您的决定尚未提交。已重新打开本案件并填回您的决定和理由，请核对后提交"


@dataclass(frozen=True)
class Refused:
    """A decision the case page refused, shown again first on the page: why, and what the reviewer had chosen and
    typed (`taken`: the colleague who holds the case now; `settled`: who settled it meanwhile, and how; named on
    the page, with the decision and reason kept read-only when the case is no longer the reviewer's to decide)."""

    message: str
    decision: str
    reason: str
    taken: TakenOver | None = None
    settled: SettledMeanwhile | None = None


def reopen_decision(
    request: Request, staff: Staff, session_id: str, message: str, decision: str, reason: str, status: int = 200
) -> Response:
    """The case page again after a decision that was not saved because of the login (a page from before a newer
    login, or a login that ran out: `message` says which), the decision and reason filled back into its form."""
    return _case_view(request, staff, session_id, status, Refused(message, decision, reason[:1000]))


@router.get("/cases/{session_id}")
def case_page(request: Request, staff: CurrentStaff, session_id: str) -> Response:
    return _case_view(request, staff, session_id)


def _claim_ends(claim: ReviewClaim | None, staff_id: int, ttl_s: int) -> dt.datetime | None:
    """When the holder's own claim lapses (a colleague may take the case over then), told to the holder."""
    if claim is None or claim.claimed_by != staff_id or claim.claimed_at is None:
        return None
    return claim.claimed_at + dt.timedelta(seconds=ttl_s)


def _case_view(
    request: Request, staff: Staff, session_id: str, status: int = 200, refused: Refused | None = None
) -> Response:
    ctx = ctx_of(request)
    cfg: ConsoleConfig = config_of(request)
    try:
        with unit(request) as db:
            s = open_session(db, session_id, staff)
            b = beneficiary_of(db, s)  # None: a relative's verification (no history, certifies nobody)
            person = person_of(db, s, b)
            claim = db.get(ReviewClaim, s.id)
            holder = db.get(StaffUser, claim.claimed_by) if claim and claim.claimed_by else None
            history, certs, alts = _records(db, s, b)
            tpl = case_media.template_source(db, s)
            operator = case_media.operator_source(db, s)
            decisions = decisions_of(db, s.id)
            four_eyes = second_needed_zh(db, s, claim) if is_open(s) else []
            claimable = may_claim(staff, claim, cfg, db)  # the first decider's account read too
            reclaim = reclaim_at(claim, staff.id, cfg, utcnow())  # given back past its lifetime: when again
            images = _images(s, tpl, operator)
            detail: dict[str, object] = {"beneficiary": audit_chain.person_target(b) if b else None, "images": images}
            source, faces = _face_source(db, operator)
            access_log.record_list(db, staff.actor, "case.view", s.id, detail | source, faces)
    except CaseError as exc:
        return render(request, "message.html", staff, status=404, message=exc.message, back="/queue")
    result = s.result or {}
    claim_ends = _claim_ends(claim, staff.id, cfg.claim_ttl_s)
    return no_store(
        render(
            request,
            "case.html",
            staff,
            status=status,
            refused=refused,
            claim_ends=claim_ends,
            claim_lapsed=claim_ends is not None and claim_ends < utcnow(),
            s=s,
            b=b,
            person=person,
            r=result,
            claim=claim,
            holder=holder,
            mine=bool(claim and claim.claimed_by == staff.id),
            claimable=claimable,
            open=is_open(s),
            frames=range(case_media.frame_count(s)),
            spread=case_media.spread_frames(s),  # evenly spaced frames: no analysis chose any (a failed job)
            SPREAD=case_media.SPREAD,
            tpl=tpl,
            operator=operator,
            history=history,
            certs=certs,
            alts=alts,
            decisions=decisions,
            four_eyes=four_eyes,
            why=review_reasons(s),
            identity_changed=identity_changed_since(s, b),
            scores=score_rows(result),
            light=light_evidence(result),
            media_kept=s.media_purged_at is None and ctx is not None,
            claim_ttl_min=cfg.claim_ttl_s // 60,
            reclaim_at=reclaim,
            idle_min=cfg.idle_timeout_s // 60,
        )
    )


def _covered_by_view(db: Session, actor: str, session_id: str) -> bool:
    since = utcnow() - dt.timedelta(seconds=IMAGE_COVERED_S)
    row = db.scalar(
        select(ConsoleAuditEntry.seq)
        .where(
            ConsoleAuditEntry.at >= since.replace(microsecond=0),
            ConsoleAuditEntry.action == "case.view",
            ConsoleAuditEntry.actor == actor[:64],
            ConsoleAuditEntry.target == session_id[:64],
        )
        .limit(1)
    )
    return row is not None


@router.get("/cases/{session_id}/img/{kind}/{index}")
def case_image(request: Request, staff: CurrentStaff, session_id: str, kind: str, index: int) -> Response:
    ctx = ctx_of(request)
    with unit(request) as db:
        s = scope.case(db, staff, session_id)  # out of the staff member's scope: as missing
        if s is None:
            return Response(status_code=404)
        # A plain str path parameter, not the enum: an unknown kind is a missing picture (404), as before.
        known = kind in set(CaseImage)
        data = case_media.picture(ctx, db, s, CaseImage(kind), index) if known else None
        # A picture fetched outside a page view of this case (a direct link) gets its own row.
        if not _covered_by_view(db, staff.actor, s.id):
            operator = case_media.operator_source(db, s) if kind == CaseImage.OPERATOR else None
            source, faces = _face_source(db, operator)
            detail: dict[str, object] = {"kind": kind, "index": index, **source}
            access_log.record_list(db, staff.actor, "case.image", s.id, detail, faces)
    if data is None:
        return Response(status_code=404)
    return no_store(Response(data, media_type="image/jpeg"))
