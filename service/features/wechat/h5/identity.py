"""Who is using the H5 pages: the openid from WeChat OAuth, kept in a signed HttpOnly cookie.

The cookie is `openid|expiry|mac`; the MAC is the service keyring's, so only our server can mint it.
"""

from __future__ import annotations

import time

from fastapi import Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import utcnow
from service.features.wechat.models import WeChatUser

COOKIE = "pc_h5"
NONCE_COOKIE = "pc_h5_oauth"
TTL_S = 2 * 3600
VERIFIED = "h5_cookie_verified"  # the key in the request's state (scope["state"]): the cookie whose MAC is ours


def secure_cookies(ctx: ServiceContext, request: Request) -> bool:
    """Cookies only over TLS (the rule: Settings.cookies_secure)."""
    return ctx.settings.cookies_secure(request.url.scheme)


def mint(ctx: ServiceContext, openid: str, now: float | None = None) -> str:
    expiry = int((now or time.time()) + TTL_S)
    payload = f"{openid}|{expiry}"
    return f"{payload}|{ctx.keyring.mac('h5:' + payload)}"


def openid_from(ctx: ServiceContext, request: Request) -> str | None:
    """The cookie's openid, or None for anything else: absent, malformed, forged or expired, never a 500."""
    signed = _signed(ctx, request)
    if signed is None:
        return None
    openid, expiry = signed
    now = time.time()
    if not now <= expiry <= now + TTL_S + 300:  # we never mint one living longer (300 s: clock skew)
        return None
    return openid


def _signed(ctx: ServiceContext, request: Request) -> tuple[str, int] | None:
    """The cookie's openid and expiry when its MAC is ours; None for anything else.

    The result is kept in the request's state for this cookie and this keyring: the rate limit reads the login
    before any route (service/adapters/http/limits.py) and the route reads it again, one MAC check between them.
    The expiry is not kept as a verdict: `openid_from` compares it with the clock at each read."""
    raw = request.cookies.get(COOKIE)
    if not raw or raw.count("|") != 2:
        return None
    state = request.scope.setdefault("state", {})  # what request.state reads and writes (no exception when absent)
    kept = state.get(VERIFIED)
    if isinstance(kept, tuple) and kept[0] is ctx.keyring and kept[1] == raw:
        return kept[2], kept[3]
    openid, expiry, mac = raw.split("|")
    # ASCII digits of a plausible length before int(): "²" passes isdigit() and int() refuses it, and int()
    # of a string over 4300 digits raises (CPython's conversion limit).
    if not (expiry.isascii() and expiry.isdigit() and len(expiry) <= 12):
        return None
    if not ctx.keyring.verify_mac(f"h5:{openid}|{expiry}", mac):
        return None
    state[VERIFIED] = (ctx.keyring, raw, openid, int(expiry))
    return openid, int(expiry)


def require_openid(ctx: ServiceContext, request: Request) -> str:
    """For the JSON API of the pages: a 401 their script shows; the pages themselves go through `login`."""
    openid = openid_from(ctx, request)
    if openid is None:
        raise ServiceError("UNAUTHORIZED", "open the page from the WeChat menu")
    return openid


def remember_user(db: Session, openid: str) -> None:
    """Record that this WeChat account signed in to the pages (created on first sight, else its last visit).

    Two first sign-ins of one account at once (the callback loaded twice, two tabs) both find no row: the second
    insert then fails on the key (PostgreSQL waits for the first to commit), in a savepoint of its own, and the
    row the first one made is updated instead (it was a 500)."""
    user = db.query(WeChatUser).filter_by(openid=openid).one_or_none()
    if user is None:
        try:
            with db.begin_nested():
                db.add(WeChatUser(openid=openid))
            return
        except IntegrityError:
            user = db.query(WeChatUser).filter_by(openid=openid).one()
    user.last_seen_at = utcnow()
