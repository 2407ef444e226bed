"""Certification sessions: created by a channel (API key), then driven by the citizen's session token."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from pydantic import BaseModel, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from pipelines.reasons import ReasonCode
from service.adapters.http.deps import (
    DB,
    NO_NUL,
    AdminCaller,
    ApiCaller,
    Ctx,
    IsoDate,
    OptionalRequestKey,
    SessionId,
    SessionToken,
)
from service.adapters.http.schemas import (
    EXACT,
    OutcomeList,
    ReviewOutcome,
    SessionCreated,
    SessionOutcome,
    SessionResult,
    SessionStatus,
    session_created,
)
from service.adapters.http.upload import Arrival, read_limited
from service.certification import outcome, review, sessions, uploads
from service.certification.audit import MISS, asked, audit_read
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, Channel, SessionState, UploadKind
from service.infra.security import ID_INPUT_MAX

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])


class SessionCreate(BaseModel):
    external_id: str | None = Field(
        default=None, max_length=64, pattern=NO_NUL, description="beneficiary id in the benefit system"
    )
    id_number: str | None = Field(
        default=None, max_length=ID_INPUT_MAX, pattern=NO_NUL, description="or the certifying person's ID number"
    )
    channel: Channel = Channel.SELF
    # Strict: "yes", "false", 1 are refused (422), never read as consent.
    template_consent: StrictBool = Field(default=False, description="consent to keep this selfie's face template")

    @model_validator(mode="after")
    def _who(self) -> SessionCreate:
        # Without either, the request is incomplete (422 FIELD_MISSING naming the field), not an unknown person.
        if not self.external_id and not self.id_number:
            raise PydanticCustomError("missing", "external_id or id_number is required", {"field": "external_id"})
        return self


@router.post(
    "",
    status_code=201,
    summary="Open a session: returns the action challenge and the session token",
    response_model=SessionCreated,
    **EXACT,
)
def create_session(ctx: Ctx, db: DB, caller: ApiCaller, body: SessionCreate) -> SessionCreated:
    if body.channel == Channel.STAFF and not caller.admin:
        # The staff channel is not held to the daily failure limit: only the bureau's own (operator) keys.
        raise ServiceError("STAFF_CHANNEL_FORBIDDEN", "staff-channel sessions need an operator (admin) key")
    if body.channel == Channel.PROXY:
        # A relative's session is opened by the proxy API only (service/features/proxy/sessions.py), linked to its
        # binding: one opened here had no relative behind it, none of the proxy rules, and its certificate said
        # 亲属代办认证 (a relative certified) to the relying party. Whatever the key.
        raise ServiceError("PROXY_CHANNEL_FORBIDDEN", "proxy sessions are opened through /api/v1/proxy/bindings")
    b = _beneficiary(ctx, db, caller.actor, body)
    try:
        new = sessions.create_session(db, ctx, b, body.channel, body.template_consent, caller.actor)
    except ServiceError as exc:
        if exc.code != ReasonCode.BENEFICIARY_DECEASED:
            raise
        # "Is this person recorded dead?" is answered too: the same trace, naming whose record (nothing was written).
        audit_read(
            db, caller.actor, MISS, b.external_id, {**_asked_by(body), "refused": ReasonCode.BENEFICIARY_DECEASED.value}
        )
        raise
    db.commit()
    return session_created(ctx, new)


def _asked_by(body: SessionCreate) -> dict[str, str]:
    """How a session's person was asked for, as the look-ups' miss entries say it (never the number)."""
    if body.external_id:
        return {"by": "external_id", "asked": asked(body.external_id)}
    return {"by": "id_number"}


def _beneficiary(ctx: Ctx, db: DB, actor: str, body: SessionCreate) -> Beneficiary:
    """The session's person. A miss answers "is this a pensioner?" as the look-ups do (404 against 201), so it is
    audited as theirs is (`beneficiary.miss`, Part Y), committed now: the refusal rolls the request back."""
    try:
        return sessions.find_beneficiary(db, ctx, body.external_id, body.id_number)
    except ServiceError:
        audit_read(db, actor, MISS, "-", _asked_by(body))
        raise


def _upload(
    ctx: Ctx,
    db: DB,
    session_id: str,
    token: str | None,
    kind: UploadKind,
    file: UploadFile,
    request_id: str,
    nonce: str | None,
    arrived_at: dt.datetime | None,
) -> SessionStatus:
    limit = sessions.upload_limit(ctx.settings.uploads, kind)
    content_type = file.content_type or ""

    def read() -> bytes:
        return read_limited(file, limit)

    view = uploads.store_upload(
        db, ctx, session_id, token, kind, read, content_type, request_id, nonce, arrived_at=arrived_at
    )
    return SessionStatus.model_validate(view)


RequestId = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=64)]


@router.post(
    "/{session_id}/id-card", summary="Upload the ID-card photo (portrait side)", response_model=SessionStatus, **EXACT
)
def upload_id_card(
    ctx: Ctx,
    db: DB,
    token: SessionToken,
    session_id: SessionId,
    request_id: RequestId,
    file: Annotated[UploadFile, File()],
    arrived_at: Arrival,
) -> SessionStatus:
    # The card may be the upload that queues the session: stamped with its arrival, as the video (Part AU).
    return _upload(ctx, db, session_id, token, UploadKind.ID_CARD, file, request_id, None, arrived_at)


@router.post(
    "/{session_id}/video",
    summary="Upload the challenge video with the challenge nonce",
    response_model=SessionStatus,
    **EXACT,
)
def upload_video(
    ctx: Ctx,
    db: DB,
    token: SessionToken,
    session_id: SessionId,
    request_id: RequestId,
    file: Annotated[UploadFile, File()],
    nonce: Annotated[str, Form()],
    arrived_at: Arrival,
) -> SessionStatus:
    # Judged at the request's arrival (the server's clock, ArrivalMiddleware), not once the body is in.
    return _upload(ctx, db, session_id, token, UploadKind.VIDEO, file, request_id, nonce, arrived_at)


class ReviewBody(BaseModel):
    # An enum: "ACCEPT" or "approve" is a 422 FIELD_INVALID naming the field (it was SESSION_STATE, a 409's code).
    decision: Literal["accept", "reject"] = Field(description="accept or reject")
    reviewer: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    note: str = Field(default="", max_length=500, pattern=NO_NUL)


@router.post(
    "/{session_id}/review",
    summary="Staff settle a `review` decision (operator key; Idempotency-Key: a retry is answered as the first)",
    response_model=ReviewOutcome,
    **EXACT,
)
def post_review(
    ctx: Ctx,
    db: DB,
    caller: AdminCaller,
    session_id: SessionId,
    body: ReviewBody,
    request_key: OptionalRequestKey = None,
) -> ReviewOutcome:
    s = sessions.get_session(db, session_id)
    asked = (body.decision, body.reviewer, body.note, caller.actor)
    out = review.settle(db, ctx, s, *asked, request_key=request_key, aliases=caller.aliases)
    db.commit()
    return ReviewOutcome.model_validate(out)


@router.get(
    "/outcomes",
    summary="The outcomes of the sessions the calling key opened, decided in a period (paged, for reconciliation)",
    response_model=OutcomeList,
    **EXACT,
)
def list_outcomes(
    ctx: Ctx,
    db: DB,
    caller: ApiCaller,
    decided_from: Annotated[IsoDate, Query(description="YYYY-MM-DD: the bureau's first day, included")],
    decided_to: Annotated[IsoDate, Query(description="YYYY-MM-DD: the bureau's last day, included")],
    after: Annotated[str, Query(max_length=100, pattern=NO_NUL, description="the previous page's `next`")] = "",
    limit: Annotated[int, Query(ge=1, le=outcome.OUTCOMES_MAX_PAGE, description="sessions per page")] = 100,
) -> OutcomeList:
    # Declared before /{session_id}: "outcomes" would otherwise be read as a session id (a 401 for want of a token).
    days = (decided_from, decided_to)
    page = outcome.channel_outcomes(db, ctx, (caller.actor, caller.aliases), days, after, limit)
    return OutcomeList.model_validate({"items": page.items, "next": page.after})


@router.get("/{session_id}", summary="Processing status", response_model=SessionStatus, **EXACT)
def get_status(ctx: Ctx, db: DB, token: SessionToken, session_id: SessionId) -> SessionStatus:
    s = sessions.get_session(db, session_id)
    sessions.check_token(s, token, ctx.settings.certification.session_ttl_s)
    view = sessions.status_view(ctx, s)
    if s.state == SessionState.QUEUED:
        db.commit()  # ends this request's transaction (SQLite: BEGIN IMMEDIATE) before the heartbeat read
        view.update(sessions.processing_outlook(ctx))
    return SessionStatus.model_validate(view)


@router.get(
    "/{session_id}/result",
    summary="The decision with reasons, scores, thresholds and model versions",
    response_model=SessionResult,
    **EXACT,
)
def get_result(ctx: Ctx, db: DB, token: SessionToken, session_id: SessionId) -> SessionResult:
    s = sessions.get_session(db, session_id)
    sessions.check_token(s, token, ctx.settings.certification.session_ttl_s)
    view = sessions.status_view(ctx, s)
    view["result"] = with_deprecated_names(s.result) if s.state == SessionState.DECIDED else None
    return SessionResult.model_validate(view)


@router.get(
    "/{session_id}/outcome",
    summary="The outcome of a session the calling channel key opened (key, no token: also after SESSION_TTL_S)",
    response_model=SessionOutcome,
    **EXACT,
)
def get_outcome(ctx: Ctx, db: DB, caller: ApiCaller, session_id: SessionId) -> SessionOutcome:
    s = sessions.get_session(db, session_id)
    return SessionOutcome.model_validate(outcome.channel_outcome(db, ctx, s, caller.actor, caller.aliases))


def with_deprecated_names(result: dict[str, object] | None) -> dict[str, object] | None:
    """The liveness stage's Chinese messages are `messages`, as in every other output; until issue 24 they were
    `messages_zh`, and results stored then have only that name. API clients may read either: both are answered
    (`messages_zh` deprecated), whichever the row holds."""
    live = (result or {}).get("liveness")
    if result is None or not isinstance(live, dict):
        return result
    messages = live.get("messages", live.get("messages_zh", []))
    return {**result, "liveness": {**live, "messages": messages, "messages_zh": messages}}
