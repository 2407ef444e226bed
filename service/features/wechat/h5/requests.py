"""Applying for a manual review or a home visit from the H5 pages (the daily-limit, timeout and failed-result
screens), instead of only a phone number.

Whom the request is for: the session the screen was about (one of this openid's own sessions: the user's
self-certification, or a relative's certification or consent for an elder they are bound to), or the elder of one of
the openid's bindings. Without either (the plain form `/h5/apply`: the daily limit refused the session), the form asks
who: the name and ID number typed (the same check as opening a session), or, as one choice the user makes, the
person this openid last opened a self-certification for (`_last_person`). Never that person unasked: on a phone two
pensioners share, the last one is whoever tried last, and the other's request would be filed for them; never a
person recorded deceased (a widow on her late husband's phone). Plain form posts: the page works without script;
the H5 cookie is SameSite=Lax and the form carries a token bound to the openid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.names import same_name
from service.adapters.http.deps import DB, Ctx
from service.adapters.http.errors import http_status
from service.certification import attempts, sessions
from service.certification.audit import audit
from service.certification.catalog import ServiceCode
from service.certification.context import ServiceContext
from service.certification.current_person import made_for_current_person_sql
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionDecision,
    beneficiary_of,
    newest_first,
    utcnow,
)
from service.features.console.assist import KINDS_ZH, AssistError, check_form, offered_kinds, open_request, submit
from service.features.console.assist_video import hold_video, reviewable, video_gone
from service.features.console.inputs import BadInput, RowId, check_inputs
from service.features.console.models import AssistOutcome, AssistRequest
from service.features.proxy import operators
from service.features.proxy.models import ENDED_STATUSES, ProxyBinding, ProxySession, ProxySessionKind
from service.features.wechat.h5 import identity, roster_told
from service.features.wechat.h5.login import login
from service.features.wechat.h5.pages import message, render
from service.features.wechat.h5.result_view import staff_decision
from service.features.wechat.models import WeChatSessionLink, WeChatUser
from service.infra.ratelimit import is_form_post
from service.infra.security import ID_INPUT_MAX


async def _no_nul(request: Request) -> None:
    """No value of these pages (the path, the query, every field of the form) holds a NUL: the console's rule
    (console/inputs.py: PostgreSQL can neither compare nor store one, a 500), answered as the H5 calls answer a NUL
    in an id (422 FIELD_INVALID, deps.NO_NUL)."""
    try:
        await check_inputs(request)
    except BadInput:
        raise ServiceError("FIELD_INVALID", "a NUL character in the request") from None


router = APIRouter(include_in_schema=False, dependencies=[Depends(_no_nul)])
NOT_YOURS = ("未找到认证记录", "请从公众号菜单“资格认证”重新进入。")


@dataclass(frozen=True)
class Subject:
    beneficiary: Beneficiary
    by_relative: bool
    session_id: str | None
    # Whether this user may read the person's roster status (a death): roster_told.py (the binding the screen names,
    # when it names one: whether it was accepted).
    told: bool = False
    # Staff rejected the session the screen names, or the person's latest attempt (`_reviewed`): the review has just
    # happened, the form offers a home visit only.
    reviewed: bool = False
    # There is a video staff may accept (assist_video.reviewable, read by `_reviewed`): else a home visit only.
    video: bool = True


def _form_token(ctx: ServiceContext, openid: str) -> str:
    return ctx.keyring.mac("h5-assist:" + openid)[:32]


def _form_token_ok(ctx: ServiceContext, openid: str, token: str) -> bool:
    """`_form_token` under any signing key in use: a form opened just before a rotation's switch still submits."""
    return ctx.keyring.verify_mac("h5-assist:" + openid, token, length=32)


