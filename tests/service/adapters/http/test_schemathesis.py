"""Schemathesis over the real app's OpenAPI schema: no 5xx, every response documented and matching its schema.

Stateless tests over every operation, through the ASGI app itself (no network), on a temporary SQLite set-up.
Machine-client operations get a valid X-API-Key; citizen operations get, for about half the cases, a real
session id and its token, so the upload, status and result handlers are reached, not just the 401/404 paths.

Short run (default pytest): a few derandomized examples per operation. Long run:
``PENSION_CERT_FUZZ_LONG=1 .venv/bin/pytest tests/service/adapters/http/test_schemathesis.py`` (many more, still
seeded).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from service.adapters.http.app import create_app
from tests.service import factories
from tests.service.conftest import ADMIN_API_KEY, API_KEY, make_settings

LONG = os.environ.get("PENSION_CERT_FUZZ_LONG") == "1"
EXAMPLES = 150 if LONG else 6
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


# The schema is parametrized at collection time, so the app exists from import on; its SQLite database and
# media live in a temporary directory removed after the module (schemathesis' fixture-based lazy loading does
# not work with this pytest version).
VAR = Path(tempfile.mkdtemp(prefix="schemathesis-"))
atexit.register(shutil.rmtree, VAR, True)  # also when the module is collected but not run
APP = create_app(make_settings(VAR, database_url=f"sqlite:///{VAR / 'fuzz.db'}"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def real_ids() -> Iterator[dict[str, str]]:
    """One beneficiary with an open session: the ids and token that reach the handlers behind the checks."""
    ctx = APP.state.ctx
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        db.commit()
        external_id = b.external_id
    with TestClient(APP) as client:
        r = client.post("/api/v1/sessions", json={"external_id": external_id}, headers={"X-API-Key": API_KEY})
        assert r.status_code == 201, r.text
        yield {"session_id": r.json()["session_id"], "token": r.json()["token"], "external_id": external_id}
    ctx.engine.dispose()


def _aim_at_real_objects(case: Any, real: dict[str, str]) -> None:
    """Valid credentials (a channel key, or for half the cases an operator key, which reaches the operator
    actions) and, for half the cases (chosen from the case's own content: reproducible), real ids."""
    params = {p.name.lower() for p in case.operation.headers}
    headers = dict(case.headers or {})
    crc = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    if "x-api-key" in params:
        headers["x-api-key"] = ADMIN_API_KEY if crc & 2 else API_KEY
    real_half = crc % 2 == 0
    path = dict(case.path_parameters or {})
    if real_half and "session_id" in path:
        path["session_id"] = real["session_id"]
        headers["authorization"] = f"Bearer {real['token']}"
    if real_half and "external_id" in path:
        path["external_id"] = real["external_id"]
    case.headers = headers
    case.path_parameters = path


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_schema(case: Any, real_ids: dict[str, str]) -> None:
    _aim_at_real_objects(case, real_ids)
    case.call_and_validate(checks=CHECKS)


def test_schema_documents_error_bodies() -> None:
    """Every API operation declares the {"error": {code, message, detail}} body for its error statuses."""
    raw = APP.openapi()
    for path, ops in raw["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/"):
                assert {"401", "404", "409", "413", "503"} <= set(op["responses"]), (method, path)
