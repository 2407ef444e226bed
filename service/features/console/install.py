"""`install_console(app)`: the console's routes, its stylesheet, the login redirect, the 403 page and its host
names (hosts.py) on one FastAPI app (the HTTP adapter's create_app calls it, before the observability middleware,
which then wraps the host check's 404s too)."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, Response

from service.features.console import (
    routes_access,
    routes_alt,
    routes_audit,
    routes_auth,
    routes_dashboard,
    routes_review,
    routes_revoke,
    routes_roster,
)
from service.features.console.auth import Staff
from service.features.console.config import ConsoleConfig
from service.features.console.hosts import ConsoleHostMiddleware, weakness
from service.features.console.inputs import BadInput, check_inputs
from service.features.console.throttle import BackoffPolicy, LoginThrottle
from service.features.console.web import (
    HERE,
    PREFIX,
    Forbidden,
    LoginRequired,
    PasswordChangeRequired,
    StaleForm,
    current_staff,
    form_page,
    redirect,
    render,
)

log = logging.getLogger(__name__)


def _staff_or_none(request: Request) -> Staff | None:
    """The logged-in staff member for a page's navigation bar, None when there is none (or a password to change)."""
    try:
        return current_staff(request)
    except (LoginRequired, PasswordChangeRequired):
        return None


def install_console(app: FastAPI, config: ConsoleConfig | None = None) -> None:
    app.state.console_config = cfg = config or ConsoleConfig()
    if cfg.hosts:
        app.add_middleware(ConsoleHostMiddleware, hosts=cfg.hosts)
    weak = weakness(app.state.ctx.settings, cfg)
    if weak:
        log.warning("insecure setting: %s", weak)
    app.state.login_throttle = LoginThrottle(app.state.ctx, BackoffPolicy.of(cfg))
    for module in (
        routes_auth,
        routes_review,
        routes_roster,
        routes_alt,
        routes_dashboard,
        routes_audit,
        routes_revoke,
        routes_access,
    ):
        app.include_router(module.router, include_in_schema=False, dependencies=[Depends(check_inputs)])

    @app.get(PREFIX + "/static/console.css", include_in_schema=False)
    def console_css() -> Response:
        return FileResponse(HERE / "static" / "console.css", media_type="text/css")

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        # A form sent after the login idled out: the login page itself says it was not saved, and the login leads
        # back to the form's page (its path carries record ids only, never personal data); a case decision is
        # carried by the login form and filled back in there (`exc.kept`).
        if request.method == "POST":
            notice = routes_auth.EXPIRED_DECISION_ZH if exc.kept else routes_auth.EXPIRED_POST_ZH
            next_path = form_page(request)
            return routes_auth.login_form(request, 401, notice=notice, next_path=next_path, kept=exc.kept)
        # A page visited: the login leads back to it (a console page path only: web.safe_next, in form_page); the
        # queue is where a login leads anyway.
        page = form_page(request)
        return redirect("/login" if page == "/queue" else "/login?next=" + quote(page, safe="/"))

    @app.exception_handler(PasswordChangeRequired)
    async def password_change_required(_request: Request, _exc: PasswordChangeRequired) -> Response:
        return redirect("/password")

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, _exc: BadInput) -> Response:
        return render(request, "message.html", None, status=400, message="请求含有无效字符", back="/queue")

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, exc: Forbidden) -> Response:
        # An expired form (StaleForm) leads back to the page it was on, to open it afresh; the navigation bar is
        # the logged-in staff member's (a newer login's, the usual cause).
        back = form_page(request) if isinstance(exc, StaleForm) else "/queue"
        return render(request, "message.html", _staff_or_none(request), status=403, message=exc.message, back=back)

    # Security headers (this CSP, no framing, nosniff, no referrer) come from the app-wide middleware
    # (service/infra/observability/headers.py), by path prefix.
