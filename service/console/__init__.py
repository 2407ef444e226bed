"""Staff console: server-rendered pages (Chinese UI) mounted under /console in the service's FastAPI app.

`install_console(app)` adds the routes, the login redirect and the security headers. Other code uses
`service.console.auth.create_user` to create the first admin (`pension-cert console create-user`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from service.console.config import ConsoleConfig
from service.console.web import HERE, PREFIX, Forbidden, LoginRequired, redirect, render

__all__ = ["ConsoleConfig", "install_console"]

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def install_console(app: FastAPI, config: ConsoleConfig | None = None) -> None:
    from service.console import routes_alt, routes_audit, routes_auth, routes_dashboard, routes_review, routes_roster

    app.state.console_config = config or ConsoleConfig()
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

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if request.url.path.startswith(PREFIX):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