def _from_session(db: Session, ctx: ServiceContext, openid: str, session_id: str) -> Subject | None:
    link = db.get(WeChatSessionLink, session_id)
    s = db.get(CertSession, session_id)
    if link is None or s is None or link.openid != openid:
        return None
    ps = db.get(ProxySession, session_id)
    accepted: bool | None = None  # a relative's session: whether their binding was accepted
    if ps is not None:
        if ps.kind == ProxySessionKind.VERIFICATION.value or ps.binding_id is None:
            return None  # the relative's own real-name check: no pension to certify
        binding = db.get(ProxyBinding, ps.binding_id)
        if binding is None or binding.status in ENDED_STATUSES:
            return None  # unbound since: the relative no longer acts for the elder
        accepted = roster_told.accepted(binding)
    b = beneficiary_of(db, s)
    if b is None:
        return None
    told = accepted if accepted is not None else roster_told.may_read_status(db, ctx, openid, b)
    return Subject(b, ps is not None, session_id, told, staff_decision(s) == SessionDecision.REJECT)


def _from_binding(db: Session, ctx: ServiceContext, openid: str, binding_id: str) -> Subject | None:
    """The elder of one of this openid's bindings (the family page at the daily limit: no session to name): the H5
    pages' own account's (`operators.h5_account`), never a channel key's for the same openid."""
    op = operators.h5_account(db, ctx, openid)
    row = db.get(ProxyBinding, binding_id)
    if op is None or row is None or row.operator_id != op.id or row.status in ENDED_STATUSES:
        return None
    b = db.get(Beneficiary, row.beneficiary_id)
    return Subject(b, True, None, roster_told.accepted(row)) if b is not None else None


def _reviewed(db: Session, subject: Subject) -> Subject:
    """The subject, `reviewed` also when staff rejected the person's latest attempt. A manual review is of the
    person's recorded videos (the console's request page lists their attempts, 查看视频): a post that names no
    session, or an older one (a hand-made form, the typed name and number, the person's own plain form), would
    otherwise send the video staff just rejected back to them (`assist.offered_kinds`, docs/security.md Part CB).
    `video` read too: no video staff may accept, no 人工审核 (Part DP)."""
    latest = db.scalar(
        select(CertSession)
        .where(CertSession.beneficiary_id == subject.beneficiary.id, CertSession.channel != Channel.STAFF)
        .order_by(*newest_first())  # as the console's request page and the purge rank them
        .limit(1)
    )
    rejected = latest is not None and staff_decision(latest) == SessionDecision.REJECT
    video = reviewable(db, subject.beneficiary.id, subject.session_id)
    return replace(subject, reviewed=subject.reviewed or rejected, video=video)


def _subject(db: Session, ctx: ServiceContext, openid: str, session_id: str, binding_id: str = "") -> Subject | None:
    """Whom this openid may ask for (see the module's docstring), `_reviewed` read; None: the form asks for name
    and number."""
    subject = _named_subject(db, ctx, openid, session_id, binding_id)
    return _reviewed(db, subject) if subject is not None else None


def _named_subject(db: Session, ctx: ServiceContext, openid: str, session_id: str, binding_id: str) -> Subject | None:
    if session_id:
        return _from_session(db, ctx, openid, session_id)
    if binding_id:
        return _from_binding(db, ctx, openid, binding_id)
    return None  # the plain form: the user says who (`_chosen_subject`)


LAST = "last"  # the plain form's choice of `_last_person` (any other value: the name and number typed)


def _last_person(db: Session, openid: str) -> Beneficiary | None:
    """The person this openid last opened a self-certification for, offered on the plain form as one choice: not
    one recorded deceased, nor a record the roster gave another ID number since this openid's last session of it
    (the new person's name is not this user's to see: current_person.py)."""
    user = db.query(WeChatUser).filter_by(openid=openid).one_or_none()
    b = db.get(Beneficiary, user.beneficiary_id) if user is not None and user.beneficiary_id else None
    if b is None or b.status == BeneficiaryStatus.DECEASED:
        return None
    if b.identity_since is not None:
        opened = select(CertSession.id).join(WeChatSessionLink, WeChatSessionLink.session_id == CertSession.id)
        current = opened.join(Beneficiary, Beneficiary.id == CertSession.beneficiary_id).where(
            WeChatSessionLink.openid == openid,
            CertSession.beneficiary_id == b.id,
            made_for_current_person_sql(CertSession.created_at),
        )
        return b if db.scalar(current.limit(1)) is not None else None
    return b


