"""Refuse a request body that announces more bytes than any upload may have, before it is read at all."""

from __future__ import annotations

import json
from typing import Any

from pipelines.reasons import ReasonCode

MULTIPART_OVERHEAD = 64 * 1024


class BodyLimitMiddleware:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes + MULTIPART_OVERHEAD

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                code = ReasonCode.MEDIA_TOO_LARGE
                body = json.dumps(
                    {"error": {"code": code.value, "message": code.message_zh, "detail": f"{int(length)} bytes"}},
                    ensure_ascii=False,
                ).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
