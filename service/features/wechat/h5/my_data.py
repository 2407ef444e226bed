"""The "我的信息" page (PIPL arts. 15, 44–47): a person's own data, the withdrawal of the consent to keep their face
template (service/certification/template_withdrawal.py) and the end of a relative's binding
(service/features/proxy/elder_bindings.py). Whose data it shows: my_data_view.py.

The forms post to the same site with the identity cookie (SameSite=Lax: another site's form does not carry it) and a
token of this account's (`form_token`, the keyring's MAC of the openid): a form posted from elsewhere, or with
another account's token, is refused (403). A person or binding that is not the account's own reads as unknown. An
account known to be a relative's (`elder_bindings.relation_of`) sees the elder's data read-only: its forms are
refused (403, 请本人或到柜台办理)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from service.adapters.http.deps import DB, Ctx
from service.certification import attempts
from service.certification.audit import audit
from service.certification.catalog import message_zh
from service.certification.certificates import COPY_ACTION, VOID_CODES, certificate_png, latest_copy
from service.certification.context import ServiceContext
from service.certification.errors import NotFoundError, ServiceError
from service.certification.models import Beneficiary
from service.certification.template_withdrawal import WITHDRAWN_ACTION, withdraw_template
from service.features.proxy import operators
from service.features.proxy.elder_bindings import end_by_elder, relation_of
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.own_template import WITHDRAWN_ACTION as OPERATOR_WITHDRAWN
from service.features.proxy.own_template import consent_pending, withdraw_operator_template
from service.features.wechat.h5 import identity
from service.features.wechat.h5.login import login
from service.features.wechat.h5.my_data_view import MyData, certificate_served, my_data, own_person, own_persons
from service.features.wechat.h5.pages import message, render
from service.infra.clock import local_today

router = APIRouter(include_in_schema=False)
# What `?done=` may say: a code shown as its sentence, never the parameter itself.
DONE = {
    "template": "已撤回:您的人脸特征已删除。下次认证将与身份证照片比对;如需再次保存,认证时重新勾选同意即可。",
    "binding": "已解除该家人的代办绑定,对方不能再为您代办认证;对方如再次绑定,须经您本人同意。",
    "operator": "已撤回:您作为代办人保存的人脸特征已删除。",
}
READ_ONLY_ZH = "本微信是家人的账号,只能查看老人的信息。撤回人脸特征、解除家人代办,请本人或到柜台办理。"
_FORM = "h5-my-data:"  # what the form token MACs, before the openid
FormToken = Annotated[str, Form(alias="form", max_length=128)]


def form_token(ctx: ServiceContext, openid: str) -> str:
    return ctx.keyring.mac(_FORM + openid)


@router.get("/me")
def my_data_page(ctx: Ctx, db: DB, request: Request, done: str = "") -> Response:
    openid = identity.openid_from(ctx, request)
    if openid is None:
        return login(ctx, request)
    people = [_person(db, ctx, openid, b) for b in own_persons(db, openid)]
    op = operators.h5_account(db, ctx, openid)  # the account as a relative's (the family pages)
    relative_template = op is not None and (op.template_enrolled or consent_pending(db, op))
    who = attempts.wechat_requester(ctx, openid)
    for person in people:  # the page is an access to their data
        audit(db, who, "h5.my_data.view", person.external_id)
    db.commit()
    return render(
        request,
        "my_data.html",
        people=people,
        relative_template=relative_template,
        done=DONE.get(done),
        form=form_token(ctx, openid),
        retention_days=ctx.settings.storage.retention_days,
        hold_days=ctx.settings.storage.review_video_hold_days,  # a manual review's video (console/assist_hold.py)
        phone=ctx.settings.bureau_phone,
    )


def _person(db: Session, ctx: ServiceContext, openid: str, b: Beneficiary) -> MyData:
    relation = relation_of(db, ctx, "wechat", openid, b)
    return my_data(db, ctx, b, relation.relative, certificate_served(db, openid, relation))


@router.get("/me/{person_id}/certificate.png")
def certificate_png_page(ctx: Ctx, db: DB, request: Request, person_id: int) -> Response:
    """The person's latest valid certificate (`certificates.latest_copy`), by their own WeChat login: a case decided
    by staff review is accepted after the session's token has ended. Never to an account known as a relative's (the
    relative's copy goes through their binding, the proxy API), unless a household's (`certificate_served`). Audited."""
    openid = identity.openid_from(ctx, request)
    if openid is None:
        return login(ctx, request)
    b = own_person(db, openid, person_id)
    if b is None:
        return _unknown(request)
    if not certificate_served(db, openid, relation_of(db, ctx, "wechat", openid, b)):
        return message(
            request, "请本人查看", "本微信是家人的账号,不能下载老人的认证凭证。请老人本人用自己的微信查看。", status=403
        )
    try:
        cert, st = latest_copy(db, b, local_today(ctx.settings))
    except ServiceError as exc:
        why = message_zh(exc.code) if exc.code in VOID_CODES.values() else "您还没有通过的认证。"
        return message(request, "暂无有效的认证凭证", why, status=404 if isinstance(exc, NotFoundError) else 409)
    audit(db, attempts.wechat_requester(ctx, openid), COPY_ACTION, b.external_id, {"certification": cert.id})
    db.commit()
    png = certificate_png(b.name, cert, st, ctx.settings.public_base_url)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def _form_openid(ctx: Ctx, request: Request, token: str) -> str | Response:
    """The account posting a form of this page with its own token; else the page that answers it."""
    openid = identity.openid_from(ctx, request)
    if openid is None:
        return message(request, "请在微信中打开", "请从公众号菜单“资格认证”重新进入。", status=401)
    if not ctx.keyring.verify_mac(_FORM + openid, token):
        return message(request, "页面已失效", "请返回“我的信息”页面重新操作。", status=403)
    return openid


def _checked(ctx: Ctx, db: DB, request: Request, person_id: int, token: str) -> tuple[str, Beneficiary] | Response:
    """(openid, the person) for a form of this page; else the page that answers it."""
    openid = _form_openid(ctx, request, token)
    if isinstance(openid, Response):
        return openid
    b = own_person(db, openid, person_id)
    if b is None:
        return _unknown(request)
    if relation_of(db, ctx, "wechat", openid, b).relative:
        return message(request, "请本人或到柜台办理", READ_ONLY_ZH, status=403)
    return openid, b


def _unknown(request: Request) -> Response:
    return message(request, "未找到您的信息", "请从公众号菜单重新进入“我的信息”。", status=404)


@router.post("/me/{person_id}/template/withdraw")
def withdraw(ctx: Ctx, db: DB, request: Request, person_id: int, token: FormToken = "") -> Response:
    checked = _checked(ctx, db, request, person_id, token)
    if isinstance(checked, Response):
        return checked
    openid, b = checked
    done = withdraw_template(db, b)
    audit(db, attempts.wechat_requester(ctx, openid), WITHDRAWN_ACTION, b.external_id, done.detail("wechat"))
    db.commit()
    return RedirectResponse("/h5/me?done=template", status_code=303)


@router.post("/me/{person_id}/bindings/{binding_id}/end")
def end_binding(ctx: Ctx, db: DB, request: Request, person_id: int, binding_id: str, token: FormToken = "") -> Response:
    checked = _checked(ctx, db, request, person_id, token)
    if isinstance(checked, Response):
        return checked
    openid, b = checked
    if len(binding_id) > 36 or "\x00" in binding_id:  # no stored id is such (PostgreSQL cannot compare a NUL)
        return _unknown(request)
    try:
        # Any client's account of the openid as the poster (not `operators.h5_account`): the wider reading is the
        # stricter one here, a binding's own relative never ends its locked binding from the elder's page.
        end_by_elder(
            db, b, binding_id, attempts.wechat_requester(ctx, openid), operators.find(db, ctx, "wechat", openid)
        )
    except NotFoundError:
        return _unknown(request)
    except ProxyServiceError:  # the binding's own relative, locked for staff (relation_of refuses them first)
        return message(request, "请本人或到柜台办理", READ_ONLY_ZH, status=403)
    db.commit()
    return RedirectResponse("/h5/me?done=binding", status_code=303)


@router.post("/me/relative-template/withdraw")
def withdraw_relative_template(ctx: Ctx, db: DB, request: Request, token: FormToken = "") -> Response:
    """The account's own template as a relative's (kept at their real-name verification, with their consent): the
    pages' own account (`operators.h5_account`), never a channel key's for the same openid: a bank's app's openid is
    only what the app said, and its account's template is its app user's."""
    openid = _form_openid(ctx, request, token)
    if isinstance(openid, Response):
        return openid
    op = operators.h5_account(db, ctx, openid)
    if op is None:
        return _unknown(request)
    done = withdraw_operator_template(db, ctx, op)
    audit(db, attempts.wechat_requester(ctx, openid), OPERATOR_WITHDRAWN, op.id, done.detail("wechat"))
    db.commit()
    return RedirectResponse("/h5/me?done=operator", status_code=303)