def _chosen_subject(
    db: Session, ctx: ServiceContext, openid: str, last: Beneficiary | None, name: str, id_number: str
) -> Subject:
    """Whom the plain form asks for: `last` (`_last_person`, when the user chose them), else the name and number
    typed."""
    if last is not None:
        return Subject(last, False, None, roster_told.may_read_status(db, ctx, openid, last))
    return _typed_subject(db, ctx, openid, name, id_number)


def _page(
    request: Request, ctx: ServiceContext, db: Session, openid: str, status: int = 200, **values: Any
) -> Response:
    values.setdefault("error", None)
    values.setdefault("form", {})
    values.setdefault("binding", "")
    values.setdefault("last", None)
    done = values.get("done")
    # The contact phone of a request is shown only to whoever gave it (a relative may see the elder's request).
    values["own"] = done is not None and done.openid == openid
    subject = values.get("subject")
    values["offered"] = offered_kinds(subject is not None and subject.reviewed, subject is None or subject.video)
    # A manual review left open past its video's hold (assist_hold.py) and that video deleted: no longer 不用再拍.
    values["video_expired"] = done is not None and video_gone(db, ctx.settings, done, utcnow())
    values["hold_days"] = ctx.settings.storage.review_video_hold_days
    return render(
        request,
        "apply.html",
        status=status,
        kinds=KINDS_ZH,
        token=_form_token(ctx, openid),
        phone=ctx.settings.bureau_phone,
        **values,
    )


@router.get("/apply")
def apply_self(ctx: Ctx, db: DB, request: Request) -> Response:
    return _show(ctx, db, request, "", "")


@router.get("/apply/{session}")
def apply_page(ctx: Ctx, db: DB, request: Request, session: str) -> Response:
    """The form (or, when a request is already open, its state); `session`: the screen's session, if any."""
    return _show(ctx, db, request, session, "")


@router.get("/apply/binding/{binding}")
def apply_for_bound_elder(ctx: Ctx, db: DB, request: Request, binding: str) -> Response:
    """The same for the elder of one of the relative's bindings (the family page at the daily limit)."""
    return _show(ctx, db, request, "", binding)


def _show(ctx: Ctx, db: DB, request: Request, session: str, binding: str) -> Response:
    openid = identity.openid_from(ctx, request)
    if openid is None:
        return login(ctx, request)
    subject = _subject(db, ctx, openid, session, binding)
    if (session or binding) and subject is None:
        return message(request, *NOT_YOURS, status=404)
    existing = open_request(db, subject.beneficiary.id, openid) if subject is not None else None
    last = _last_person(db, openid) if not (session or binding) else None
    return _page(request, ctx, db, openid, subject=subject, session=session, binding=binding, done=existing, last=last)


@router.get("/reply/{request_id}")
def reply_page(ctx: Ctx, db: DB, request: Request, request_id: RowId) -> Response:
    """Staff's full reply to a request, which the closing notice links to (its 20-character key shows it only when
    it fits: messages.assist_message): only to the WeChat user who filed it, as the notice went to them alone."""
    openid = identity.openid_from(ctx, request)
    if openid is None:
        return login(ctx, request)
    req = db.get(AssistRequest, request_id)
    if req is None or req.openid != openid or req.outcome != AssistOutcome.ANSWERED or not req.outcome_note:
        return message(request, "未找到答复", "请从公众号消息重新进入,或拨打经办机构电话咨询。", status=404)
    b = db.get(Beneficiary, req.beneficiary_id)
    who = f"{b.name}的" if b is not None else ""
    return message(request, f"{who}{KINDS_ZH.get(req.kind, '')}申请:工作人员答复", req.outcome_note)


# The answer to a typed name and number that finds no one to file for: an unknown person, a name that does not
# match, or (said the same way, as the roster is not the form's to reveal) a person recorded as deceased.
UNKNOWN = "姓名与身份证号不一致,或不在本地待遇人员名册中"


