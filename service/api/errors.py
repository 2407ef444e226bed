"""The one place where exceptions become HTTP answers: 4xx JSON with a code and a Chinese message."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from pipelines.errors import MediaError, PipelineError
from service.errors import ServiceError
from service.storage import StorageError

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
    async def database_busy(_req: Request, exc: OperationalError) -> JSONResponse:
        # Busy or briefly unreachable database: nothing was acknowledged, the client retries (uploads are
        # idempotent by request id).
        log.warning("database: %s", exc.orig)
        body = _body("BUSY", "系统繁忙,请稍后再试", "database busy")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(StorageError)
    async def storage_error(_req: Request, exc: StorageError) -> JSONResponse:
        log.error("storage: %s", exc)
        return JSONResponse(_body("STORAGE", "系统暂时无法处理,请稍后再试", ""), status_code=503)
