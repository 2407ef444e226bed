"""What every console page shares: templates, the logged-in staff member, CSRF checks, role checks, headers.

Pages are server-rendered (Jinja2, autoescaped). Personal data never goes into a URL: searches are POSTs,
pages address records by internal ids, so access logs and browser history hold nothing personal.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from sqlalchemy.orm import Session
from starlette.routing import Match

from service.certification import regions
from service.certification.context import ServiceContext
from service.features.console import audit_chain, labels, scope
from service.features.console.auth import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    PASSWORD_HINT,
    ROLE_ZH,
    Role,
    Staff,
    csrf_ok,
    read_session,
)
from service.features.console.config import DEFAULT_TIME_ZONE, ConsoleConfig
from service.features.console.throttle import LoginThrottle

COOKIE = "pc_console"
LOGIN_CSRF_COOKIE = "pc_login_csrf"
PREFIX = "/console"
HERE = Path(__file__).parent

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
)
templates.globals.update(
    labels.GLOBALS,
    ROLE_ZH=ROLE_ZH,
    Role=Role,
    region=regions.label,
    PASSWORD_HINT=PASSWORD_HINT,
    MIN_PASSWORD_CHARS=MIN_PASSWORD_CHARS,
    MAX_PASSWORD_CHARS=MAX_PASSWORD_CHARS,
)


@dataclass(frozen=True)
class KeptDecision:
    """A case decision sent after the login ran out (routes_review.decide): the login form carries it (its body,
    never a URL), and the login reopens the case with it filled in (routes_review.reopen_decision)."""

    decision: str
    reason: str


class LoginRequired(Exception):
    """No valid session: the handler redirects to the login page (`kept`: a decision the login carries back;
    `ran_out_csrf`: the form token of the login the cookie named, when it ran out just now)."""

    def __init__(self, kept: KeptDecision | None = None, ran_out_csrf: str = "") -> None:
        super().__init__()
        self.kept = kept
        self.ran_out_csrf = ran_out_csrf


class PasswordChangeRequired(Exception):
    """Logged in with a password an admin set: the handler redirects to the password page."""


class Forbidden(Exception):
    """Logged in, but the role does not allow this, or the CSRF token is missing or wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StaleForm(Forbidden):
    """The form's CSRF token is not the session's: most often the page was opened before a new login (in another
    tab, or after an idle timeout), so the page has expired; the handler links back to the form's page."""


# A page path to return to after a login or an expired form: a console page, addressed by ids and plain words only
# (never "//host", a backslash, "..", a scheme or a query), so that `next` can never lead off the console.
_PAGE_PATH = re.compile(r"(/[A-Za-z0-9_-]+)+", re.ASCII)


def safe_next(path: str) -> str:
    """`path` (with or without the console's prefix) as a console page path without the prefix, "" if it is not
    one: the only place a return path is read from a request."""
    if path.startswith(PREFIX + "/"):
        path = path[len(PREFIX) :]
    return path if len(path) <= 200 and _PAGE_PATH.fullmatch(path) and ".." not in path else ""


# Forms that are not on the nearest page above their path (the alerts page confirms an admin's grant of an account).
_FORM_ON_PAGE = {PREFIX + "/users/{user_id}/confirm": "/alerts"}


def _is_page(request: Request, path: str) -> bool:
    """Whether the console answers a GET of `path` (without the prefix) with one of its pages."""
    scope = {"type": "http", "path": PREFIX + path, "method": "GET", "root_path": "", "headers": []}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


def form_page(request: Request) -> str:
    """The page whose form sent `request`: for a POST, the nearest console page above its path
    (/cases/ID/decide → /cases/ID, /beneficiaries/B/certifications/C/revoke → /beneficiaries/B, /alerts/A/resolve
    → /alerts), the queue when none is (下一件); a GET's own path. Never the Referer: the console sends none
    (Referrer-Policy: no-referrer), and the path is the request's own, so this cannot lead off the console."""
    path = safe_next(request.url.path)
    if request.method == "GET":
        return path or "/queue"
    on_page = _FORM_ON_PAGE.get(getattr(request.scope.get("route"), "path", ""))
    if on_page is not None:
        return on_page
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        if path and _is_page(request, path):
            return path
    return "/queue"


