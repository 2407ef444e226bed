"""The H5 pages and their small JSON helpers. Uploads of the video go to the normal session API; the card goes
through `/h5/api/sessions/{id}/card` (or `/card-media` for a WeChat JS-SDK media_id) for the instant OCR check,
then into the same session upload."""

from __future__ import annotations

import importlib.util
import logging
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, StrictBool

from pipelines.liveness.challenge import PROMPTS_ZH
from pipelines.names import same_name
from pipelines.reasons import ReasonCode
from service.adapters.http.deps import DB, Ctx, SessionId, SessionToken
from service.adapters.http.errors import error_body
from service.adapters.http.upload import arrived_at, read_limited
from service.certification import attempts, sessions, uploads
from service.certification.audit import audit
from service.certification.catalog import ServiceCode
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    CertSession,
    UploadKind,
)
from service.features.proxy import operators
from service.features.proxy.models import subject_of
from service.features.wechat.errors import WeChatError, WeChatMediaExpiredError
from service.features.wechat.h5 import (
    cardfirst,
    devlogin,
    family,
    identity,
    links,
    my_data,
    recovery,
    result_view,
    vendor,
    voice,
)
from service.features.wechat.h5 import requests as assist_requests
from service.features.wechat.h5.cardcheck import card_checker
from service.features.wechat.h5.cardfirst import problem_response as _problem_response
from service.features.wechat.h5.elder import is_elder
from service.features.wechat.h5.login import login
from service.features.wechat.h5.pages import HERE, message, render, static_digest
from service.features.wechat.h5.targets import safe_target
from service.features.wechat.models import WeChatSessionLink, WeChatUser
from service.features.wechat.oauth import OAUTH_CODE_USED, OAuthStateError
from service.infra.clock import local_today
from service.infra.security import ID_INPUT_MAX, normalise_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/h5", include_in_schema=False)
RequestId = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=64)]


def _openid(ctx: Ctx, request: Request) -> str:
    """For the JSON API of the pages: a 401 their script shows; the pages themselves go through `login`."""
    openid = identity.openid_from(ctx, request)
    if openid is None:
        raise ServiceError("UNAUTHORIZED", "open the page from the WeChat menu")
    return openid


@router.get("/")
def entry(ctx: Ctx, request: Request) -> Response:
    """From the account's menu: known browser → start page; otherwise WeChat OAuth (snsapi_base) first."""
    if identity.openid_from(ctx, request) is None:
        return login(ctx, request)
    return render(request, "start.html", proxy_enabled=_proxy_enabled(request), phone=ctx.settings.bureau_phone)


@router.get("/oauth/callback")
def oauth_callback(ctx: Ctx, db: DB, request: Request, code: str = "", state: str = "") -> Response:
    channel = getattr(request.app.state, "wechat", None)
    if channel is None:
        return message(request, "请在微信中打开", "微信渠道未开通。", status=404)
    nonce = request.cookies.get(identity.NONCE_COOKIE)
    try:
        # Checked again here: a target that passed the MAC is still only ever one of our own pages.
        target = safe_target(channel.oauth.target_of(state, nonce))
        openid = channel.oauth.finish(code, state, nonce)
    except OAuthStateError:
        if identity.openid_from(ctx, request) is not None:
            # Some WeChat clients load the callback twice: the first load logged this browser in (and took the
            # nonce away). Nothing is learnt or granted here; the person goes on from the start page.
            return RedirectResponse("/h5/", status_code=303)
        return message(request, "链接已失效", "请关闭本页面,从公众号菜单“资格认证”重新进入。", status=403)
    except WeChatError as exc:
        if exc.errcode == OAUTH_CODE_USED:
            # The callback loaded twice at once: the other load exchanged the code and logs this browser in.
            # Its page, not an error (an unlogged browser is sent through the login again from there).
            return RedirectResponse(target, status_code=303)
        log.warning("h5 oauth: %s", exc)
        return message(request, "暂时无法登录", "微信授权失败,请稍后从公众号菜单重新进入。", status=502)
    identity.remember_user(db, openid)
    db.commit()
    resp = RedirectResponse(target, status_code=303)
    resp.delete_cookie(identity.NONCE_COOKIE, path="/h5")
    resp.set_cookie(
        identity.COOKIE,
        identity.mint(ctx, openid),
        max_age=identity.TTL_S,
        httponly=True,
        samesite="lax",
        secure=identity.secure_cookies(ctx, request),
        path="/",
    )
    return resp


def _proxy_enabled(_request: Request) -> bool:
    # The proxy API (service.features.proxy, mounted by create_app) is what the family pages call.
    return importlib.util.find_spec("service.features.proxy.routes") is not None


