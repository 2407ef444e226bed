"""The one place where exceptions become HTTP answers. Every 4xx/5xx of the API has one shape (docs/service.md):
``{"error": {"code", "message", "detail", ...}}``: a reason code, a Chinese message for citizens and an English
detail for machines and integrators; request validation (bad JSON, a wrong type, a missing field or parameter),
unknown routes, wrong methods and unexpected failures included."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from pipelines.errors import MediaError, PipelineError
from pipelines.reasons import ReasonCode
from service.certification.catalog import ServiceCode, message_zh
from service.certification.errors import (
    InvalidInputError,
    LockedError,
    NotFoundError,
    ServiceError,
    UnsupportedFormatError,
)
from service.infra.storage import StorageError, StorageFullError

log = logging.getLogger(__name__)

# The one map from domain errors to HTTP status, used by the API, the H5 pages and the console alike. Domain code
# raises a code and a detail; the status is chosen here, in this order: the kind of failure the error was raised as
# (a code such as ROSTER_FORMAT is a damaged file, 422, or a file type the service does not read, 415), then the
# code, then 400. tests/service/adapters/http/test_error_status_map.py fails on a raised code missing from it.
STATUS_BY_KIND: dict[type[ServiceError], int] = {
    NotFoundError: 404,
    InvalidInputError: 422,
    UnsupportedFormatError: 415,
    LockedError: 423,
}
DEFAULT_STATUS = 400
STATUS_BY_CODE: dict[str, int] = {
    # A pipeline reason is a check the media or the ID number failed: the request's content (as PipelineError).
    **{reason.value: 422 for reason in ReasonCode},
    ReasonCode.MEDIA_TOO_LARGE.value: 413,
    ReasonCode.MEDIA_UNSUPPORTED.value: 415,
    ServiceCode.BENEFICIARY_UNKNOWN.value: 404,
    ServiceCode.RATE_LIMITED.value: 429,  # answered by the rate limiter itself (limits.py), never raised
    ReasonCode.BENEFICIARY_DECEASED.value: 409,
    ReasonCode.IDENTITY_CHANGED.value: 409,  # a staff accept of a video made before the record's number changed
    "QUEUE_FULL": 429,  # one requester's share of the processing queue (sessions._check_queue_share)
    ReasonCode.ATTEMPTS_EXCEEDED.value: 429,  # a citizen's daily limit; a proxy binding's lock is a LockedError
    ReasonCode.VIDEO_DUPLICATE.value: 409,
    ServiceCode.NONCE_REUSED.value: 409,
    ServiceCode.NONCE_EXPIRED.value: 410,
    ReasonCode.PROXY_LIMIT_REACHED.value: 409,
    ReasonCode.PROXY_NOT_BOUND.value: 404,
    ReasonCode.PROXY_BINDING_WITHDRAWN.value: 409,  # staff accepting a proxy certification the elder withdrew
    # Service codes (catalog: service.certification.catalog.SERVICE_MESSAGES_ZH).
    "NOT_FOUND": 404,
    "ROSTER_FORMAT": 422,
    "ROSTER_TOO_LARGE": 413,
    "UNAUTHORIZED": 401,
    "TOKEN_EXPIRED": 401,
    "SESSION_STATE": 409,
    "REVIEW_DECISION": 422,  # a staff decision other than accept or reject (review.settle)
    "SESSION_EXPIRED": 410,
    "UPLOAD_CONFLICT": 409,
    "IDEMPOTENCY_MISMATCH": 409,
    # A supervisor's finding on a roster change of ID number (service/certification/identity_review.py).
    "IDENTITY_CHANGE_UNKNOWN": 404,
    "IDENTITY_CHANGE_SUPERSEDED": 409,
    "IDENTITY_REVIEW_SELF": 403,
    "CERTIFICATE_INVALID": 400,
    # A new copy of a void certificate for its holder (the public check answers these as 200, valid: false).
    "CERTIFICATE_EXPIRED": 409,
    "CERTIFICATE_DECEASED": 409,
    "CERTIFICATE_SUPERSEDED": 409,
    "CERTIFICATE_REVOKED": 409,
    # A supervisor's revocation of a certification (service/certification/revocation.py).
    "CERTIFICATION_REVOKED": 409,
    "REVOKE_REASON": 422,
    # The second supervisor a console revocation needs (revocation.revoke_by_two; docs/security.md, Part BK), and
    # an admin-made account in a two-person rule (service/features/console/accounts.py).
    "REVOKE_SELF": 409,
    "REVOKE_REASON_DIFFERS": 409,
    "SECOND_UNCONFIRMED": 409,
    # A revocation asked for by the operator API (service/certification/revoke_request.py).
    "REVOKE_TARGET": 422,
    "CERTIFICATION_UNKNOWN": 404,
    "CERTIFICATION_AMBIGUOUS": 409,
    # A supervisor's hold on a session's media (service/certification/evidence_hold.py).
    "EVIDENCE_HOLD_REASON": 422,
    "EVIDENCE_RELEASE_NOTE": 422,
    "EVIDENCE_PURGED": 409,
    "EVIDENCE_NONE": 409,
    "EVIDENCE_HOLD_ENDED": 409,
    "EVIDENCE_RELEASE_SELF": 409,  # the asker confirming their own release request (docs/security.md, Part BC)
    # A console alert marked handled without a note, or by the recorder it asks another to check (alert_review.py).
    "ALERT_NOTE": 422,
    "ALERT_REVIEW_SELF": 409,
    "ALERT_CHANGED": 409,  # a certification added to the alert after the page closing it was read (Part BN)
    "CONSENT_REQUIRED": 400,
    "ADMIN_KEY_REQUIRED": 403,
    "STAFF_CHANNEL_FORBIDDEN": 403,
    "PROXY_CHANNEL_FORBIDDEN": 403,
    "DATE_OVERRIDE_FORBIDDEN": 403,
    "INVALID_DATE": 422,
    "CYCLE_SUSPENSION_SPIKE": 409,
    "EVENT_IDS_REUSED": 409,  # a payment export while events reuse exported ids (registry.export_events)
    "DB_UNAVAILABLE": 503,
    "STORAGE_FULL": 507,
    # The HTTP layer's own refusals (below: Starlette's by status, request validation, unexpected errors).
    "BAD_REQUEST": 400,
    "FORBIDDEN": 403,
    "METHOD_NOT_ALLOWED": 405,
    "NOT_ACCEPTABLE": 406,
    "REQUEST_TOO_LARGE": 413,
    "JSON_INVALID": 422,
    "FIELD_MISSING": 422,
    "FIELD_INVALID": 422,
    "INTERNAL_ERROR": 500,
    "BUSY": 503,
    "STORAGE": 503,
    # Proxy certification (service.certification.catalog.PROXY_MESSAGES_ZH).
    "PROXY_OPERATOR_UNVERIFIED": 403,
    "PROXY_CONSENT_PENDING": 409,
    "PROXY_CONSENT_EXPIRED": 409,
    "PROXY_CONSENT_GIVEN": 409,
    "PROXY_ALREADY_BOUND": 409,  # a retried bind: the answer names the live binding (binding_id)
    "PROXY_BINDING_LOCKED": 423,
    "PROXY_RELATIONSHIP": 422,
    "PROXY_ID_NUMBER": 422,
    "PROXY_OPERATOR_VERIFIED": 409,
    "PROXY_BINDING_REVOKED": 409,
    "PROXY_DECISION_PENDING": 409,
    "PROXY_ELDER_SLOTS_FULL": 409,
    "PROXY_ACCOUNT_ELSEWHERE": 403,
    "PROXY_ACCOUNT_IN_APP": 403,  # the same refusal, to the H5 pages: the account is a channel key's
    "PROXY_ACCOUNT_APP_WITHDRAWN": 403,  # the same, where that key is no longer in force (its app withdrawn)
    "PROXY_BINDING_HELD": 409,  # a decision's reason, never raised
    "PROXY_UNLOCK_NOTE": 422,  # the console's 解除锁定 form without its note (binding_unlock.py)
    "PROXY_UNLOCK_FLAGGED": 403,  # a flagged binding's lock, asked by staff who are not a supervisor
    # Assisted certification requests (service.certification.catalog.ASSIST_MESSAGES_ZH): a form problem is 422.
    "ASSIST_KIND": 422,
    "ASSIST_PHONE": 422,
    "ASSIST_REPLY": 422,
    "ASSIST_OPEN": 409,
    "ASSIST_DECEASED": 409,
    "ASSIST_REVIEWED": 409,
    "ASSIST_CLOSED": 409,
    "ASSIST_NO_VIDEO": 409,
    "ASSIST_VIDEO_PURGED": 409,
    # The WeChat channel and the H5 pages.
    "WECHAT_DISABLED": 404,
    "CARD_READ_DISABLED": 404,
    "WECHAT_TOKEN_UNSET": 403,
    "WECHAT_SIGNATURE": 403,
    "WECHAT_STALE": 403,
    "CASE_HELD": 409,
    "WECHAT_BAD_MESSAGE": 400,
    "BAD_URL": 400,
    "WECHAT_UNAVAILABLE": 503,
    "WECHAT_DUPLICATE_RISK": 422,
    "WECHAT_NOTICE_UNREACHABLE": 409,
    "WECHAT_CLOSE_NOTE": 422,
}
MEDIA_CODES = (ReasonCode.MEDIA_TOO_LARGE.value, ReasonCode.MEDIA_UNSUPPORTED.value)

# A requester past its share of the queue (QUEUE_FULL) sends the same upload again after this many seconds: about a
# quarter of the two minutes two workers take for a full share (QUEUED_PER_REQUESTER, 300), so some of its sessions
# are decided by then (each requester gets its turn: job_order); told nothing, a client re-sent its video at once, in
# a loop, each try refused after its body arrived.
QUEUE_FULL_RETRY_S = 30
# Answers that mean "the same request succeeds later" say when (Retry-After, seconds): the one list, read by every
# handler below. A database busy or restarting answers within seconds; a full disk waits for an operator.
RETRY_AFTER_S: dict[str, int] = {
    "BUSY": 2,
    "DB_UNAVAILABLE": 2,
    "STORAGE_FULL": 60,
    "QUEUE_FULL": QUEUE_FULL_RETRY_S,
}


def retry_after(code: str) -> dict[str, str] | None:
    """The Retry-After header of an answer with this code, if it is one to send again later."""
    seconds = RETRY_AFTER_S.get(code)
    return None if seconds is None else {"Retry-After": str(seconds)}


def http_status(exc: ServiceError) -> int:
    """The HTTP status a domain error is answered with (see STATUS_BY_KIND and STATUS_BY_CODE)."""
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_KIND:
            return STATUS_BY_KIND[kind]
    return STATUS_BY_CODE.get(exc.code, DEFAULT_STATUS)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # some errors add fields (e.g. attempts left)

    code: str
    message: str
    detail: str


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message" (Chinese, for citizens), "detail"}}``."""

    error: ErrorDetail


