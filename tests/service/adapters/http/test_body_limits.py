"""Request bodies are held to their limit as they arrive, before anything parses them, whether or not they
announce their length. Found by an outside review (2026-12-05), each failing on the old code:

- `BodyLimitMiddleware` looked at Content-Length only. A body sent without one (chunked transfer encoding) was
  read whole: the multipart parser spools a file part to disk whatever its size, before any route or key check
  runs, so anyone, without a key or a session token, could write gigabytes to the API's temporary directory with
  one request (the rate limits count requests, not bytes).
- A JSON body could be as large as an upload (64 MiB) and FastAPI parses it before the route's key check: 60 MiB
  of `[{},{},…]` sent with no key made 1.4 GB of Python objects and held the event loop for about 2 s before the
  401. No JSON body of the API is more than a few hundred bytes: they are capped at 64 KiB (the cap the rate
  limiter already kept for session creation), announced or not.

The app is driven as a server drives it (ASGI, the body in chunks as they arrive): the test client reads a
streamed body whole before the app sees any of it, so it cannot tell whether reading stopped at the limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from fastapi.testclient import TestClient

from service.adapters.http.app import create_app
from service.adapters.http.body_limit import MAX_JSON_BODY, MULTIPART_OVERHEAD
from service.certification.context import ServiceContext
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session
from tests.service.adapters.http.test_error_contract import assert_error_shape

MIB = 1024 * 1024
MULTIPART = "multipart/form-data; boundary=b"


def _upload_limit(ctx: ServiceContext) -> int:
    """What create_app gives BodyLimitMiddleware (the largest upload, at least 64 MiB) plus the multipart slack."""
    return max(ctx.settings.uploads.max_video_bytes, 64 * MIB) + MULTIPART_OVERHEAD


def _multipart(size: int, chunk: int) -> list[bytes]:
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="v.webm"\r\n\r\n'
    return [head, *[b"\0" * chunk] * (size // chunk), b"\r\n--b--\r\n"]


def _json(size: int, chunk: int) -> list[bytes]:
    return [b"[", *[b"{}," * (chunk // 3)] * (size // chunk), b"{}]"]


def post_streamed(ctx: ServiceContext, path: str, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, Any, int]:
    """POST `chunks` without Content-Length, one per receive(): the status, the JSON answer and how many bytes the
    app pulled before answering."""
    app = create_app(ctx=ctx)
    pending, pulled, status, answer = list(chunks), 0, 0, b""

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if not pending:
            await asyncio.sleep(3600)  # the client sent everything: nothing more (a disconnect would come later)
        chunk = pending.pop(0)
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, answer
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer += message.get("body", b"")

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": raw,
             "client": ("203.0.113.9", 50000), "server": ("testserver", 80)}  # fmt: skip
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 60))
    return status, json.loads(answer or b"null"), pulled


def test_a_chunked_upload_over_the_limit_is_refused_as_soon_as_it_passes_it(
    client: TestClient, ctx: ServiceContext
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    path = f"/api/v1/sessions/{s['session_id']}/video"
    # No key, no token, no Content-Length: the attack as it comes.
    chunks = _multipart(_upload_limit(ctx) + 32 * MIB, MIB)
    status, body, pulled = post_streamed(ctx, path, chunks, {"content-type": MULTIPART})
    assert status == 413 and body["error"]["code"] == "MEDIA_TOO_LARGE", body
    assert pulled <= _upload_limit(ctx) + MIB  # reading stopped at the limit: the rest was never pulled

    # Under the limit, a chunked body is read whole and reaches its route (refused there: no token).
    chunks = _multipart(2 * MIB, MIB)
    status, body, pulled = post_streamed(
        ctx, path, chunks, {"content-type": MULTIPART, "idempotency-key": "request-0001"}
    )
    assert status == 422 and body["error"]["code"] == "FIELD_MISSING" and pulled == sum(map(len, chunks)), body


def test_a_json_body_over_64_kib_is_refused_before_it_is_parsed(client: TestClient, ctx: ServiceContext) -> None:
    client.headers.pop("X-API-Key")  # the attack needs no key: FastAPI parses the body before the key check
    big = b"[" + b"{}," * (MIB // 3) + b"{}]"
    for ctype in ("application/json", "application/merge-patch+json", None):  # no type: FastAPI reads it as JSON
        headers = {"content-type": ctype} if ctype else {}
        r = client.post("/api/v1/beneficiaries/lookup", content=big, headers=headers)
        assert r.status_code == 413 and assert_error_shape(r, str(ctype))["code"] == "REQUEST_TOO_LARGE", r.text
        status, body, pulled = post_streamed(ctx, "/api/v1/beneficiaries/lookup", _json(8 * MIB, 16384), headers)
        assert status == 413 and body["error"]["code"] == "REQUEST_TOO_LARGE", body
        assert pulled <= MAX_JSON_BODY + 16384

    # Two content types: FastAPI reads the first, so the cap follows the first too.
    two = [("content-type", "application/json"), ("content-type", MULTIPART)]
    r = client.post("/api/v1/beneficiaries/lookup", content=big, headers=two)
    assert r.status_code == 413 and r.json()["error"]["code"] == "REQUEST_TOO_LARGE", r.text

    # 64 KiB exactly is still read and served (a number padded with blanks: an unknown person).
    padded = json.dumps({"id_number": factories.id_number()}).encode()
    padded += b" " * (MAX_JSON_BODY - len(padded))
    r = client.post("/api/v1/beneficiaries/lookup", content=padded, headers={"content-type": "application/json"})
    assert r.status_code == 401, r.text  # reached the route: no key
    from tests.service.conftest import API_KEY

    r = client.post(
        "/api/v1/beneficiaries/lookup",
        content=padded,
        headers={"content-type": "application/json", "X-API-Key": API_KEY},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "BENEFICIARY_UNKNOWN", r.text


def test_a_urlencoded_form_over_64_kib_is_refused_before_it_is_parsed(client: TestClient, ctx: ServiceContext) -> None:
    """A plain HTML form is parsed whole in memory, every field kept, before the route runs: the staff login, whose
    form is read before anyone is known, took a body as large as an upload (64 MiB). Forms are held to 64 KiB like
    JSON; none the console or the H5 pages sends is more than a few KiB (a reason is at most 1,000 characters)."""
    form = "application/x-www-form-urlencoded"
    big = b"username=a&password=" + b"x" * MIB
    r = client.post("/console/login", content=big, headers={"content-type": form})
    assert r.status_code == 413 and assert_error_shape(r, form)["code"] == "REQUEST_TOO_LARGE", r.text
    chunks = [b"username=a&password=", *[b"x" * 16384] * (8 * MIB // 16384)]
    for ctype in (form, f"{form}; charset=UTF-8", "Application/X-WWW-Form-Urlencoded"):
        status, body, pulled = post_streamed(ctx, "/console/login", chunks, {"content-type": ctype})
        assert status == 413 and body["error"]["code"] == "REQUEST_TOO_LARGE", (ctype, body)
        assert pulled <= MAX_JSON_BODY + 16384  # reading stopped at the cap: the rest was never pulled

    # A form at the cap is still read and reaches its route (no login cookie: the form has expired, 403).
    padded = b"username=a&csrf=&password=" + b"x" * (MAX_JSON_BODY - 26)
    r = client.post("/console/login", content=padded, headers={"content-type": form})
    assert r.status_code == 403 and "表单已失效" in r.text, r.text


def test_a_body_not_labelled_json_to_a_route_without_files_is_held_to_64_kib(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The cap went by the declared type: text/plain, octet-stream or multipart got the upload limit (64 MiB) on
    every route, and FastAPI reads such a body whole (`request.body()`) for a route with a JSON model, before the
    key check: 60 MiB held in memory per request, with no key, before the 401. Only routes that take a file get
    the upload limit now (outside review 2026-12-06, finding 2)."""
    client.headers.pop("X-API-Key")
    for path in ("/api/v1/beneficiaries/lookup", "/api/v1/proxy/bindings", "/api/v1/certifications/revoke"):
        for ctype in ("text/plain", "application/octet-stream", MULTIPART):
            r = client.post(path, content=b"x" * MIB, headers={"content-type": ctype})
            assert r.status_code == 413 and assert_error_shape(r, ctype)["code"] == "REQUEST_TOO_LARGE", (path, r.text)
            chunks = [b"x" * 16384] * (8 * MIB // 16384)
            status, body, pulled = post_streamed(ctx, path, chunks, {"content-type": ctype})
            assert status == 413 and body["error"]["code"] == "REQUEST_TOO_LARGE", (path, ctype, body)
            assert pulled <= MAX_JSON_BODY + 16384  # reading stopped at the cap: the rest was never pulled


def test_the_routes_given_the_upload_limit_are_those_that_take_a_file(ctx: ServiceContext) -> None:
    """Derived from the routes' `File()` parameters: the API's and the H5 pages' uploads, the roster and the
    console's upload forms, and nothing else."""
    from service.adapters.http.body_limit import file_routes

    uploads = file_routes(create_app(ctx=ctx).routes)
    paths = {pattern.pattern for _, pattern in uploads}
    for path in (
        "/api/v1/sessions/s-1/id-card",
        "/api/v1/sessions/s-1/video",
        "/api/v1/roster",
        "/h5/api/sessions/s-1/card",
        "/h5/api/card-read",
    ):
        assert any("POST" in methods and pattern.match(path) for methods, pattern in uploads), (path, paths)
    for path in ("/api/v1/beneficiaries/lookup", "/api/v1/proxy/bindings", "/api/v1/sessions", "/console/login"):
        assert not any(pattern.match(path) for _, pattern in uploads), (path, paths)
