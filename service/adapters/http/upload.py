"""Reading multipart uploads with a byte limit: refuse as soon as the limit is passed, not after."""

from __future__ import annotations

from fastapi import UploadFile

from pipelines.reasons import ReasonCode
from service.certification.errors import ServiceError

CHUNK = 1024 * 1024


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
