"""Read, don't type: the card photo comes first and the page shows the name and number read from it, large,
for the person to confirm ("是您本人吗?"), corrected by hand only if wrong.

The read is a convenience: it says only what the presented photo shows, never anything of the roster. The
session is then opened with the confirmed values through the usual `POST /h5/api/sessions` (name and number
against the roster, one answer for every mismatch) and the same photo goes through the session's card check
(the number it shows against the roster's hash): the server stays authoritative."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import JSONResponse

from pipelines.reasons import ReasonCode
from service.adapters.http.deps import Ctx
from service.adapters.http.errors import error_body
from service.adapters.http.upload import read_limited
from service.certification.errors import ServiceError
from service.features.wechat.h5 import identity
from service.features.wechat.h5.cardcheck import card_checker
from service.infra.clock import local_today

log = logging.getLogger(__name__)
router = APIRouter()


def problem_response(problems: list[ReasonCode]) -> JSONResponse:
    """422 with the problems a new photo fixes, first one as the error (the shape of the session card check)."""
    items = [{"code": p.value, "message": p.message_zh} for p in problems]
    # The API's error contract (code, message, detail), the list of problems added.
    detail = "the card photo needs a new shot: " + ", ".join(p.value for p in problems)
    body = error_body(problems[0].value, problems[0].message_zh, detail, problems=items)
    return JSONResponse(body, status_code=422)


@router.post("/api/card-read")
def card_read(ctx: Ctx, request: Request, file: Annotated[UploadFile, File()]) -> JSONResponse:
    identity.require_openid(ctx, request)  # WeChat users only: the OCR costs seconds of CPU
    if not ctx.settings.h5.card_check:  # no reader in the API: the page asks for name and number instead
        raise ServiceError("CARD_READ_DISABLED", "the card is read after the upload")
    data = read_limited(file, ctx.settings.uploads.max_image_bytes)
    checker = card_checker(request, ctx.settings.certification.model_pack, ctx.settings.h5.card_reads)
    read = checker.read(data, local_today(ctx.settings))  # a number born on the bureau's today is valid
    if read.problems:
        return problem_response(list(read.problems))
    return JSONResponse({"name": read.name or "", "id_number": read.id_number})