def ctx_of(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def config_of(request: Request) -> ConsoleConfig:
    cfg: ConsoleConfig = request.app.state.console_config
    return cfg


def throttle_of(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


@contextmanager
def unit(request: Request) -> Iterator[Session]:
    """One committed unit of work (the response is built after the commit). Attempts to reach a record outside
    the staff member's region scope noted during it are audited afterwards, committed or not (scope.py)."""
    ctx = ctx_of(request)
    used: Session | None = None
    try:
        with ctx.db() as db:
            used = db
            yield db
    finally:
        if used is not None:
            scope.record_denials(ctx, used)


# What a staff member whose password an admin set may still reach: the page that changes it, and the way out.
PASSWORD_CHANGE_PATHS = (PREFIX + "/password", PREFIX + "/logout")


def current_staff(request: Request) -> Staff:
    with unit(request) as db:
        read = read_session(db, config_of(request), request.cookies.get(COOKIE))
    staff = read.staff
    if staff is None:
        raise LoginRequired(ran_out_csrf=read.ran_out_csrf)
    if staff.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise PasswordChangeRequired()
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


# Audit action of a page or form refused to a staff member's role (the audit log, the alerts, user management).
ROLE_DENIED = "access.denied"


def require(role: Role) -> Callable[[Request, Staff], Staff]:
    def dep(request: Request, staff: CurrentStaff) -> Staff:
        if not staff.has(role):
            # A refused attempt is audited like a view (who, which page: console paths carry record ids only), in a
            # unit of its own: a reviewer trying the audit log or the alerts must show up in the log.
            with unit(request) as db:
                audit_chain.record(db, staff.actor, ROLE_DENIED, request.url.path, {"need": role.value})
            raise Forbidden(f"需要{ROLE_ZH[role]}权限")
        return staff

    return dep


Supervisor = Annotated[Staff, Depends(require(Role.SUPERVISOR))]
Admin = Annotated[Staff, Depends(require(Role.ADMIN))]


# The refusal of an expired form, in words (no "CSRF"): the page says how to get back to a form that works.
STALE_FORM_ZH = (
    "页面已过期（可能已在其他窗口重新登录或登录已超时），刚才提交的内容未保存。请返回原页面，重新打开后再提交"
)


def check_csrf(staff: Staff, token: str | None) -> None:
    if not csrf_ok(staff.csrf, token):
        raise StaleForm(STALE_FORM_ZH)


def same_origin(request: Request) -> bool:
    """Whether the browser says `request` was sent from one of the console's own pages: `Sec-Fetch-Site:
    same-origin` (every current browser sends it), else, without it, an `Origin` of this very host. Not the
    Referer, which the console's pages never send (Referrer-Policy: no-referrer, which also makes a browser send
    `Origin: null` on their form posts: that is no match)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin, host = request.headers.get("origin", ""), request.headers.get("host", "")
    return bool(host) and origin in (f"https://{host}", f"http://{host}")


def kept_decision(
    request: Request, ran_out: LoginRequired, decision: str, reason: str, csrf: str
) -> KeptDecision | None:
    """A case decision sent after the login ran out, kept for the login to fill back in (KeptDecision) only when it
    is provably this browser's own: sent from the console's pages (`same_origin`) with the form token of the login
    its cookie still names (`ran_out.ran_out_csrf`). A form posted from another site arrives without the
    SameSite=Strict cookie, like a login run out: its decision and reason were filled in after the reviewer's login
    as "您的决定" (docs/security.md). Anything else keeps nothing; the login page says the form was not saved."""
    if same_origin(request) and ran_out.ran_out_csrf and csrf_ok(ran_out.ran_out_csrf, csrf):
        return KeptDecision(decision, reason[:1000])
    return None


def secure_cookies(request: Request) -> bool:
    cfg = config_of(request)
    if cfg.cookie_secure is not None:
        return cfg.cookie_secure
    return ctx_of(request).settings.cookies_secure(request.url.scheme)


def render(request: Request, name: str, staff: Staff | None, status: int = 200, **values: Any) -> HTMLResponse:
    html = templates.get_template(name).render(request=request, staff=staff, prefix=PREFIX, **values)
    return HTMLResponse(html, status_code=status)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(PREFIX + path, status_code=303)


def no_store(response: Response) -> Response:
    """Pages and images with personal data must not stay in shared browser caches."""
    response.headers["Cache-Control"] = "no-store"
    return response


def fmt_dt(value: dt.datetime | dt.date | None, zone: str = DEFAULT_TIME_ZONE, seconds: bool = False) -> str:
    """Times are stored as naive UTC; pages show them in the bureau's zone with its abbreviation
    ("2026-12-04 20:15 CST"), so a time is never read in the wrong zone. Dates are calendar dates, shown as is."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
    return value.isoformat()


# A whole value that is an ISO time as the service writes one into audit details (isoformat(): naive UTC, or
# with Z / an offset). A date alone is a calendar date; text that merely mentions a time was written by someone.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?", re.ASCII)


def local_times(value: object, zone: str) -> object:
    """Audit details as shown: a time in them (stored as the service writes it, naive UTC ISO text that code may
    read back, so never converted in the database) in the bureau's zone with the zone named, to the second; dates
    and everything else as stored."""
    if isinstance(value, dict):
        return {k: local_times(v, zone) for k, v in value.items()}
    if isinstance(value, list):
        return [local_times(v, zone) for v in value]
    if isinstance(value, str) and _ISO_TIME.fullmatch(value):
        try:
            return fmt_dt(dt.datetime.fromisoformat(value), zone, seconds=True)
        except ValueError:  # shaped like a time, not one (month 13): shown as stored
            return value
    return value


def _zone(context: Context) -> str:
    request = context.get("request")
    if not isinstance(request, Request):
        return DEFAULT_TIME_ZONE
    return config_of(request).time_zone or ctx_of(request).settings.time_zone  # one zone for the service


@pass_context
def _dt_filter(context: Context, value: dt.datetime | dt.date | None) -> str:
    return fmt_dt(value, _zone(context))


@pass_context
def _local_times_filter(context: Context, value: object) -> object:
    return local_times(value, _zone(context))


def json_zh(value: object) -> str:
    """Audit details as readable JSON: Chinese as Chinese, not \\u escapes (autoescaping still applies)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


templates.filters["dt"] = _dt_filter
templates.filters["json_zh"] = json_zh
templates.filters["local_times"] = _local_times_filter
