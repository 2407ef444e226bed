"""The API's edges as monitoring, link checkers and careless clients meet them (docs/security.md, Part BS's "Left"):
a trailing slash, HEAD on a page or probe, a JSON value of the wrong type, a list format the API does not make."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.audit import DENIED
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry
from service.infra.clock import local_today
from tests.service import factories
from tests.service.adapters.http.ops import ops_app
from tests.service.adapters.http.test_observability import samples, value
from tests.service.adapters.http.test_revoke_api import _post
from tests.service.conftest import ADMIN, API_KEY
from tests.service.test_revocation import _certify, _person

FORGED = {"Host": "evil.example"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz/"),
        ("GET", "/readyz/"),
        ("POST", "/api/v1/sessions/"),
        ("GET", "/api/v1/lists/overdue/"),
        ("GET", "/api/v1/certificates/verify/"),
        ("POST", "/api/v1/proxy/operators/"),
        ("GET", "/h5/static/h5.css/"),
        ("GET", "/console/login/"),
    ],
)
def test_a_trailing_slash_is_not_redirected_to_the_host_asked(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path, headers={**ADMIN, **FORGED}, follow_redirects=False)
    assert "evil.example" not in r.headers.get("location", ""), r.headers
    assert r.status_code == 404, (r.status_code, r.headers)
    assert r.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("root", ["/h5", "/console"])
def test_the_bare_entry_roots_redirect_within_the_site(client: TestClient, root: str) -> None:
    # Typed without its slash, an entry address still finds its page: a path, never an address with a host.
    r = client.get(root, headers=FORGED, follow_redirects=False)
    assert r.status_code in (301, 307, 308), r.status_code
    assert r.headers["location"] == root + "/"


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/h5/static/h5.css", "/console/login", "/api/v1/certificates/verify?code=x"]
)
def test_head_is_answered_as_get_without_a_body(client: TestClient, path: str) -> None:
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code, (head.status_code, head.text)
    assert head.content == b""
    assert head.headers.get("content-type") == get.headers.get("content-type")


def test_head_is_audited_as_the_get_and_refused_where_no_get_exists(client: TestClient, ctx: ServiceContext) -> None:
    with ctx.db() as db:
        external_id = factories.beneficiary(db, ctx.keyring).external_id
        db.commit()
    path = f"/api/v1/beneficiaries/{external_id}"
    assert client.get(path).status_code == 200
    assert client.head(path).status_code == 200
    with ctx.db() as db:
        reads = db.scalars(
            select(AuditEntry).where(AuditEntry.action == "beneficiary.read", AuditEntry.target == external_id)
        ).all()
    assert len(reads) == 2 and reads[0].actor == reads[1].actor
    # A route with no GET stays a 405 in the error shape (HEAD is GET's, not every method's).
    refused = client.head("/api/v1/roster", headers=ADMIN)
    assert refused.status_code == 405 and refused.content == b""
    assert "GET" not in refused.headers.get("allow", "")


def test_a_head_answer_sends_no_body_and_leaves_the_servers_scope_as_head(client: TestClient) -> None:
    # As a server calls the app (the test client drops a HEAD answer's body itself): the bytes sent are none, and
    # the server's scope still says HEAD (uvicorn reads it to send no body).
    sent: list[MutableMapping[str, Any]] = []
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "HEAD", "scheme": "http",
        "path": "/h5/static/h5.css", "raw_path": b"/h5/static/h5.css", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip

    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()  # the client stays connected until the answer ends
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await client.app(scope, receive, send)

    anyio.run(call)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    length = dict(sent[0]["headers"])[b"content-length"]
    assert int(length) == len(client.get("/h5/static/h5.css").content) > 0
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b""
    assert scope["method"] == "HEAD"


def test_head_is_counted_logged_and_audited_as_head_under_its_routes_template(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, windows_held: float
) -> None:
    # Before: the inner layers saw the GET that a HEAD goes on as, so a monitoring probe (or a HEAD flood) was a
    # GET in the request histogram, the rate limiter's log line and the refusal's audit entry.
    verify, lists = "/api/v1/certificates/verify", "/api/v1/lists/overdue"
    count = "pension_cert_http_request_duration_seconds_count"
    with TestClient(ops_app(tmp_path, rate_limit_ip="2/minute")) as c:
        before = samples(c, count)
        assert [c.head(f"{verify}?code=x").status_code for _ in range(2)] == [400, 400]
        after = samples(c, count)
        assert value(after, method="HEAD", route=verify) - value(before, method="HEAD", route=verify) == 2
        assert value(after, method="GET", route=verify) == value(before, method="GET", route=verify)
        with caplog.at_level(logging.WARNING, logger="service.adapters.http.limits"):
            assert c.head(f"{verify}?code=x").status_code == 429
        limited = [r.getMessage() for r in caplog.records if r.name == "service.adapters.http.limits"]
        assert limited == [f"rate limited: rule ip (2 per 60s) for HEAD {verify}"]

        assert c.head(lists, headers={"X-API-Key": API_KEY}).status_code == 403  # a channel key: not its list
        ctx: ServiceContext = c.app.state.ctx  # type: ignore[attr-defined]
        with ctx.db() as db:
            denied = db.scalars(select(AuditEntry).where(AuditEntry.action == DENIED)).all()
        assert [(e.target, e.detail) for e in denied] == [(lists, {"method": "HEAD", "need": "operator key"})]


REVOKE = "/api/v1/certifications/revoke"


def _revoke(client: TestClient, **body: object) -> dict[str, Any]:
    sent = {"reason": "other", "note": "payments audit", **body}
    r = client.post(REVOKE, json=sent, headers={**ADMIN, "Idempotency-Key": "edge-key-0001"})
    answer: dict[str, Any] = {"status": r.status_code, **r.json()["error"]}
    return answer


@pytest.mark.parametrize(
    ("field", "value"),
    [("certification_id", "12"), ("certification_id", 12.0), ("certified_on", 86400), ("certified_on", "86400")],
)
def test_a_json_value_of_another_type_is_an_invalid_field(client: TestClient, field: str, value: object) -> None:
    # Before: lax coercion read "12" and 12.0 as certification 12, and 86400 (or "86400") as 2 January 1970.
    body: dict[str, object] = {field: value}
    if field == "certified_on":
        body["external_id"] = "P-EDGE-1"
    error = _revoke(client, **body)
    assert (error["status"], error["code"]) == (422, "FIELD_INVALID"), error
    assert error["message"].endswith(field) and error["fields"][0]["field"] == field


def test_an_iso_date_string_is_still_a_date(client: TestClient) -> None:
    error = _revoke(client, external_id="P-EDGE-1", certified_on="2026-01-02")
    assert error["code"] != "FIELD_INVALID", error  # read as a date: nobody is found by it
    error = _revoke(client, external_id="P-EDGE-1", certified_on="2026-02-30")
    assert (error["status"], error["code"], error["fields"][0]["field"]) == (422, "FIELD_INVALID", "certified_on")


# Every route of the API that takes a date in its query: (method, path, the date's name, what else it needs).
QUERY_DATES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("GET", "/api/v1/beneficiaries/P-EDGE-1", "today", {}),
    ("GET", "/api/v1/beneficiaries", "today", {"params": {"id_number": "110101194001011237"}}),
    ("POST", "/api/v1/beneficiaries/lookup", "today", {"json": {"id_number": "110101194001011237"}}),
    ("GET", "/api/v1/lists/overdue", "today", {}),
    ("GET", "/api/v1/exports/suspensions.csv", "since", {}),
    ("GET", "/api/v1/exports/resumptions.csv", "since", {}),
    ("POST", "/api/v1/cycle/run", "today", {}),
]


@pytest.mark.parametrize(("method", "path", "name", "extra"), QUERY_DATES, ids=[f"{m} {u}" for m, u, *_ in QUERY_DATES])
@pytest.mark.parametrize("sent", ["86400", "1704067200", "1704067200000", "2024-01-01T00:00:00Z", "-86400"])
def test_a_query_date_is_a_yyyy_mm_dd_string_only(
    client: TestClient, method: str, path: str, name: str, extra: dict[str, Any], sent: str
) -> None:
    # Before: lax parsing read `since=1704067200` (seconds since 1970) as 1 January 2024, `since=86400` as
    # 2 January 1970 (the payment file's whole history) and a timestamp as its day.
    kwargs: dict[str, Any] = {**extra, "params": {**extra.get("params", {}), name: sent}}
    r = client.request(method, path, headers=ADMIN, **kwargs)
    assert r.status_code == 422, (r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == "FIELD_INVALID" and error["fields"][0]["field"] == name, error


@pytest.mark.parametrize("fmt", ["xml", "CSV", "xlsx", ""])
def test_a_list_format_other_than_json_or_csv_is_refused(client: TestClient, fmt: str) -> None:
    # Before: any other value was answered with the JSON list (and audited as that format).
    r = client.get("/api/v1/lists/overdue", params={"format": fmt}, headers=ADMIN)
    assert r.status_code == 422, (r.status_code, r.text[:200])
    error = r.json()["error"]
    assert error["code"] == "FIELD_INVALID" and error["fields"][0]["field"] == "format"
    assert "'json'" in error["detail"] and "'csv'" in error["detail"]


def test_a_revocation_key_is_scoped_to_its_certification(client: TestClient, ctx: ServiceContext) -> None:
    """Part AG's keys are per certification: a key reused for another certification neither replays the first
    answer nor is refused as a mismatch; that certification's own state answers (revoked, or revoked already)."""
    today = local_today(ctx.settings)
    first_cid, _ = _certify(ctx, _person(ctx), today - dt.timedelta(days=5))
    other_cid, _ = _certify(ctx, _person(ctx), today - dt.timedelta(days=4))
    body = {"reason": "impersonation", "note": "民政死亡信息比对"}
    first = _post(client, {**body, "certification_id": first_cid}, key="one-key-0001")
    other = _post(client, {**body, "certification_id": other_cid}, key="one-key-0001")
    assert first.status_code == other.status_code == 200, other.text
    assert (other.json()["certification_id"], other.json()["replayed"]) == (other_cid, False)
    # The other one revoked already under another key: this key's first request is not its answer.
    third_cid, _ = _certify(ctx, _person(ctx), today - dt.timedelta(days=3))
    assert _post(client, {**body, "certification_id": third_cid}, key="third-key-01").status_code == 200
    again = _post(client, {**body, "certification_id": third_cid}, key="one-key-0001")
    assert again.status_code == 409 and again.json()["error"]["code"] == "CERTIFICATION_REVOKED", again.text