_ERROR_STATUSES = {
    400: "Bad request",
    401: "Missing or unknown X-API-Key or session token",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    410: "Gone (expired)",
    405: "Method not allowed on this path",
    413: "Upload or roster too large",
    415: "Unsupported media type (the content itself, whatever the declared type)",
    422: "Invalid request (JSON_INVALID, FIELD_MISSING, FIELD_INVALID with `fields`) or media (a reason code)",
    423: "Locked",
    429: "Too many requests",
    500: "Unexpected failure (INTERNAL_ERROR); nothing to fix in the request",
    502: "Upstream (WeChat) failure",
    503: "Database or storage temporarily unavailable; retry",
    507: "Media storage full; retry later",
}
# Declared on every route (OpenAPI), so clients and schemathesis know the error body: one body for every status.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERROR_STATUSES.items()
}


def error_body(code: str, message: str, detail: str, **extra: object) -> dict[str, object]:
    # Never an empty detail: integrators log and match on it ("database busy", "not found", …).
    return {"error": {"code": code, "message": message, "detail": detail or code.lower().replace("_", " "), **extra}}


# Starlette's own refusals (unparsable multipart body, unknown path, wrong method, …) by status.
# (Their messages, like every code's, are in the catalog: service.certification.catalog.)
HTTP_CODES = {
    STATUS_BY_CODE[code]: code
    for code in (
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "NOT_ACCEPTABLE",
        "REQUEST_TOO_LARGE",
        ReasonCode.MEDIA_UNSUPPORTED.value,
        ServiceCode.RATE_LIMITED.value,
    )
}

