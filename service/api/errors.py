"""The one place where exceptions become HTTP answers: 4xx JSON with a code and a Chinese message."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from pipelines.errors import MediaError, PipelineError
from service.errors import SERVICE_MESSAGES_ZH, ServiceError
from service.storage import StorageError, StorageFullError

log = logging.getLogger(__name__)

MEDIA_STATUS = {"MEDIA_TOO_LARGE": 413, "MEDIA_UNSUPPORTED": 415}


def _body(code: str, message: str, detail: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "detail": detail, **extra}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_req: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message_zh, exc.detail, **exc.extra), status_code=exc.status)

    @app.exception_handler(PipelineError)
    async def pipeline_error(_req: Request, exc: PipelineError) -> JSONResponse:
        status = MEDIA_STATUS.get(exc.reason.value, 422) if isinstance(exc, MediaError) else 422
        return JSONResponse(_body(exc.reason.value, exc.reason.message_zh, exc.detail), status_code=status)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(_req: Request, exc: DBAPIError) -> JSONResponse:
        # Busy (SQLite lock timeout) or unreachable database (PostgreSQL down or restarting, connection
        # dropped): nothing was acknowledged, the client retries (uploads are idempotent by request id). The
        # pool drops dead connections itself (pre-ping), so the API recovers without a restart.
        log.warning("database: %s", exc.orig)
        if "locked" in str(exc.orig):
            body = _body("BUSY", "系统繁忙,请稍后再试", "database busy")
        else:
            body = _body("DB_UNAVAILABLE", SERVICE_MESSAGES_ZH["DB_UNAVAILABLE"], "database unavailable")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(StorageFullError)
    async def storage_full(_req: Request, exc: StorageFullError) -> JSONResponse:
        # 507 Insufficient Storage: the upload was not stored (no file, no row); the same request succeeds
        # once space is freed.
        log.error("storage full: %s", exc)
        body = _body("STORAGE_FULL", SERVICE_MESSAGES_ZH["STORAGE_FULL"], "media storage full")
        return JSONResponse(body, status_code=507, headers={"Retry-After": "60"})

    @app.exception_handler(StorageError)
    async def storage_error(_req: Request, exc: StorageError) -> JSONResponse:
        log.error("storage: %s", exc)
        return JSONResponse(_body("STORAGE", "系统暂时无法处理,请稍后再试", ""), status_code=503)
