"""Pure-ASGI middleware: request ids, request latency by route template, security headers.

Pure ASGI (not BaseHTTPMiddleware) so that streaming uploads pass through untouched and the context
variables set here are seen by the route, its thread-pool work and every log record it writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from service.infra.observability import metrics
from service.infra.observability.context import asked_method, new_request_id, request_id_var, request_scope_var

Scope = dict[str, Any]
ASGIApp = Any

# Endpoints whose latency would only drown the others (scraped or probed every few seconds).
UNTIMED = frozenset({"/metrics", "/healthz", "/readyz"})
# The methods a metric label names; any other is "other". uvicorn's h11 parser takes any token as a method: as
# sent, it put whatever a client typed there (an ID number included) into /metrics, a new time series each.
LABELLED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def route_template(scope: Scope) -> str:
    """The matched route's path template (/api/v1/sessions/{session_id}), never the raw path: ids in metric
    labels would make one time series per session."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "<unmatched>"


class RequestContextMiddleware:
    """X-Request-ID in (if sane) and out, in a context variable for the logs; latency histogram. An exception
    nothing inside handled is given to ``on_error`` (the API's one error mapping: it logs and builds the 500)."""

    def __init__(self, app: ASGIApp, on_error: Callable[[Exception], ASGIApp] | None = None) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id(_header(scope, b"x-request-id"))
        t_rid = request_id_var.set(rid)
        t_scope = request_scope_var.set(scope)
        status = 500
        started = False  # once the answer has started, no other can be sent
        t0 = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if self.on_error is None:
                raise
            # Answered here, not by Starlette's own 500 handler: that runs outside every middleware, after the
            # `finally` below reset the ids, so its log line had none and its answer no X-Request-ID.
            answer = self.on_error(exc)  # logs it, with the ids
            if not started:
                await answer(scope, receive, send_with_id)
        finally:
            if scope.get("path") not in UNTIMED:
                asked = asked_method(scope)  # a HEAD answered as its GET is still counted as a HEAD
                method = asked if asked in LABELLED_METHODS else "other"
                metrics.HTTP_LATENCY.labels(method, route_template(scope), f"{status // 100}xx").observe(
                    time.perf_counter() - t0
                )
            request_id_var.reset(t_rid)
            request_scope_var.reset(t_scope)