# Request validation (FastAPI/pydantic) by what went wrong (the field is named after the message).
VALIDATION_CODES = {"json_invalid": "JSON_INVALID", "missing": "FIELD_MISSING"}
FIELD_INVALID = "FIELD_INVALID"


def validation_body(errors: Sequence[Any]) -> dict[str, object]:
    """A request that does not match the declared parameters or body, in the error shape: the first problem's
    code (JSON_INVALID, FIELD_MISSING or FIELD_INVALID) and every problem under ``fields`` (where, which field,
    what is wrong in English)."""
    fields: list[dict[str, str]] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"  # body, query, path, header, cookie
        ctx = err.get("ctx") or {}
        name = str(ctx.get("field") or ".".join(loc[1:]) or where)  # a model-level rule names its field in ctx
        fields.append({"location": where, "field": name, "type": str(err.get("type", "")), "problem": err["msg"]})
    first = fields[0] if fields else {"location": "request", "field": "request", "type": "", "problem": "invalid"}
    code = VALIDATION_CODES.get(first["type"], FIELD_INVALID)
    message = message_zh(code)
    if first["type"] != "json_invalid":
        message = f"{message}: {first['field']}"
    detail = "; ".join(f"{f['location']} {f['field']}: {f['problem']}" for f in fields)
    return error_body(code, message, detail, fields=fields)


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