@router.get("/certify")
def certify_page(ctx: Ctx, request: Request, mode: str = "self") -> Response:
    if identity.openid_from(ctx, request) is None:
        return login(ctx, request)
    return render(
        request,
        "certify.html",
        mode=mode,
        prompts=PROMPTS_ZH,
        retention_days=ctx.settings.storage.retention_days,
        phone=ctx.settings.bureau_phone,
        jssdk=True,
    )


@router.get("/family")
def family_page(ctx: Ctx, request: Request) -> Response:
    if identity.openid_from(ctx, request) is None:
        return login(ctx, request)
    # The bureau's phone: the next step, with the assist request, when an elder has no tries left today (h5-family.js).
    return render(request, "family.html", proxy_enabled=_proxy_enabled(request), phone=ctx.settings.bureau_phone)


class SelfSession(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    # As typed (full-width, in groups, a 15-digit old number): normalised before it is looked up.
    id_number: str = Field(min_length=15, max_length=ID_INPUT_MAX)
    # Strict: "yes", "false", 1 are refused (422), never read as consent.
    consent: StrictBool
    template_consent: StrictBool = False


@router.post("/api/sessions")
def open_self_session(ctx: Ctx, db: DB, request: Request, body: SelfSession) -> dict[str, Any]:
    openid = _openid(ctx, request)
    if not body.consent:
        raise ServiceError("CONSENT_REQUIRED", "consent is required")
    b = sessions.find_beneficiary(db, ctx, None, body.id_number)
    if not same_name(b.name, body.name):
        # The same answer as an unknown number: the page must not confirm whose number it is.
        raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "name and number do not match")
    new = _start_for_typed(db, ctx, b, openid, body.template_consent)
    user = db.query(WeChatUser).filter_by(openid=openid).one_or_none()
    if user is None:
        db.add(WeChatUser(openid=openid, beneficiary_id=b.id))
    else:
        user.beneficiary_id = b.id  # their own reminders come here from now on
    db.commit()
    # The number as the roster holds it: typed in groups or full-width, its date is read from the normalised form.
    elder = is_elder(b.birth_date, normalise_id(body.id_number), local_today(ctx.settings))
    return {**recovery.session_answer(db, ctx, new), "elder_mode": elder}


def _start_for_typed(db: DB, ctx: Ctx, b: Beneficiary, openid: str, template_consent: bool) -> sessions.NewSession:
    """A self session for a typed name and number. A person recorded as deceased reads as an unknown one: anyone
    who knows a name and number may type them, and the roster's record of a death is not theirs to learn (the
    assistance form answers the same, docs/security.md Part F); staff read the reason in the audit."""
    try:
        return recovery.start_self_session(db, ctx, b, openid, template_consent)
    except ServiceError as exc:
        if exc.code != ReasonCode.BENEFICIARY_DECEASED:
            raise
        audit(db, attempts.wechat_requester(ctx, openid), "h5.session.refused", b.external_id, {"reason": "deceased"})
        db.commit()
        raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "name and number do not match") from None


@router.post("/api/operator")
def operator_login(ctx: Ctx, db: DB, request: Request) -> dict[str, Any]:
    """The family-member (proxy) account of this openid: the server speaks for the WeChat channel here, so the
    browser never holds the channel's API key."""
    openid = _openid(ctx, request)
    out = operators.login(db, ctx, "wechat", openid, operators.H5_CLIENT)
    db.commit()
    return {"operator_id": out.operator.id, "token": out.token}


@router.post("/api/sessions/{session_id}/link")
def link_session(ctx: Ctx, db: DB, request: Request, token: SessionToken, session_id: SessionId) -> dict[str, Any]:
    """A session the family page opened through the proxy API: its result page and message go to this openid
    (`links.link_family_session`: any other session answers 404)."""
    links.link_family_session(db, ctx, session_id, token, _openid(ctx, request))
    return {"session_id": session_id, "linked": True}


class _CardRefused(Exception):
    """The card pre-check found problems a new photo fixes: answered as the 422 of `problem_response`."""

    def __init__(self, problems: list[ReasonCode]) -> None:
        super().__init__(", ".join(p.value for p in problems))
        self.problems = problems


