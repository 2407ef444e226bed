"""Staff console: server-rendered pages (Chinese UI) mounted under /console in the service's FastAPI app.

`install_console(app)` adds the routes, the login redirect and the security headers. Other code uses
`service.features.console.auth.create_user` to create the first admin (`pension-cert console create-user`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from service.features.console.config import ConsoleConfig
from service.features.console.web import HERE, PREFIX, Forbidden, LoginRequired, redirect, render
from service.infra.observability.headers import CONSOLE_CSP

__all__ = ["ConsoleConfig", "install_console"]

CSP = CONSOLE_CSP


def install_console(app: FastAPI, config: ConsoleConfig | None = None) -> None:
    from service.features.console import (
        routes_alt,
        routes_audit,
        routes_auth,
        routes_dashboard,
        routes_review,
        routes_roster,
    )
    from service.features.console.throttle import BackoffPolicy, LoginThrottle

    app.state.console_config = cfg = config or ConsoleConfig()
    app.state.login_throttle = LoginThrottle(app.state.ctx, BackoffPolicy.of(cfg))
    for module in (routes_auth, routes_review, routes_roster, routes_alt, routes_dashboard, routes_audit):
        app.include_router(module.router, include_in_schema=False)

    @app.get(PREFIX + "/static/console.css", include_in_schema=False)
    def console_css() -> Response:
        return FileResponse(HERE / "static" / "console.css", media_type="text/css")

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, _exc: LoginRequired) -> Response:
        return redirect("/login")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "message.html", None, status=403, message=exc.message, back="/queue")

    # Security headers (this CSP, no framing, nosniff, no referrer) come from the app-wide middleware
    # (service/infra/observability/headers.py), by path prefix.
