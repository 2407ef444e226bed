"""The console on host names of its own (``PENSION_CERT_CONSOLE_HOSTS``), apart from the citizens' H5 pages.

Browsers isolate by origin: a script injected into an H5 page (or a compromised third-party script there) runs
in the H5 pages' origin. Served on the same origin, it could fetch /console pages with a logged-in reviewer's
cookies (SameSite does not stop same-origin requests) and read faces and ID numbers. With console hosts set:

- /console/... on any other host answers 404, exactly like an unknown path;
- on a console host only /console/... and the health and readiness probes answer; everything else (the H5
  pages, the citizens' and channels' API, the WeChat callback, /docs, /metrics) is a 404 too.

The host is the request's ``Host`` header (lower-cased, port and trailing dot dropped). ``X-Forwarded-Host`` is
never read: no setting says which proxy may set it, so the reverse proxy passes ``Host`` through
(docs/operations.md, "Two host names"). Empty ``hosts``: every host serves everything, as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from service.features.console.config import ConsoleConfig, host_key
from service.features.console.web import PREFIX
from service.infra.config import Settings

# What a console host serves besides the console: the probes of the load balancer and the orchestrator.
PROBES = frozenset({"/healthz", "/readyz"})


def request_host(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's host as compared with the console hosts ('' without a Host header)."""
    raw = next((value for name, value in headers if name.lower() == b"host"), b"")
    host = raw.decode("latin-1").strip()
    if host.startswith("["):  # an IPv6 literal: [::1]:8000
        return host_key(host.partition("]")[0] + "]")
    return host_key(host.rsplit(":", 1)[0])


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def served(hosts: frozenset[str], host: str, path: str) -> bool:
    """Whether this host serves this path: the console on its hosts only, and nothing else there but probes."""
    if host in hosts:
        return is_console_path(path) or path in PROBES
    return not is_console_path(path)


def weakness(settings: Settings, config: ConsoleConfig) -> str | None:
    """A production start without console hosts: not refused (deployments made before the setting must still
    start), logged as a warning at start by install_console."""
    if settings.env != "production" or config.hosts:
        return None
    return (
        "PENSION_CERT_CONSOLE_HOSTS is empty: the staff console shares the origin of the citizens' H5 pages, so a "
        "script injected into an H5 page could read console pages with a reviewer's cookies (serve the console on "
        "a host name of its own: docs/operations.md, 'Two host names')"
    )


class ConsoleHostMiddleware:
    """Answers a path its host does not serve with the app's own 404 for an unknown path."""

    def __init__(self, app: Any, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or served(
            self.hosts, request_host(scope.get("headers", ())), str(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = await not_found(scope, receive)
        await response(scope, receive, send)


async def not_found(scope: dict[str, Any], receive: Any) -> Response:
    """What the app answers for a path no route matches: its HTTPException handler's 404 (the API's error shape,
    service/adapters/http/errors.py), or Starlette's plain one where the app has none."""
    app = scope.get("app")
    handlers: dict[Any, Any] = getattr(app, "exception_handlers", {})
    handler = handlers.get(HTTPException)
    if handler is None:
        return PlainTextResponse("Not Found", status_code=404)
    answer = handler(Request(scope, receive), HTTPException(status_code=404))
    response: Response = await answer if inspect.isawaitable(answer) else answer
    return response
