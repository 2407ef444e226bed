"""Reading multipart uploads with a byte limit: refuse as soon as the limit is passed, not after. And when an
upload began: the instant the server began receiving the request (`ArrivalMiddleware`), which the challenge's
expiry is judged at (docs/security.md Part AU)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Request, UploadFile

from pipelines.reasons import ReasonCode
from service.certification.errors import ServiceError
from service.infra import clock

CHUNK = 1024 * 1024
ARRIVED_AT = "arrived_at"  # the key in the request's state (scope["state"])


def read_limited(file: UploadFile, limit: int) -> bytes:
    """Read a spooled upload. Routes that touch the database are sync (thread pool): a blocking SQLite lock
    wait must never stall the event loop."""
    if file.size is not None and file.size > limit:
        raise ServiceError(ReasonCode.MEDIA_TOO_LARGE, f"{file.size} bytes > {limit}")
    parts: list[bytes] = []
    total = 0
    while chunk := file.file.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise ServiceError(ReasonCode.MEDIA_TOO_LARGE, f"more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


class ArrivalMiddleware:
    """Stamps each request with the service's clock (`clock.now_utc`) when it reaches the app, before any body
    byte is read: a route taking a file runs only once the whole body is spooled (FastAPI parses it before any
    dependency), and a sync route then waits for a free thread. Never from the client: nothing it sends is read."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[ARRIVED_AT] = clock.now_utc()
        await self.app(scope, receive, send)


def arrived_at(request: Request) -> dt.datetime:
    """When the server began receiving this request (aware, UTC); now when no stamp was taken (an app without
    ArrivalMiddleware: the old rule, judged when the route runs)."""
    stamp = getattr(request.state, ARRIVED_AT, None)
    return stamp if isinstance(stamp, dt.datetime) else clock.now_utc()


Arrival = Annotated[dt.datetime, Depends(arrived_at)]