def _store_card(
    ctx: Ctx, db: DB, request: Request, session_id: str, token: str | None, data: bytes, ctype: str, rid: str
) -> Response:
    def check_card(s: CertSession, photo: bytes) -> None:
        if not ctx.settings.h5.card_check:
            return
        # Whose number the card must carry: the beneficiary's, or a relative's verification: their claim.
        holder = subject_of(db, s)
        if holder is None:
            return
        id_hash = holder.id_hash
        db.rollback()  # no transaction held open during the OCR (seconds)
        checker = card_checker(request, ctx.settings.certification.model_pack, ctx.settings.h5.card_reads)
        problems = checker.problems(photo, id_hash, ctx.keyring, local_today(ctx.settings), cached=True)
        if problems:
            raise _CardRefused(problems)

    try:
        # Stamped with the request's arrival (it may queue the session: `queued_at`, docs/security.md Part AU).
        began = arrived_at(request)
        view = uploads.store_upload(
            db, ctx, session_id, token, UploadKind.ID_CARD, lambda: data, ctype, rid, None, check_card, began
        )
    except _CardRefused as refused:
        return _problem_response(refused.problems)
    return JSONResponse(view)


@router.post("/api/sessions/{session_id}/card")
def upload_card(
    ctx: Ctx,
    db: DB,
    request: Request,
    token: SessionToken,
    session_id: SessionId,
    rid: RequestId,
    file: Annotated[UploadFile, File()],
) -> Response:
    data = read_limited(file, ctx.settings.uploads.max_image_bytes)
    return _store_card(ctx, db, request, session_id, token, data, file.content_type or "", rid)


class MediaRef(BaseModel):
    media_id: str = Field(min_length=1, max_length=128)


@router.post("/api/sessions/{session_id}/card-media")
def upload_card_media(
    ctx: Ctx, db: DB, request: Request, token: SessionToken, session_id: SessionId, rid: RequestId, body: MediaRef
) -> Response:
    """The photo taken with JS-SDK chooseImage/uploadImage: our server fetches it from WeChat (media/get)."""
    channel = getattr(request.app.state, "wechat", None)
    if channel is None:
        raise ServiceError("WECHAT_DISABLED", "the WeChat channel is not configured")
    sessions.check_token(sessions.get_session(db, session_id), token, ctx.settings.certification.session_ttl_s)
    try:
        data, ctype = channel.api.download_media(body.media_id)
    except WeChatMediaExpiredError:
        expired = error_body(
            "WECHAT_MEDIA_EXPIRED", "照片已过期,请重新拍摄身份证", "WeChat no longer holds this media id (kept 3 days)"
        )
        return JSONResponse(expired, status_code=410)
    except WeChatError as exc:
        log.warning("h5 media/get: %s", exc)
        down = error_body("WECHAT_UNAVAILABLE", "微信服务暂时不可用,请稍后重试", "WeChat media/get failed; retry")
        return JSONResponse(down, status_code=503)
    return _store_card(ctx, db, request, session_id, token, data, ctype, rid)


@router.get("/result/{session_id}")
def result_page(ctx: Ctx, db: DB, request: Request, session_id: str) -> Response:
    openid = identity.openid_from(ctx, request)
    if openid is None:
        return login(ctx, request)
    # No stored id holds a NUL (PostgreSQL cannot even compare one: a 500): such a link is as unknown.
    link = db.get(WeChatSessionLink, session_id) if "\x00" not in session_id else None
    s = db.get(CertSession, session_id) if link is not None else None
    if link is None or s is None or link.openid != openid:
        return message(request, "未找到认证记录", "请从公众号菜单重新进入。", status=404)
    return render(request, "result.html", **result_view.result_context(db, ctx, openid, s))


# The pages' own files (static/): the script in parts, h5-page.js first and h5.js last (templates/*.html).
STATIC_FILES = (
    "h5.css",
    "guidance.js",
    "h5-page.js",
    "h5-family.js",
    "h5-light.js",
    "h5-capture.js",
    "h5-upload.js",
    "h5.js",
)


@router.get("/static/{name}")
def static(name: str, v: str | None = None) -> Response:
    """Kept for good only under this process's own digest: during a rolling restart a process of the other release
    may answer a page's `?v=`, and its file must not be cached under that address. Another `v`, or none: the file
    all the same (that page still gets a script), never kept."""
    if name not in STATIC_FILES:
        return Response(status_code=404)
    media = "text/css" if name.endswith(".css") else "text/javascript"
    headers = vendor.IMMUTABLE if v == static_digest(name) else {"Cache-Control": "no-store"}
    return FileResponse(HERE / "static" / name, media_type=media, headers=headers)


router.include_router(recovery.router)
router.include_router(family.router)
router.include_router(assist_requests.router)
router.include_router(devlogin.router)
router.include_router(cardfirst.router)
router.include_router(voice.router)
router.include_router(vendor.router)
router.include_router(my_data.router)
