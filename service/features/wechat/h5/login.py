"""Sending a browser without a valid cookie through WeChat OAuth and back to the page it asked for.

Every H5 page does this (the menu's start page, and the links in result and reminder messages, which are mostly
opened after the 2-hour cookie is gone); the JSON API under /h5/api answers 401 instead, for the page's script.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from service.certification.context import ServiceContext
from service.features.wechat.h5 import devlogin, identity
from service.features.wechat.h5.pages import message
from service.features.wechat.h5.targets import safe_target

NONCE_TTL_S = 600


def requested_page(request: Request) -> str:
    """This request's own path and query, if it is one of our pages; else the start page."""
    query = request.url.query
    return safe_target(request.url.path + ("?" + query if query else ""))


def login(ctx: ServiceContext, request: Request) -> Response:
    """OAuth (snsapi_base) with this page as the target; outside WeChat's configuration, a page that says so."""
    channel = getattr(request.app.state, "wechat", None)
    if channel is None and devlogin.enabled(ctx):  # development without WeChat: a made-up user (README)
        return RedirectResponse("/h5/dev-login?next=" + quote(requested_page(request), safe=""), status_code=302)
    if channel is None:
        return message(request, "请在微信中打开", "请从公众号菜单“资格认证”进入本页面。", status=403)
    callback = ctx.settings.public_base_url.rstrip("/") + "/h5/oauth/callback"
    start = channel.oauth.start(callback, requested_page(request))
    resp = RedirectResponse(start.url, status_code=302)
    secure = identity.secure_cookies(ctx, request)  # the nonce guards the login: as private as the identity cookie
    resp.set_cookie(
        identity.NONCE_COOKIE,
        start.nonce,
        max_age=NONCE_TTL_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/h5",
    )
    return resp
