"""Security headers on every response, one policy table for the whole app (API JSON, H5 pages, console).

A header the route already set wins (e.g. the H5 pages set their own CSP and Cache-Control), so pages keep
their policies; everything else gets the defaults below.
"""

from __future__ import annotations

from typing import Any

# JSON API: nothing to load, nothing to frame.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# WeChat's JS-SDK is loaded from res.wx.qq.com inside WeChat; media come from our own API only.
H5_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; "
    "script-src 'self' https://res.wx.qq.com; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Staff console: server-rendered, no scripts at all.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# Only the H5 capture page records the selfie video (getUserMedia, video only).
CAMERA_PAGES = frozenset({"/h5/certify"})
NO_DEVICES = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
CAMERA_SELF = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"
# The interactive API docs load Swagger UI / ReDoc from a CDN with inline scripts: no CSP there.
DOCS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
PERSONAL_PREFIXES = ("/api/", "/h5", "/console")
HSTS = "max-age=31536000; includeSubDomains"


def csp_for(path: str) -> str | None:
    if path in DOCS:
        return None
    if path.startswith("/console"):
        return CONSOLE_CSP
    if path.startswith("/h5"):
        return H5_CSP
    return API_CSP


def headers_for(path: str, https: bool) -> list[tuple[bytes, bytes]]:
    out: list[tuple[str, str]] = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", CAMERA_SELF if path in CAMERA_PAGES else NO_DEVICES),
    ]
    csp = csp_for(path)
    if csp is not None:
        out.append(("content-security-policy", csp))
    # Answers carrying personal data (names, masked numbers, decisions, media) must not sit in any cache.
    if path.startswith(PERSONAL_PREFIXES) and "/static/" not in path:
        out.append(("cache-control", "no-store"))
    if https:
        out.append(("strict-transport-security", HSTS))
    return [(k.encode(), v.encode()) for k, v in out]


class SecurityHeadersMiddleware:
    def __init__(self, app: Any, public_base_url: str) -> None:
        self.app = app
        self.https = public_base_url.lower().startswith("https://")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = headers_for(str(scope.get("path", "")), self.https)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in defaults if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
