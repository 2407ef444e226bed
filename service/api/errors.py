"""The one place where exceptions become HTTP answers: 4xx JSON with a code and a Chinese message."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from pipelines.errors import MediaError, PipelineError
from service.errors import SERVICE_MESSAGES_ZH, ServiceError
from service.storage import StorageError, StorageFullError

log = logging.getLogger(__name__)

MEDIA_STATUS = {"MEDIA_TOO_LARGE": 413, "MEDIA_UNSUPPORTED": 415}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # some errors add fields (e.g. attempts left)

    code: str
    message: str
    detail: str


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message" (Chinese, for citizens), "detail"}}``."""

    error: ErrorDetail


class RequestValidationBody(BaseModel):
    """FastAPI's answer to a request that does not match the declared parameters or body."""

    detail: list[dict[str, Any]]


_ERROR_STATUSES = {
    400: "Bad request",
    401: "Missing or unknown X-API-Key or session token",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone (expired)",
    413: "Upload or roster too large",
    415: "Unsupported media type",
    423: "Locked",
    429: "Too many requests",
    502: "Upstream (WeChat) failure",
    503: "Database or storage temporarily unavailable; retry",
    507: "Media storage full; retry later",
}
# Declared on every route (OpenAPI), so clients and schemathesis know the error body. 422 is either our body
# (a reason code from the pipelines) or FastAPI's request validation error.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERROR_STATUSES.items()
}
ERROR_RESPONSES[422] = {
    "model": ErrorBody | RequestValidationBody,
    "description": "Invalid request or media (reason code), or request validation error",
}


def error_body(code: str, message: str, detail: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "detail": detail, **extra}}


# Starlette's own refusals (unparsable JSON or multipart body, unknown path, wrong method).
HTTP_CODES = {
    400: ("BAD_REQUEST", "请求格式不正确"),
    404: ("NOT_FOUND", "未找到"),
    405: ("METHOD_NOT_ALLOWED", "请求方法不正确"),
}


def json_safe(value: Any) -> Any:
    """JSON has no NaN or Infinity: Python's json module reads them, and echoing one back in a validation error
    made the answer unserialisable (a 500, found with {"external_id": NaN}). They are answered as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf"
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def install_error_handlers(app: FastAPI) -> None:
    # Routes take the router's responses when they are added: called before any router is included.
    app.router.responses = {**ERROR_RESPONSES, **app.router.responses}

    @app.exception_handler(ServiceError)
    async def service_error(_req: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message_zh, exc.detail, **exc.extra), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own body ({"detail": [...]}, RequestValidationBody), with non-finite numbers made strings.
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_req: Request, exc: HTTPException) -> JSONResponse:
        # Same body as every other error (found by schemathesis: a malformed body answered {"detail": ...}).
        code, message = HTTP_CODES.get(exc.status_code, (f"HTTP_{exc.status_code}", "请求无法处理"))
        body = error_body(code, message, str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(PipelineError)
    async def pipeline_error(_req: Request, exc: PipelineError) -> JSONResponse:
        status = MEDIA_STATUS.get(exc.reason.value, 422) if isinstance(exc, MediaError) else 422
        return JSONResponse(error_body(exc.reason.value, exc.reason.message_zh, exc.detail), status_code=status)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(_req: Request, exc: DBAPIError) -> JSONResponse:
        # Busy (SQLite lock timeout) or unreachable database (PostgreSQL down or restarting, connection
        # dropped): nothing was acknowledged, the client retries (uploads are idempotent by request id). The
        # pool drops dead connections itself (pre-ping), so the API recovers without a restart.
        log.warning("database: %s", exc.orig)
        if "locked" in str(exc.orig):
            body = error_body("BUSY", "系统繁忙,请稍后再试", "database busy")
        else:
            body = error_body("DB_UNAVAILABLE", SERVICE_MESSAGES_ZH["DB_UNAVAILABLE"], "database unavailable")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(StorageFullError)
    async def storage_full(_req: Request, exc: StorageFullError) -> JSONResponse:
        # 507 Insufficient Storage: the upload was not stored (no file, no row); the same request succeeds
        # once space is freed.
        log.error("storage full: %s", exc)
        body = error_body("STORAGE_FULL", SERVICE_MESSAGES_ZH["STORAGE_FULL"], "media storage full")
        return JSONResponse(body, status_code=507, headers={"Retry-After": "60"})

    @app.exception_handler(StorageError)
    async def storage_error(_req: Request, exc: StorageError) -> JSONResponse:
        log.error("storage: %s", exc)
        return JSONResponse(error_body("STORAGE", "系统暂时无法处理,请稍后再试", ""), status_code=503)
