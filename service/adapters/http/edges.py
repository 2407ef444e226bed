"""The app's edges that no route owns: a trailing slash and HEAD (docs/security.md, Part BS's "Left").

- A trailing slash is not redirected (the app's router: ``redirect_slashes = False``): Starlette's redirect was
  an absolute address built from the request's Host header, so a forged Host had the service answer a redirect to
  another site, which a shared cache could keep for everyone. An unknown path with or without its slash is the
  app's 404 (NOT_FOUND, in the error shape). The two entry roots people type, ``/h5`` and ``/console``, keep a
  redirect, to a path of this site only.
- HEAD is answered as GET without the body where a GET route exists (monitoring and link checkers send HEAD to
  the probes, the pages and the certificate check): the request goes on as a GET, so it does what the GET does,
  is rate-limited and audited as the GET is, and nothing more; elsewhere GET's absence keeps it a 405. Metrics,
  log lines and audit details still name it HEAD.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from service.features.console.web import PREFIX as CONSOLE
from service.infra.observability.context import ASKED_METHOD

# Typed without their slash: each redirects to its own path with one, never to an address with a host.
ENTRY_ROOTS = ("/h5", CONSOLE)


class HeadAsGetMiddleware:
    """A HEAD request goes on as a GET, its answer's body dropped (status and headers, Content-Length included,
    are the GET's). The inner layers get a copy of the request's scope: the server's own scope still says HEAD,
    which it reads to send no body (uvicorn). The copy keeps HEAD as the method asked (``asked_method``): the
    metrics, the log lines and the audit name a probe as the HEAD it is, never as a page view."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_no_body(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # a streamed answer's chunks: only its end is sent, empty
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", ASKED_METHOD: "HEAD"}, receive, send_no_body)


def install_edges(app: FastAPI) -> None:
    """Call last (the HEAD middleware wraps every other: a HEAD is counted and limited as its GET)."""
    app.router.redirect_slashes = False  # read at each request: the included routers' routes are the app's
    for root in ENTRY_ROOTS:
        app.add_api_route(root, _to_slash(root + "/"), methods=["GET"], include_in_schema=False)
    app.add_middleware(HeadAsGetMiddleware)


def _to_slash(target: str) -> Any:
    def redirect() -> RedirectResponse:
        return RedirectResponse(target, status_code=307)

    return redirect
