"""One error contract on every API answer (docs/service.md): every 4xx/5xx is ``{"error": {"code", "message",
"detail", ...}}`` with a reason code, a Chinese message for citizens and an English detail for machines.

The walk takes every operation of the app's own OpenAPI document and sends it what a careless or hostile client
would: broken JSON, every field of the wrong type, an empty object, a JSON body where a file is expected, and
query/path parameters of the wrong type. Every refusal must keep the shape and none may be a 5xx.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

import service.schema
from service.certification.context import ServiceContext
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number
from tests.service.conftest import ADMIN_API_KEY, make_settings

CJK = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"[A-Z][A-Z0-9_]+")
# A wrong value for each JSON-schema type: what pydantic must refuse, not coerce.
WRONG: dict[str, Any] = {"string": 12345, "boolean": "maybe", "integer": "many", "number": "lots",
                         "array": "not-a-list", "object": "not-an-object"}  # fmt: skip


def assert_error_shape(r: Response, what: str) -> dict[str, Any]:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text}"
    assert r.status_code >= 400, f"{what}: {r.status_code} accepted"
    body = r.json()
    assert set(body) == {"error"}, f"{what}: {r.text}"
    error: dict[str, Any] = body["error"]
    assert CODE.fullmatch(error["code"]), f"{what}: code {error['code']!r}"
    assert CJK.search(error["message"]), f"{what}: message for citizens {error['message']!r}"
    assert isinstance(error["detail"], str) and error["detail"], f"{what}: no detail for machines"
    assert "Traceback" not in error["detail"] and " object at 0x" not in error["detail"], what
    return error


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = doc["components"]["schemas"][name]
    return schema


def _wrong_body(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Every property of the body with a value of the wrong type."""
    props = _resolve(doc, schema).get("properties", {})
    out: dict[str, Any] = {}
    for name, prop in props.items():
        prop = _resolve(doc, prop)
        types = [prop.get("type")] + [_resolve(doc, p).get("type") for p in prop.get("anyOf", [])]
        kind = next((t for t in types if t in WRONG), "string")
        out[name] = WRONG[kind] if kind != "string" else [12345]  # a list where text is expected
    return out


