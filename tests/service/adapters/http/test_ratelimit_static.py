"""Only the real static assets are exempt from the rate limits. Found by an outside review (2026-12-05): the
limiter exempted every path containing "/static/", so a route whose path parameter is the word "static"
(`/api/v1/sessions/static/video`, `/h5/api/sessions/static/card`, `/api/v1/proxy/bindings/static/sessions`) was
served with no limit at all: each such upload (up to the body limit, 64 MiB) was parsed and spooled to disk
before its 401 or 404, as often as anyone liked."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.adapters.http.ops import ops_app
from tests.service.adapters.http.test_ratelimit import limited

pytestmark = pytest.mark.usefixtures("windows_held")

UPLOADS = ("/api/v1/sessions/static/id-card", "/api/v1/sessions/static/video", "/h5/api/sessions/static/card")


@pytest.mark.parametrize("url", UPLOADS)
def test_a_path_parameter_named_static_is_rate_limited(tmp_path: Path, url: str) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_upload_ip="2/minute")) as c:
        files = {"file": ("c.jpg", b"\xff\xd8", "image/jpeg")}
        headers = {"Idempotency-Key": "k" * 16}
        codes = [c.post(url, files=files, data={"nonce": "n"}, headers=headers).status_code for _ in range(2)]
        assert 429 not in codes
        assert limited(c.post(url, files=files, data={"nonce": "n"}, headers=headers), "upload_ip")


def test_session_creation_through_a_binding_named_static_is_rate_limited(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_session_ip="2/minute")) as c:
        url = "/api/v1/proxy/bindings/static/sessions"
        assert 429 not in [c.post(url, json={}).status_code for _ in range(2)]
        assert limited(c.post(url, json={}), "session_ip")


def test_the_static_assets_stay_exempt(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_ip="2/minute")) as c:
        for path in ("/h5/static/h5.js", "/docs/static/swagger-init.js", "/console/static/console.css"):
            assert [c.get(path).status_code for _ in range(3)] == [200] * 3, path
        assert 429 not in [c.get("/api/v1/certificates/verify?code=x").status_code for _ in range(2)]
        assert limited(c.get("/api/v1/certificates/verify?code=x"), "ip")
