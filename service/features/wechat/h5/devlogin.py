"""Development mode for the H5 pages without WeChat (issue 21, the operator's first hour).

With PENSION_CERT_ENV=development and PENSION_CERT_H5_DEV_LOGIN=true, ``/h5/dev-login`` sets the H5 cookie for a
made-up openid (always ``dev-…``, never a real WeChat user's) and goes on to the page asked for, so the pages
can be tried in any browser. Anywhere else the page does not exist (404), and a production start refuses the
setting (Settings.production_weaknesses).
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from service.adapters.http.deps import DB, Ctx
from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity
from service.features.wechat.h5.targets import safe_target

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
PREFIX = "dev-"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


def enabled(ctx: ServiceContext) -> bool:
    return ctx.settings.env == "development" and ctx.settings.h5.dev_login


@router.get("/dev-login")
def dev_login(ctx: Ctx, db: DB, request: Request, user: str = "tester", next: str = "/h5/") -> Response:
    """`user`: a name for the made-up openid (several testers, several family roles); `next`: one of our pages."""
    if not enabled(ctx) or not _NAME.fullmatch(user):
        return Response(status_code=404)
    openid = PREFIX + user
    identity.remember_user(db, openid)
    db.commit()
    log.warning("h5 development login as %s (PENSION_CERT_H5_DEV_LOGIN)", openid)
    resp = RedirectResponse(safe_target(next), status_code=303)
    resp.set_cookie(
        identity.COOKIE,
        identity.mint(ctx, openid),
        max_age=identity.TTL_S,
        httponly=True,
        samesite="lax",
        secure=identity.secure_cookies(ctx, request),  # the one rule: Settings.cookies_secure
        path="/",
    )
    return resp
