"""The public API stays backwards compatible: the current OpenAPI schema, reduced to what clients rely on, is
compared with the one captured before the reorganisation of service/ (issue 20), golden/openapi_before.json.

What is compared, per operation (method and path): its parameters (name, in, required), its request body
(required or not, its properties and required fields, whatever the content type), and the required properties of
each success (2xx) response. Adding paths, methods, optional parameters, body fields or response properties is
allowed; removing a path, a method, a parameter, a body field, a success status or a required response property,
or making an optional input required (or adding a required one), is not.

Regenerate the golden only for a deliberate, announced break (or to capture a new baseline), from the app of the
commit to compare against:
    .venv/bin/python -m tests.service.adapters.http.test_openapi_compat > \\
        tests/service/adapters/http/golden/openapi_before.json
(or reduce a saved full schema: ``... test_openapi_compat path/to/openapi.json``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from tests.service.conftest import ADMIN

GOLDEN = Path(__file__).parent / "golden" / "openapi_before.json"
Schema = dict[str, Any]


def _resolve(doc: Schema, schema: Schema) -> Schema:
    """The schema behind a ``$ref`` (also one wrapped in allOf, as FastAPI writes a described model)."""
    while True:
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif len(schema.get("allOf", [])) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def _body(doc: Schema, op: Schema) -> Schema | None:
    body = op.get("requestBody")
    if body is None:
        return None
    properties: set[str] = set()
    required: set[str] = set()
    for content in body.get("content", {}).values():
        schema = _resolve(doc, content.get("schema", {}))
        properties |= set(schema.get("properties", {}))
        required |= set(schema.get("required", []))
    return {"required": bool(body.get("required")), "properties": sorted(properties), "fields": sorted(required)}


def _responses(doc: Schema, op: Schema) -> dict[str, list[str]]:
    out = {}
    for status, response in op.get("responses", {}).items():
        if status.startswith("2"):
            schema = _resolve(doc, response.get("content", {}).get("application/json", {}).get("schema", {}))
            out[status] = sorted(schema.get("required", []))
    return out


def reduce_schema(doc: Schema) -> Schema:
    """What clients rely on, per ``METHOD /path``: parameters, request body, success responses."""
    reduced: Schema = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            reduced[f"{method.upper()} {path}"] = {
                "parameters": {f"{p['in']}:{p['name']}": bool(p.get("required")) for p in op.get("parameters", [])},
                "body": _body(doc, op),
                "responses": _responses(doc, op),
            }
    return dict(sorted(reduced.items()))


def incompatibilities(before: Schema, now: Schema) -> list[str]:
    """Every way ``now`` breaks a client written against ``before`` (both reduced)."""
    problems = []
    for key, old in before.items():
        new = now.get(key)
        if new is None:
            problems.append(f"{key}: removed")
            continue
        for param, required in new["parameters"].items():
            if param not in old["parameters"] and required:
                problems.append(f"{key}: new required parameter {param}")
            elif required and not old["parameters"].get(param, True):
                problems.append(f"{key}: parameter {param} became required")
        problems += [f"{key}: parameter {p} removed" for p in old["parameters"] if p not in new["parameters"]]
        problems += _body_problems(key, old["body"], new["body"])
        for status, fields in old["responses"].items():
            if status not in new["responses"]:
                problems.append(f"{key}: success status {status} removed")
                continue
            lost = sorted(set(fields) - set(new["responses"][status]))
            problems += [f"{key}: {status} response no longer requires {lost}"] if lost else []
    return problems


def _body_problems(key: str, old: Schema | None, new: Schema | None) -> list[str]:
    if new is None:
        return [f"{key}: request body removed"] if old is not None else []
    if old is None:
        return [f"{key}: new required request body"] if new["required"] else []
    problems = [f"{key}: request body became required"] if new["required"] and not old["required"] else []
    problems += [f"{key}: body field {f} became required" for f in sorted(set(new["fields"]) - set(old["fields"]))]
    problems += [f"{key}: body field {f} removed" for f in sorted(set(old["properties"]) - set(new["properties"]))]
    return problems


def test_the_schema_is_backwards_compatible(client: TestClient) -> None:
    before = json.loads(GOLDEN.read_text(encoding="utf-8"))
    now = reduce_schema(client.app.openapi())  # type: ignore[attr-defined]
    assert len(before) > 20  # the golden holds the public API, not an empty capture
    assert incompatibilities(before, now) == []


def test_the_comparison_sees_breaking_changes() -> None:
    """The checker itself: each kind of break is reported, additions are not."""
    before = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert incompatibilities(before, before) == []
    key = "POST /api/v1/sessions"
    now = json.loads(json.dumps(before))
    now["GET /api/v1/new"] = {"parameters": {"query:x": True}, "body": None, "responses": {"200": ["a"]}}
    now[key]["responses"]["201"] = [*now[key]["responses"]["201"], "extra"]
    assert incompatibilities(before, now) == []
    now[key]["parameters"]["query:must"] = True
    now[key]["body"]["fields"] = [*now[key]["body"]["fields"], "channel"]
    del now["GET /healthz"]
    now["GET /api/v1/beneficiaries"]["parameters"]["query:today"] = True
    assert incompatibilities(before, now) == [
        "GET /api/v1/beneficiaries: parameter query:today became required",
        "GET /healthz: removed",
        "POST /api/v1/sessions: new required parameter query:must",
        "POST /api/v1/sessions: body field channel became required",
    ]


def test_ops_and_wechat_routes_document_their_bodies(client: TestClient) -> None:
    """/healthz, /readyz (200 and 503) and the JS-SDK config declare their response fields (issue 20)."""
    doc = client.app.openapi()  # type: ignore[attr-defined]
    now = reduce_schema(doc)
    assert now["GET /healthz"]["responses"] == {"200": ["status"]}
    assert now["GET /readyz"]["responses"] == {"200": ["checks", "failing", "status"]}
    unready = doc["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert sorted(_resolve(doc, unready)["required"]) == ["checks", "failing", "status"]
    jssdk = now["GET /api/v1/wechat/jssdk-config"]["responses"]["200"]
    assert jssdk == ["appId", "jsApiList", "nonceStr", "signature", "timestamp"]
    assert client.get("/healthz").content == b'{"status":"ok"}'  # the body as before, nothing added


def _current_schema() -> Schema:
    from service.adapters.http.app import create_app
    from tests.service.conftest import make_settings

    with tempfile.TemporaryDirectory() as var:
        return create_app(make_settings(Path(var), database_url=f"sqlite:///{var}/schema.db")).openapi()


if __name__ == "__main__":
    full = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")) if len(sys.argv) > 1 else _current_schema()
    sys.stdout.write(json.dumps(reduce_schema(full), indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def test_every_success_response_declares_its_media_type(client: TestClient) -> None:
    """A route answering a `Response` of its own without declaring it was documented as `application/json` with an
    empty schema: the certificate PNG and the payment exports' CSV, which a generated client decoded as JSON
    (outside review 2026-12-06, finding 4). Each declares its real type now, and so must the next such route."""
    doc = client.app.openapi()  # type: ignore[attr-defined]
    undeclared = [
        f"{method.upper()} {path} {status} {media}"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for status, response in op.get("responses", {}).items()
        if status.startswith("2")
        for media, content in response.get("content", {}).items()
        if not content.get("schema")
    ]
    assert undeclared == []


def test_the_certificate_and_csv_routes_send_the_type_they_declare(client: TestClient, ctx: ServiceContext) -> None:
    from tests.service.adapters.http.test_certificate_check import certify

    doc = client.app.openapi()  # type: ignore[attr-defined]
    issued = certify(ctx)
    sent = {
        "/api/v1/sessions/{session_id}/certificate.png": client.get(
            f"/api/v1/sessions/{issued.session_id}/certificate.png", headers={"Authorization": f"Bearer {issued.token}"}
        ),
        "/api/v1/exports/{kind}.csv": client.get("/api/v1/exports/suspensions.csv", headers=ADMIN),
        "/api/v1/lists/{which}": client.get("/api/v1/lists/due_soon", params={"format": "csv"}, headers=ADMIN),
    }
    for path, r in sent.items():
        assert r.status_code == 200, (path, r.text)
        declared = set(doc["paths"][path]["get"]["responses"]["200"]["content"])
        assert r.headers["content-type"].split(";")[0] in declared, (path, r.headers["content-type"], declared)
    assert doc["paths"]["/api/v1/exports/{kind}.csv"]["get"]["responses"]["200"]["content"] == {
        "text/csv": {"schema": {"type": "string"}}
    }
    png = doc["paths"]["/api/v1/sessions/{session_id}/certificate.png"]["get"]["responses"]["200"]["content"]
    assert png == {"image/png": {"schema": {"type": "string", "format": "binary"}}}
