"""Response models of the public API (sessions, certificates, registry): what each route answers, for OpenAPI,
clients and schemathesis' response checks.

Each route returns its model (built from keyword arguments, or validated from the dict a core function answers);
every model allows extra keys and routes answer with ``response_model_exclude_unset=True``: the body has exactly
the keys the route set (no optional key added as null, none dropped), as before the models were declared; the
declared fields are the documented contract. tests/service/adapters/http/test_openapi_compat.py keeps it
compatible, test_response_models.py keeps each route's return type and model the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from service.certification.certificates import verify_url
from service.certification.sessions import light_challenge

if TYPE_CHECKING:
    from service.certification.certificates import Standing
    from service.certification.context import ServiceContext
    from service.certification.models import Certification
    from service.certification.sessions import NewSession


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class RouteOptions(TypedDict):
    response_model_exclude_unset: bool


class CsvResponse(PlainTextResponse):
    """A CSV answer (`text/csv; charset=utf-8`), declared as such in OpenAPI by `response_class=CsvResponse`: a route
    that returned a CSV without it was documented as JSON, and a generated client decoded the payment export as
    JSON."""

    media_type = "text/csv"


class PngResponse(Response):
    """A PNG image, declared as binary `image/png` by `**PNG` (the certificate: it was documented as JSON)."""

    media_type = "image/png"


PNG: dict[str, Any] = {
    "response_class": PngResponse,
    "responses": {200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
}

# Routes with one of these models: the body has exactly the keys the route set (see the module docstring).
EXACT: RouteOptions = {"response_model_exclude_unset": True}


class LightChallenge(ApiModel):
    """The screen-light challenge (docs/wechat.md, "The screen-light challenge"): while recording, the capture page
    fills the screen around the face with each colour in turn; the face's response is measured from the video."""

    colours: list[str] = Field(description="the colours' names, in the order shown")
    rgb: list[list[int]] = Field(description="each colour as sRGB [r, g, b], 0-255, in the same order")
    step_ms: int = Field(description="how long each colour stays on screen, in milliseconds")
    start_ms: int = Field(description="when the first colour shows, in milliseconds after the recording starts")
    record_after_ms: int = Field(
        0,
        description="how long to go on recording after the last colour ends, in milliseconds: the analysis reads "
        "the frames there (a camera shows a colour a little after the screen does)",
    )
    enforced: bool = Field(
        False,
        description="whether a pass needs the face to follow the colours (LIGHT_CHALLENGE enforce): a client that "
        "cannot show them (a phone's own camera app) must not send a video, but send the person to staff",
    )


class Challenge(ApiModel):
    actions: list[str] = Field(description="the actions to perform in the video, in order")
    nonce: str = Field(description="sent back with the video upload")
    expires_at: str = Field(description="UTC, ISO 8601 with Z")
    light: LightChallenge | None = Field(
        description="the colours to show while recording, timed from the recorder's start; null: none issued"
    )


class SessionCreated(ApiModel):
    session_id: str
    token: str = Field(description="the session token (Authorization: Bearer) for the citizen's requests")
    challenge: Challenge
    expires_at: str


def certificate_view(name: str, id_masked: str, cert: Certification, st: Standing, base_url: str) -> Certificate:
    """The answer to every route that serves a certificate (the session's holder, a bound relative)."""
    return Certificate(
        name=name,
        id_masked=id_masked,
        certified_on=cert.certified_on.isoformat(),
        valid_until=cert.valid_until.isoformat(),
        code=cert.code,
        verify_url=verify_url(base_url, cert.code),
        method=st.method,
        method_zh=st.method_zh,
    )


def session_created(ctx: ServiceContext, new: NewSession) -> SessionCreated:
    """The answer to every route that opens a session (the citizen's API, the proxy API)."""
    s = new.session
    shown = light_challenge(ctx, s)  # the one reader of the stored sequence, as the status and the worker read it
    light = LightChallenge.model_validate(shown) if shown is not None else None
    challenge = Challenge(
        actions=s.actions, nonce=s.nonce, expires_at=s.nonce_expires_at.isoformat() + "Z", light=light
    )
    return SessionCreated(
        session_id=s.id, token=new.token, challenge=challenge, expires_at=s.expires_at.isoformat() + "Z"
    )


class ChallengeView(ApiModel):
    actions: list[str]
    expires_at: str
    light: LightChallenge | None = Field(description="the colours to show while recording; null: none issued")


class Uploads(ApiModel):
    id_card: bool
    video: bool


class SessionStatus(ApiModel):
    session_id: str
    state: str = Field(description="open, queued, processing, decided, failed or expired")
    channel: str
    challenge: ChallengeView
    uploads: Uploads
    decision: str | None = Field(description="accept, review, reject or retry once decided")
    reasons: list[str] | None
    decided_at: str | None
    processing: str | None = Field(None, description="while queued: normal, or delayed (no live worker)")
    message: str | None = Field(None, description="Chinese message when processing is delayed")


class SessionResult(SessionStatus):
    result: dict[str, Any] | None = Field(description="the decision with reasons, scores and model versions")


class SessionOutcome(ApiModel):
    """A session's outcome as the channel key that opened it reads it (GET /api/v1/sessions/{id}/outcome)."""

    session_id: str
    state: str = Field(description="open, queued, processing, decided, failed or expired")
    channel: str
    decision: str | None = Field(description="accept, review, reject or retry once decided")
    reasons: list[str]
    decided_at: str | None
    reviewed: bool = Field(description="the decision is staff's (a review case they settled)")


class ListedOutcome(SessionOutcome):
    """A session's outcome in its key's list (GET /api/v1/sessions/outcomes), with whom it certified."""

    external_id: str
    id_masked: str = Field(description="the person's ID number, masked")


