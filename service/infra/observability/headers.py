"""Security headers on every response, one policy table for the whole app (API JSON, H5 pages, console).

A header the route already set wins (e.g. the H5 pages set their own CSP and Cache-Control), so pages keep
their policies; everything else gets the defaults below.
"""

from __future__ import annotations

from typing import Any

# JSON API: nothing to load, nothing to frame.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# H5 pages: media come from our own API only. Only the capture page (H5_CSP) loads WeChat's JS-SDK script
# from res.wx.qq.com (what jweixin needs: the script itself; it talks to WeChat through the in-app bridge).
H5_BASE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The capture page also compiles onnxruntime-web's WebAssembly (live face guidance, served by us from
# /h5/static/vendor/): 'wasm-unsafe-eval' allows WebAssembly compilation only, not eval() of JavaScript.
H5_CSP = H5_BASE_CSP.replace("script-src 'self';", "script-src 'self' 'wasm-unsafe-eval' https://res.wx.qq.com;")
# Staff console: server-rendered, no scripts at all.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# Only the H5 capture page records the selfie video (getUserMedia, video only).
CAMERA_PAGES = frozenset({"/h5/certify"})
NO_DEVICES = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
CAMERA_SELF = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"
# The interactive API docs (service/adapters/http/docs.py): Swagger UI / ReDoc from our own files, no inline script.
# ReDoc's styled-components inject <style> elements and its search runs in a blob: worker; images are data: URIs.
DOCS = frozenset({"/docs", "/redoc"})
DOCS_STATIC = "/docs/static/"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
PERSONAL_PREFIXES = ("/api/", "/h5", "/console")
HSTS = "max-age=31536000; includeSubDomains"


def csp_for(path: str) -> str | None:
    if path in DOCS or path.startswith(DOCS_STATIC):
        return DOCS_CSP
    if path.startswith("/console"):
        return CONSOLE_CSP
    if path.startswith("/h5"):
        return H5_BASE_CSP
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