def _probes(doc: dict[str, Any], op: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(what, request kwargs) for one operation."""
    probes: list[tuple[str, dict[str, Any]]] = []
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        json_headers = {"content-type": "application/json"}
        probes += [
            ("broken JSON", {"content": b'{"external_id": "a', "headers": json_headers}),
            ("wrong types", {"json": _wrong_body(doc, schema)}),
            ("empty object", {"json": {}}),
            ("array body", {"json": [1, 2]}),
        ]
    if "multipart/form-data" in content:
        probes += [
            ("JSON instead of multipart", {"json": {"file": "x"}}),
            ("multipart without the file", {"data": {"nonce": "n"}}),
            (
                "broken multipart",
                {"content": b"--x\r\nnot multipart", "headers": {"content-type": "multipart/form-data; boundary=x"}},
            ),
        ]
    if any(p["in"] == "path" for p in op.get("parameters", [])):
        probes.append(("unknown id in the path", {}))
    for param in op.get("parameters", []):
        if param["in"] == "query":
            probes.append((f"query {param['name']} of the wrong type", {"params": {param["name"]: [1, "x", "[]"]}}))
    return probes


def _path(template: str, params: list[dict[str, Any]]) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-id", template) if params else template


def test_every_operation_answers_bad_requests_in_the_error_shape(client: TestClient) -> None:
    doc = client.app.openapi()  # type: ignore[attr-defined]
    headers = {"X-API-Key": ADMIN_API_KEY, "Authorization": "Bearer not-a-token", "Idempotency-Key": "k" * 16}
    probed: set[str] = set()
    refused: set[str] = set()
    for template, ops in doc["paths"].items():
        for method, op in ops.items():
            path = _path(template, op.get("parameters", []))
            for what, kwargs in _probes(doc, op):
                probed.add(f"{method} {template}")
                merged = {**headers, **kwargs.pop("headers", {})}
                r = client.request(method.upper(), path, headers=merged, **kwargs)
                if r.status_code < 400:  # a parameter the route may ignore (e.g. an unknown query value)
                    assert what.startswith("query"), f"{method} {template} {what}: {r.status_code} {r.text}"
                    continue
                assert_error_shape(r, f"{method.upper()} {template} ({what})")
                refused.add(f"{method} {template}")
    assert len(probed) >= 25 and refused == probed  # every operation with a body or a query was refused


def test_missing_field_is_a_422_naming_it(client: TestClient) -> None:
    r = client.post("/api/v1/sessions", json={})
    error = assert_error_shape(r, "POST /api/v1/sessions {}")
    assert r.status_code == 422 and error["code"] == "FIELD_MISSING"
    assert error["fields"][0]["field"] == "external_id" and "external_id" in error["message"]
    assert "external_id or id_number" in error["detail"]


def test_wrong_type_and_broken_json_name_what_is_wrong(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    r = client.post("/api/v1/sessions", json={"external_id": ext, "template_consent": "maybe"})
    error = assert_error_shape(r, "template_consent maybe")
    assert r.status_code == 422 and error["code"] == "FIELD_INVALID"
    assert error["fields"] == [{"location": "body", "field": "template_consent", "type": "bool_type",
                                "problem": "Input should be a valid boolean"}]  # fmt: skip
    r = client.post("/api/v1/sessions", content=b'{"external_id": ', headers={"content-type": "application/json"})
    error = assert_error_shape(r, "broken JSON")
    assert r.status_code == 422 and error["code"] == "JSON_INVALID"
    r = client.get("/api/v1/lists/overdue", params={"today": "yesterday"}, headers={"X-API-Key": ADMIN_API_KEY})
    error = assert_error_shape(r, "today=yesterday")
    assert r.status_code == 422 and error["fields"][0] == {
        "location": "query", "field": "today", "type": "date_type",
        "problem": "Input should be a date as a string, YYYY-MM-DD",
    }  # fmt: skip


def test_routing_auth_and_size_refusals_keep_the_shape(client: TestClient) -> None:
    r = client.get("/api/v1/no-such-route")
    assert r.status_code == 404 and assert_error_shape(r, "unknown route")["code"] == "NOT_FOUND"
    r = client.delete("/api/v1/sessions")
    assert r.status_code == 405 and assert_error_shape(r, "wrong method")["code"] == "METHOD_NOT_ALLOWED"
    r = client.post("/api/v1/sessions", json={"external_id": "x"}, headers={"X-API-Key": ""})
    assert r.status_code == 401 and assert_error_shape(r, "no API key")["code"] == "UNAUTHORIZED"
    r = client.post("/api/v1/sessions", json={"external_id": "x" * 70_000})
    assert r.status_code == 413 and assert_error_shape(r, "body too large")["code"] == "REQUEST_TOO_LARGE"


def test_rate_limit_refusal_keeps_the_shape(ctx: ServiceContext, windows_held: float) -> None:
    from service.adapters.http.app import create_app

    settings = make_settings(ctx.settings.var_dir, database_url=ctx.settings.database_url, rate_limit_ip="2/minute")
    limited = ServiceContext(settings, engine=ctx.engine, schema=None)
    limited.session_factory = ctx.session_factory
    with TestClient(create_app(ctx=limited)) as c:
        answers = [c.get("/api/v1/certificates/verify", params={"code": "x"}) for _ in range(3)]
    assert answers[-1].status_code == 429
    assert assert_error_shape(answers[-1], "rate limited")["code"] == "RATE_LIMITED"


def test_unexpected_failure_is_a_500_in_the_shape_without_internals(ctx: ServiceContext) -> None:
    from service.adapters.http.app import create_app

    app = create_app(ctx=ctx)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at 0x7f00")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500
    body = r.json()["error"]
    assert body["code"] == "INTERNAL_ERROR" and CJK.search(body["message"]) and "secret" not in r.text


def test_error_body_never_has_an_empty_detail() -> None:
    from service.adapters.http.errors import error_body

    assert error_body("STORAGE", "系统暂时无法处理", "")["error"] == {
        "code": "STORAGE", "message": "系统暂时无法处理", "detail": "storage"}  # fmt: skip


def test_metrics_refusal_keeps_the_shape(tmp_path: Path) -> None:
    from tests.service.adapters.http.ops import ops_app

    with TestClient(ops_app(tmp_path, metrics_token="scrape-secret-" + "x" * 20)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = c.get("/metrics", headers=headers)
            assert r.status_code == 401
            assert assert_error_shape(r, f"/metrics {headers}")["code"] == "UNAUTHORIZED"


def test_h5_card_problems_keep_the_shape_with_their_list(tmp_path: Path) -> None:
    """The H5 card check answers its own list of problems (what a new photo fixes) inside the same error."""
    from service.adapters.http.app import create_app
    from service.features.wechat.h5 import identity
    from tests.service.features.wechat.conftest import wechat_settings
    from tests.service.features.wechat.fake_wechat import FakeWeChat

    with FakeWeChat() as fake:
        settings = wechat_settings(fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'h5.db'}", h5_card_check=True)
        h5_ctx = ServiceContext(settings, schema=service.schema.metadata)
        with TestClient(create_app(ctx=h5_ctx)) as c:
            c.cookies.set(identity.COOKIE, identity.mint(h5_ctx, "openid-contract-1"))
            r = c.post("/h5/api/card-read", files={"file": ("card.jpg", b"not an image at all", "image/jpeg")})
    assert r.status_code == 422
    error = assert_error_shape(r, "H5 card read of a non-image")
    assert error["code"] == "MEDIA_UNSUPPORTED" and "MEDIA_UNSUPPORTED" in error["detail"]
    assert error["problems"] == [{"code": "MEDIA_UNSUPPORTED", "message": error["message"]}]