class OutcomeList(ApiModel):
    """One page of the sessions a channel key opened, by decision time then session id."""

    items: list[ListedOutcome]
    next: str | None = Field(description="the next page's `after` (null: no more)")


class Review(ApiModel):
    machine_decision: str | None
    decision: str
    reviewer: str
    note: str


class ReviewOutcome(ApiModel):
    session_id: str
    decision: str
    review: Review
    replayed: bool = Field(description="a retry of the request (its Idempotency-Key) answered as the first")


class Certificate(ApiModel):
    name: str
    id_masked: str
    certified_on: str
    valid_until: str
    code: str
    verify_url: str
    method: str = Field(description="how the person was certified: self, proxy (by a relative) or staff")
    method_zh: str = Field(description="the same in words: 本人认证, 亲属代办认证, 经办机构办理")


class CertificateCheck(ApiModel):
    valid: bool = Field(description="genuine and valid on checked_on (the bureau's date)")
    status: str = Field(
        description="valid, revoked (by the office: found fraudulent), expired, deceased (the person recorded "
        "deceased since) or superseded"
    )
    message: str = Field(description="the status in Chinese, for the person checking")
    checked_on: str = Field(description="the bureau's date (Asia/Shanghai by default) the status is of")
    certification_id: int
    id_masked: str
    name_masked: str | None = Field(None, description="张*英; absent when superseded (the record names another person)")
    certified_on: str
    valid_until: str
    method: str = Field(description="self, proxy (a relative certified the person) or staff")
    method_zh: str


class RosterReport(ApiModel):
    import_id: int | None
    filename: str
    created: int
    updated: int
    unchanged: int
    rejected: int
    grace_dated: int
    encoding: str | None = Field(description="the CSV's as read (UTF-8, UTF-8 (BOM), UTF-16, GB18030); null: XLSX")
    identity_changed: int = Field(description="records the file gave another ID number (each audited, each alerted)")
    death_kept: list[str] = Field(
        description="external ids of records held as deceased whose row gives a living status: the death stands "
        "(a supervisor withdraws a death recorded by mistake in the console)"
    )
    death_withdrawn_kept: list[str] = Field(
        description="external ids of records whose death a supervisor withdrew and whose row still says deceased, "
        "as at its last import (no date of death: the death withdrawn); they stay living (a death since is "
        "registered in the console; a row saying deceased after the roster said living applies)"
    )
    suspension_not_applied: list[str] = Field(
        description="external ids of records held active whose row says suspended (e.g. transferred out): the "
        "status is not applied (only a certification or staff decide a payment here), but the cycle no longer "
        "chases them (no reminders, not on the due-soon or overdue lists, not suspended by the cycle run) until a "
        "row says active again",
    )
    lapsed_on_import: list[str] = Field(
        description="external ids of new records whose row's date had lapsed or ends within due_soon_days - 1 "
        "days of the import (e.g. transferred in with their previous bureau's date): valid for due_soon_days - 1 "
        "days from the import (due soon, reminded), not overdue before",
    )
    suspension_kept: list[str] = Field(
        description="external ids of records never certified that the cycle run suspended on their first grace "
        "date, whose row postpones the first campaign (a later cycle_start, still ahead): the suspension and the "
        "date stay (only a certification resumes a payment here); tell the person to certify",
    )
    rejected_rows: list[dict[str, Any]]


class BeneficiaryView(ApiModel):
    external_id: str
    id_masked: str
    name: str
    region: str
    region_name: str | None
    benefit_types: list[str]
    status: str
    cycle_state: str = Field(
        description="certified, awaiting_first (dated by the first-import grace, never certified), due_soon, overdue, "
        "awaiting_decision (overdue, a certification made in time still being decided), stopped_by_roster (held "
        "active, the roster says the benefit system stopped paying them, e.g. transferred out: the cycle does not "
        "chase them), deceased or undated"
    )
    valid_until: str | None
    last_certified_on: str | None
    suspended_on: str | None
    template_enrolled: bool


class StatusList(ApiModel):
    which: str = Field(alias="list", description="due_soon, overdue, awaiting_decision or suspended")
    date: str
    count: int
    items: list[BeneficiaryView]


class CycleRun(ApiModel):
    date: str
    suspended: int
    sessions_expired: int
    media_purged: int
    media_orphans_removed: int


class Health(ApiModel):
    status: str = Field(description="always ok: the process answers")


class ReadinessCheck(ApiModel):
    ok: bool
    error: str | None = Field(None, description="the failing check's exception class, or why it gave no answer")


class ReadinessBody(ApiModel):
    status: str = Field(description="ready or unready (then the answer is a 503)")
    failing: list[str] = Field(description="names of the failing checks")
    checks: dict[str, ReadinessCheck]


class Revocation(ApiModel):
    """A certification revoked by the operator API (POST /api/v1/certifications/revoke)."""

    certification_id: int
    session_id: str
    external_id: str
    certified_on: str
    reason: str = Field(description="impersonation, wrong_accept or other")
    revoked_at: str = Field(description="UTC, ISO 8601 with Z")
    counted: bool = Field(description="it was the record's present person's (false: made before an ID-number change)")
    valid_until: str | None = Field(description="the person's validity recomputed without it")
    last_certified_on: str | None
    template_cleared: bool = Field(description="the face template it may have enrolled was dropped")
    evidence: str = Field(
        description="the session's ID-card photo and video: held (kept as evidence from the retention purge),"
        " purged (deleted already at the end of their retention period: nothing to hold), none (never stored),"
        " not_held (a revocation for another reason: a supervisor may hold them in the console)"
    )
    evidence_held_until: str | None = Field(description="when held: the hold's end, UTC, ISO 8601 with Z")
    replayed: bool = Field(description="true: a retried request (same Idempotency-Key), answered as the first")
