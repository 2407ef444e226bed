"""Security headers on every kind of response: API JSON, errors, H5 pages (camera only on the capture
page), console pages, the API docs; HSTS only behind https."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.features.wechat.h5 import identity
from service.infra.observability.headers import API_CSP, CONSOLE_CSP, DOCS_CSP, H5_CSP
from tests.service.adapters.http.ops import ops_app
from tests.service.conftest import API_KEY


def common(r: object) -> dict[str, str]:
    headers = {k.lower(): v for k, v in r.headers.items()}  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-request-id"]
    return headers


def test_api_json_gets_strict_csp_no_store_and_no_devices(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path)) as c:
        for r in (
            c.get("/api/v1/lists/overdue", headers={"X-API-Key": API_KEY}),  # personal data
            c.get("/api/v1/beneficiaries/NOBODY", headers={"X-API-Key": API_KEY}),  # error answer
            c.get("/api/v1/lists/overdue"),  # refused
        ):
            h = common(r)
            assert h["content-security-policy"] == API_CSP and "default-src 'none'" in API_CSP
            assert h["cache-control"] == "no-store"
            assert h["permissions-policy"].startswith("camera=()")
            assert "strict-transport-security" not in h  # http: HSTS would be ignored, and wrong in dev


def test_hsts_when_served_over_https(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path, public_base_url="https://rz.example.gov.cn")) as c:
        h = common(c.get("/healthz"))
        assert h["strict-transport-security"].startswith("max-age=31536000")


def test_h5_pages_keep_their_csp_and_only_the_capture_page_gets_the_camera(tmp_path: Path) -> None:
    app = ops_app(tmp_path)
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(app.state.ctx, "openid-test-1"))
        page = c.get("/h5/certify")
        assert page.status_code == 200 and "<video" in page.text
        h = common(page)
        assert h["content-security-policy"] == H5_CSP and "https://res.wx.qq.com" in H5_CSP
        assert h["permissions-policy"].startswith("camera=(self)") and "microphone=()" in h["permissions-policy"]
        assert h["cache-control"] == "no-store"
        other = c.get("/h5/family")
        assert other.status_code == 200 and common(other)["permissions-policy"].startswith("camera=()")
        js = c.get("/h5/static/h5.js")
        # Kept for good only under its own digest (Part AW, test_scripts.py); without one, never kept.
        assert js.status_code == 200 and js.headers["cache-control"] == "no-store"


def test_console_pages_keep_their_csp(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path)) as c:
        r = c.get("/console/login")
        assert r.status_code == 200 and "<form" in r.text
        h = common(r)
        assert h["content-security-policy"] == CONSOLE_CSP and "script-src 'none'" in CONSOLE_CSP


def test_api_docs_get_their_own_tight_csp(tmp_path: Path) -> None:
    """Swagger UI and ReDoc are served from the app (service/adapters/http/docs.py): scripts from 'self' only, no inline
    script, no other origin (tests/service/adapters/http/test_docs_offline.py follows every asset)."""
    with TestClient(ops_app(tmp_path)) as c:
        for path in ("/docs", "/redoc", "/docs/static/swagger-init.js"):
            r = c.get(path)
            assert r.status_code == 200, path
            assert common(r)["content-security-policy"] == DOCS_CSP and "script-src 'self';" in DOCS_CSP


def test_refusals_before_the_app_carry_the_headers_too(tmp_path: Path, windows_held: float) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_ip="1/minute")) as c:
        c.get("/api/v1/certificates/verify?code=x")
        r = c.get("/api/v1/certificates/verify?code=x")
        assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
        h = common(r)
        assert h["content-security-policy"] == API_CSP and h["cache-control"] == "no-store"