def internal_error(exc: Exception) -> JSONResponse:
    """A bug, not the client's fault: logged with its traceback, answered in the error shape without internals.
    Called by the request-context middleware (service/infra/observability/middleware.py) while the request's ids
    are set, so that the log line carries them and the 500 its X-Request-ID and security headers."""
    log.error("unhandled %s", type(exc).__name__, exc_info=exc)
    body = error_body("INTERNAL_ERROR", message_zh("INTERNAL_ERROR"), "unexpected server error")
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    # Routes take the router's responses when they are added: called before any router is included.
    app.router.responses = {**ERROR_RESPONSES, **app.router.responses}

    @app.exception_handler(ServiceError)
    async def service_error(_req: Request, exc: ServiceError) -> JSONResponse:
        body = error_body(exc.code, exc.message_zh, exc.detail, **exc.extra)
        return JSONResponse(body, status_code=http_status(exc), headers=retry_after(exc.code))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
        # The error shape, not FastAPI's {"detail": [...]}; non-finite numbers made strings on the way.
        return JSONResponse(validation_body(json_safe(jsonable_encoder(exc.errors()))), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_req: Request, exc: Exception) -> JSONResponse:
        # Only a failure outside the request-context middleware lands here (it answers the others itself).
        return internal_error(exc)

    @app.exception_handler(HTTPException)
    async def http_error(_req: Request, exc: HTTPException) -> JSONResponse:
        # Same body as every other error (found by schemathesis: a malformed body answered {"detail": ...}).
        code = HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        body = error_body(code, message_zh(code), str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(PipelineError)
    async def pipeline_error(_req: Request, exc: PipelineError) -> JSONResponse:
        media = isinstance(exc, MediaError) and exc.reason.value in MEDIA_CODES
        status = STATUS_BY_CODE[exc.reason.value] if media else 422
        return JSONResponse(error_body(exc.reason.value, message_zh(exc.reason), exc.detail), status_code=status)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(_req: Request, exc: DBAPIError) -> JSONResponse:
        # Busy (SQLite lock timeout) or unreachable database (PostgreSQL down or restarting, connection
        # dropped): nothing was acknowledged, the client retries (uploads are idempotent by request id). The
        # pool drops dead connections itself (pre-ping), so the API recovers without a restart.
        log.warning("database: %s", exc.orig)
        busy = "locked" in str(exc.orig)
        code, detail = ("BUSY", "database busy") if busy else ("DB_UNAVAILABLE", "database unavailable")
        body = error_body(code, message_zh(code), detail)
        return JSONResponse(body, status_code=503, headers=retry_after(code))

    @app.exception_handler(StorageFullError)
    async def storage_full(_req: Request, exc: StorageFullError) -> JSONResponse:
        # 507 Insufficient Storage: the upload was not stored (no file, no row); the same request succeeds
        # once space is freed.
        log.error("storage full: %s", exc)
        body = error_body("STORAGE_FULL", message_zh("STORAGE_FULL"), "media storage full")
        return JSONResponse(body, status_code=507, headers=retry_after("STORAGE_FULL"))

    @app.exception_handler(StorageError)
    async def storage_error(_req: Request, exc: StorageError) -> JSONResponse:
        log.error("storage: %s", exc)
        return JSONResponse(error_body("STORAGE", message_zh("STORAGE"), ""), status_code=503)