@router.post("/apply")
def apply_submit(
    ctx: Ctx,
    db: DB,
    request: Request,
    kind: Annotated[str, Form()] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=400)] = "",
    session: Annotated[str, Form(max_length=36)] = "",
    binding: Annotated[str, Form(max_length=36)] = "",
    name: Annotated[str, Form(max_length=64)] = "",
    id_number: Annotated[str, Form(max_length=ID_INPUT_MAX)] = "",
    who: Annotated[str, Form(max_length=8)] = "",
    token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    openid = identity.openid_from(ctx, request)
    if openid is None or not _form_token_ok(ctx, openid, token):
        return message(request, "页面已过期", "请关闭本页面,从公众号菜单“资格认证”重新进入。", status=403)
    if not is_form_post(request.headers.get("content-type", "")):
        # The rate limiter reads the typed number from a plain form post only (what the page sends): another
        # encoding would try numbers outside the per-number limits.
        return message(request, "页面已过期", "请关闭本页面,从公众号菜单“资格认证”重新进入。", status=415)
    subject = _subject(db, ctx, openid, session, binding)
    if (session or binding) and subject is None:
        return message(request, *NOT_YOURS, status=404)
    typed = subject is None  # the plain form: the user said who
    last = _last_person(db, openid) if typed else None
    form = {"kind": kind, "phone": phone, "note": note, "name": name, "who": who}
    page = _Answer(request, ctx, db, openid, session, binding, form, last)
    try:
        check_form(kind, phone)  # before any look-up: a form error reads the same for every name and number
        if subject is None:
            subject = _reviewed(db, _chosen_subject(db, ctx, openid, last if who == LAST else None, name, id_number))
        actor = attempts.wechat_requester(ctx, openid)
        about = (subject.session_id, subject.by_relative, subject.reviewed, subject.video)
        req = submit(db, subject.beneficiary, kind, phone, note, openid, actor, *about)
        hold_video(db, req)  # a manual review of a video a purge is deleting this moment: refused, not stored
        db.commit()
    except AssistError as exc:
        db.rollback()
        if exc.code == "ASSIST_DECEASED" and subject is not None and not subject.told:
            return _unknown(db, ctx, page, subject.beneficiary.external_id, "deceased")
        return _refused(db, page, subject, exc, typed)
    except ServiceError:
        db.rollback()
        return _unknown(db, ctx, page, "-", "unknown")
    return page.show(200, subject=subject, done=req, submitted=True)


@dataclass(frozen=True)
class _Answer:
    """The form page answering one submission (the same request, user and screen for every outcome)."""

    request: Request
    ctx: ServiceContext
    db: Session
    openid: str
    session: str
    binding: str
    form: dict[str, str]
    last: Beneficiary | None  # the plain form's `_last_person`

    def show(self, status: int, **values: Any) -> Response:
        where = {"session": self.session, "binding": self.binding, "last": self.last}
        return _page(self.request, self.ctx, self.db, self.openid, status, **where, **values)


def _unknown(db: Session, ctx: ServiceContext, page: _Answer, target: str, why: str) -> Response:
    """No one to file for, said the same way whatever the reason; staff read the reason in the audit."""
    audit(db, attempts.wechat_requester(ctx, page.openid), "assist.refused", target, {"reason": why})
    db.commit()
    status = http_status(ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, why))
    return page.show(status, subject=None, done=None, error=UNKNOWN, form=page.form)


def _refused(db: Session, page: _Answer, subject: Subject | None, exc: AssistError, plain: bool) -> Response:
    """A form error, or the request already open for this person (shown instead of the form). The plain form
    comes back asking who again (`plain`: its person was the user's choice, not the screen's)."""
    existing = open_request(db, subject.beneficiary.id, page.openid) if subject is not None else None
    if exc.code == "ASSIST_OPEN" and existing is not None:
        return page.show(200, subject=subject, done=existing)
    shown = None if plain else subject
    return page.show(http_status(exc), subject=shown, done=None, error=exc.message_zh, form=page.form)


def _typed_subject(db: Session, ctx: ServiceContext, openid: str, name: str, id_number: str) -> Subject:
    """The person typed on the form: the same check as opening a self session (the name must match). Told of a
    death as any other way of naming the person (roster_told.py: the person's own account, an accepted relative);
    anyone else can type a name and number and reads a death as an unknown record."""
    b = sessions.find_beneficiary(db, ctx, None, id_number.strip().upper())
    if not same_name(b.name, name):
        raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "name and number do not match")
    return Subject(b, False, None, roster_told.may_read_status(db, ctx, openid, b))
