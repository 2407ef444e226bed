"""The request body's size limit, held before anything parses the body: Content-Length when announced, the bytes
as they arrive otherwise (chunked, or longer than announced). And the plain error answers the request guards
(this and the rate limits, service/adapters/http/limits.py) send themselves, before any route runs."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute, compile_path

from pipelines.reasons import ReasonCode
from service.adapters.http.errors import error_body
from service.certification import catalog
from service.infra.ratelimit import header

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD = 64 * 1024
# A JSON body: the most the rate limiter reads of a session-creation body to find its person, and the most any
# JSON body may have (BodyLimitMiddleware).
MAX_JSON_BODY = 64 * 1024

# A JSON body over MAX_JSON_BODY, or a session-creation body too large for the beneficiary rule to read (413,
# declared on every route).
BODY_TOO_LARGE = ("REQUEST_TOO_LARGE", "请求内容过大")
# The routes that take a file: each one's methods and path pattern.
FileRoutes = tuple[tuple[frozenset[str], re.Pattern[str]], ...]


def json_error(code: str, detail: str) -> bytes:
    return error_json(code, catalog.message_zh(code), detail)


def error_json(code: str, message: str, detail: str) -> bytes:
    return json.dumps(error_body(code, message, detail), ensure_ascii=False).encode()


async def send_json(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse a request body over its limit: one that announces more bytes (Content-Length) before it is read at
    all; one sent without a length (chunked) or longer than announced as soon as the bytes received pass it.

    The limit is the largest upload's for a route that takes a file, except for a body parsed whole (JSON, a JSON
    type or none; a urlencoded form); every other route's is MAX_JSON_BODY whatever the type. No parsed body of
    the service is more than a few KiB, and FastAPI parses it before the route's key check runs (60 MiB of
    `[{},{},…]` made 1.4 GB of objects, the event loop held for seconds, before the 401). The multipart parser
    spools a file part to disk whatever its size, also before any check: counting Content-Length only let anyone
    write gigabytes to the temporary directory with one chunked request."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes + MULTIPART_OVERHEAD
        self.file_routes: FileRoutes | None = None  # found on the first request: the app's routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = _Limit(
            self.max_bytes, ReasonCode.MEDIA_TOO_LARGE.value, catalog.message_zh(ReasonCode.MEDIA_TOO_LARGE)
        )
        limit = upload
        # The first content type, as FastAPI reads it. Any other route is held to the cap whatever the type: FastAPI
        # reads a body not labelled JSON whole too (`request.body()`) for a route with a JSON model, before its key
        # check (60 MiB of text/plain buffered before the 401).
        if _parsed_whole(header(scope, b"content-type") or "") or not self._takes_files(scope):
            limit = _Limit(MAX_JSON_BODY, *BODY_TOO_LARGE)
        length = dict(scope.get("headers") or []).get(b"content-length")  # bytes: isdigit() is ASCII only
        if length is not None and length.isdigit() and int(length) > limit.max_bytes:
            over = upload if int(length) > upload.max_bytes else limit  # more than any upload: as before
            await send_json(send, 413, over.refusal(f"{int(length)} bytes > {over.max_bytes}"))
            return
        await _CountedBody(self.app, limit)(scope, receive, send)

    def _takes_files(self, scope: dict[str, Any]) -> bool:
        """Whether the request is for a route with a file parameter (`File()`: the API's and the H5 pages' uploads,
        the roster, the console's upload forms), the only ones given the upload limit."""
        if self.file_routes is None:
            self.file_routes = file_routes(scope["app"].routes)
        method, path = scope["method"], scope["path"]
        return any(method in methods and pattern.match(path) for methods, pattern in self.file_routes)


def file_routes(routes: Sequence[BaseRoute]) -> FileRoutes:
    """The routes that take a file (methods, path pattern), as included in the app (prefixes applied): derived from
    the routes themselves, so a new upload route needs no list kept."""
    found = []
    for route in iter_route_contexts(routes):
        original = route.original_route
        if isinstance(original, APIRoute) and route.path and any(_files(original.dependant)):
            found.append((frozenset(route.methods or ()), compile_path(route.path)[0]))
    return tuple(found)


def _files(dependant: Dependant) -> Iterator[bool]:
    """Whether each body parameter of the route and of its dependencies is a file."""
    for field in dependant.body_params:
        yield isinstance(field.field_info, params.File)
    for sub in dependant.dependencies:
        yield from _files(sub)


def _parsed_whole(content_type: str) -> bool:
    """Whether a body of this type is parsed whole in memory, held to MAX_JSON_BODY: what FastAPI reads as JSON (no
    type at all, `application/json`, `application/*+json`) and a plain HTML form (`x-www-form-urlencoded`: every
    field kept in memory, unlike multipart's file parts; no form of the console or the H5 pages sends more than a
    few KiB, and the login form is parsed before anyone is known)."""
    kind = content_type.split(";")[0].strip().lower()
    json_body = not kind or kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))
    return json_body or kind == "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class _Limit:
    max_bytes: int
    code: str
    message: str

    def refusal(self, detail: str) -> bytes:
        return error_json(self.code, self.message, detail)


class _BodyOverLimit(Exception):
    """Raised into whoever reads the body past the limit: it stops reading (and answers, or not)."""


class _CountedBody:
    """One request whose body bytes are counted as they are received. Past the limit, reading raises, and the
    answer is our 413 whatever the reader made of the exception (FastAPI's form parsing turns it into a 400)."""

    def __init__(self, app: Any, limit: _Limit) -> None:
        self.app, self.limit = app, limit
        self.received, self.over, self.started, self.refused = 0, False, False, False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def counted() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit.max_bytes:
                    self.over = True
                    raise _BodyOverLimit()
            return message

        async def answering(message: dict[str, Any]) -> None:
            if self.over and not self.started:
                if message["type"] == "http.response.start" and not self.refused:
                    await self._refuse(send)
                return  # the reader's own answer to the exception (a 400) is dropped: ours went out
            self.started = self.started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyOverLimit):  # a reader that let it through: answered below
            await self.app(scope, counted, answering)
        if self.over and not self.started and not self.refused:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        self.refused = True
        log.warning("request body over %d bytes refused while it was received", self.limit.max_bytes)
        await send_json(send, 413, self.limit.refusal(f"more than {self.limit.max_bytes} bytes"))
