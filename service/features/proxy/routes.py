"""HTTP API of proxy certification, under /api/v1/proxy. A relative (operator) authenticates with the bearer
token from POST /operators and only ever sees their own bindings: another relative's ids answer 404."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, Field, StrictBool, StringConstraints, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.reasons import ReasonCode
from proxy_auth import ConsentMethod
from service.adapters.http.deps import (
    DB,
    NO_NUL,
    AdminClient,
    ApiCaller,
    ApiClient,
    Ctx,
    SessionToken,
    require_admin_key,
)
from service.adapters.http.schemas import (
    EXACT,
    PNG,
    Certificate,
    PngResponse,
    SessionCreated,
    certificate_view,
    session_created,
)
from service.certification.audit import MISS, asked, audit_read
from service.certification.certificates import Standing, certificate_png
from service.certification.errors import NotFoundError
from service.certification.models import Beneficiary, Certification
from service.features.proxy import bindings, copies, operators, sessions
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.history import read_history
from service.features.proxy.models import ENDED_STATUSES, BindingStatus, ProxyBinding, ProxyOperator
from service.features.proxy.schemas import (
    BindingHistory,
    BindingView,
    Consent,
    ElderHistory,
    OperatorToken,
    OperatorView,
)
from service.infra.clock import local_today
from service.infra.security import ID_INPUT_MAX

router = APIRouter(prefix="/api/v1/proxy", tags=["proxy"])


def current_operator(ctx: Ctx, db: DB, token: SessionToken) -> ProxyOperator:
    return operators.authenticate(db, ctx, token)


Operator = Annotated[ProxyOperator, Depends(current_operator)]

# PostgreSQL stores and compares no NUL character in a text column: a NUL in an id or in typed text made the query
# itself fail (a 500; SQLite stored it). Such a request is invalid (422 FIELD_INVALID), refused before any query.
BindingId = Annotated[str, Path(pattern=NO_NUL)]
# A person's name: not blanks only (it was stored as the relative's empty name), stripped as the roster's is.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_NUL)]


class OperatorLogin(BaseModel):
    channel: Literal["wechat", "phone"]
    channel_id: str = Field(min_length=1, max_length=128, description="WeChat openid or phone number")


class VerificationBody(BaseModel):
    id_number: str = Field(min_length=15, max_length=ID_INPUT_MAX)  # as typed: normalised before it is judged
    name: Name
    template_consent: StrictBool = Field(default=False, description="keep the operator's face template")


class BindingBody(BaseModel):
    elder_name: Name
    elder_id_number: str = Field(min_length=15, max_length=ID_INPUT_MAX)
    relationship: str = Field(description="spouse, child, child_in_law, grandchild, sibling, other")


# The English detail of each refusal `bindings.record_consent` answers (the Chinese message is the catalog's).
CONSENT_REFUSALS = {
    ReasonCode.PROXY_LIMIT_REACHED.value: "the elder already has as many relatives as allowed",
    bindings.PROXY_CONSENT_EXPIRED: "the elder did not consent within the consent window: bind again",
    ReasonCode.PROXY_NOT_BOUND.value: "binding ended",
    bindings.PROXY_CONSENT_GIVEN: "the binding's consent is recorded already",
}


class ConsentBody(BaseModel):
    method: ConsentMethod = ConsentMethod.LIVE_VIDEO
    staff_id: str | None = Field(
        default=None, max_length=64, pattern=NO_NUL, description="approving staff member (staff only)"
    )

    @model_validator(mode="after")
    def _staff(self) -> ConsentBody:
        # A staff approval names its staff member: without one, 422 FIELD_MISSING naming the field (it was 422
        # with UNAUTHORIZED, the code of a 401: "authenticate again").
        if self.method is ConsentMethod.STAFF_APPROVAL and not self.staff_id:
            raise PydanticCustomError("missing", "staff_id is required for staff approval", {"field": "staff_id"})
        return self


@router.post(
    "/operators",
    summary="Find or create the relative's account; returns a fresh operator token",
    response_model=OperatorToken,
    **EXACT,
)
def login(ctx: Ctx, db: DB, caller: ApiCaller, body: OperatorLogin) -> OperatorToken:
    out = operators.login(db, ctx, body.channel, body.channel_id, caller.actor, caller.aliases)
    db.commit()
    return OperatorToken(operator_id=out.operator.id, token=out.token, created=out.created)


@router.post(
    "/operators/me/verification",
    status_code=201,
    summary="Open the relative's own real-name session",
    response_model=SessionCreated,
    **EXACT,
)
def verification(ctx: Ctx, db: DB, op: Operator, body: VerificationBody) -> SessionCreated:
    new = sessions.open_verification(db, ctx, op, body.id_number, body.name, body.template_consent)
    db.commit()
    return session_created(ctx, new)


def binding_view(db: Session, row: ProxyBinding) -> BindingView:
    """The binding as the proxy API answers it (every route that returns a binding). Here, not in bindings.py:
    the proxy hooks import bindings, and the HTTP schemas must stay out of the hooks' imports (the HTTP package
    imports the app, which installs the hooks)."""
    name, masked, deceased = bindings.shown_elder(db, row)
    consent = Consent(method=row.consent_method, at=_iso(row.consent_at)) if row.consent_at else None
    return BindingView(
        binding_id=row.id,
        status=row.status,
        status_zh=bindings.status_zh(row.status),
        ended=row.status in ENDED_STATUSES,
        relationship=row.relationship,
        elder_name=name,
        elder_id_masked=masked,
        # Only to a relative the elder (or staff) accepted, while the binding is in force (`bindings.accepted`, the H5
        # pages' rule too): neither a stranger's pending binding nor an ended one learns of a death.
        elder_deceased=deceased and bindings.accepted(row),
        consent=consent,
        locked=row.locked,
        flagged=row.flagged,
        failures=row.failures,
        created_at=_iso(row.created_at),
        ended_at=_iso(row.ended_at),
    )


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() + "Z" if t is not None else None


def _own_bindings(db: Session, op: ProxyOperator) -> list[BindingView]:
    rows = db.scalars(select(ProxyBinding).where(ProxyBinding.operator_id == op.id).order_by(ProxyBinding.created_at))
    return [binding_view(db, r) for r in rows]


@router.get(
    "/operators/me", summary="The relative's verification state and bindings", response_model=OperatorView, **EXACT
)
def me(db: DB, op: Operator) -> OperatorView:
    return OperatorView(
        operator_id=op.id,
        verified=op.verified_at is not None,
        name=op.name,
        id_masked=op.id_masked,
        template_enrolled=op.template_enrolled,
        bindings=_own_bindings(db, op),
    )


@router.post(
    "/bindings", status_code=201, summary="Bind an elder (verified relatives only)", response_model=BindingView, **EXACT
)
def bind(ctx: Ctx, db: DB, op: Operator, body: BindingBody) -> BindingView:
    row = bindings.bind(db, ctx, op, body.elder_name, body.elder_id_number, body.relationship)
    db.commit()
    return binding_view(db, row)


@router.get(
    "/bindings", summary="The caller's own bindings (ended ones included)", response_model=list[BindingView], **EXACT
)
def list_bindings(db: DB, op: Operator) -> list[BindingView]:
    return _own_bindings(db, op)


@router.delete(
    "/bindings/{binding_id}",
    summary="Unbind (recorded; counts in the lifetime history)",
    response_model=BindingView,
    **EXACT,
)
def unbind(db: DB, op: Operator, binding_id: BindingId) -> BindingView:
    row = bindings.unbind(db, op, binding_id)
    db.commit()
    return binding_view(db, row)


@router.post(
    "/bindings/{binding_id}/consent",
    summary="The elder's consent: a live consent session, or staff",
    response_model=BindingView | SessionCreated,
    **EXACT,
)
def consent(
    ctx: Ctx,
    db: DB,
    request: Request,
    token: SessionToken,
    binding_id: BindingId,
    body: ConsentBody,
    x_api_key: Annotated[str | None, Header()] = None,
) -> BindingView | SessionCreated:
    if body.method is ConsentMethod.STAFF_APPROVAL:
        # Staff approve at the counter or on a home visit: an operator key (a channel back-end must not be able to
        # consent for an elder) plus the staff member's id.
        client = require_admin_key(ctx, request, x_api_key)
        staff_id = body.staff_id or ""  # set: the model requires it for a staff approval
        row = bindings.staff_binding(db, binding_id)
        who = f"{client}:staff:{staff_id}"
        refusal = bindings.record_consent(db, row, ConsentMethod.STAFF_APPROVAL, staff_id, who)
        db.commit()  # the consent, or its refusal (audited; an overdue binding expired with it)
        if refusal is not None:
            raise ProxyServiceError(refusal, CONSENT_REFUSALS.get(refusal, "consent refused"))
        return binding_view(db, row)
    op = operators.authenticate(db, ctx, token)
    row = bindings.own_binding(db, op, binding_id, for_update=True)
    new = sessions.open_consent(db, ctx, op, row)
    db.commit()
    return session_created(ctx, new)


class UnlockBody(BaseModel):
    staff_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    note: str = Field(default="", max_length=500, pattern=NO_NUL)


@router.post(
    "/bindings/{binding_id}/unlock",
    summary="Staff lift a lock after reviewing the failures (or flag)",
    response_model=BindingView,
    **EXACT,
)
def unlock(db: DB, client: AdminClient, binding_id: BindingId, body: UnlockBody) -> BindingView:
    row = db.get(ProxyBinding, binding_id, with_for_update=True)
    if row is None or row.status in ENDED_STATUSES:
        raise NotFoundError("binding", code="PROXY_NOT_BOUND")
    bindings.unlock(db, row, f"{client}:staff:{body.staff_id}", body.note)
    db.commit()
    return binding_view(db, row)


@router.post(
    "/bindings/{binding_id}/sessions",
    status_code=201,
    summary="Open a proxy certification session",
    response_model=SessionCreated,
    **EXACT,
)
def open_session(ctx: Ctx, db: DB, op: Operator, binding_id: BindingId) -> SessionCreated:
    row = bindings.own_binding(db, op, binding_id, for_update=True)
    new = sessions.open_certification(db, ctx, op, row)
    db.commit()
    return session_created(ctx, new)


@router.get(
    "/history",
    summary="Who certified the elder of one of the caller's bindings, and when",
    response_model=BindingHistory,
    **EXACT,
)
def history(db: DB, op: Operator, binding_id: Annotated[str, Query(pattern=NO_NUL)]) -> BindingHistory:
    row = bindings.own_binding(db, op, binding_id)
    if row.status in ENDED_STATUSES:
        raise NotFoundError("binding", code="PROXY_NOT_BOUND")
    if row.status == BindingStatus.PENDING_CONSENT:
        # The history names the elder's other relatives: not before the elder has agreed to this one.
        raise ProxyServiceError("PROXY_CONSENT_PENDING", "the elder has not consented to this binding yet")
    elder = db.get(Beneficiary, row.beneficiary_id)
    if elder is None:  # not expected (a foreign key): answered as an unbound binding
        raise NotFoundError("binding", code="PROXY_NOT_BOUND")
    entries = read_history(db, operators.actor(op), elder, op, row.id)
    return BindingHistory(binding_id=row.id, entries=entries)


@router.get(
    "/elders/{external_id}/history",
    summary="The same history for the elder (channel back-end, staff)",
    response_model=ElderHistory,
    **EXACT,
)
def elder_view(db: DB, client: ApiClient, external_id: Annotated[str, Path(pattern=NO_NUL)]) -> ElderHistory:
    elder = db.scalar(select(Beneficiary).where(Beneficiary.external_id == external_id))
    if elder is None:
        audit_read(db, client, MISS, "-", {"by": "external_id", "asked": asked(external_id)})
        raise NotFoundError("beneficiary", code="BENEFICIARY_UNKNOWN")
    entries = read_history(db, client, elder)  # a read of personal data, audited (one rule with the relative's)
    return ElderHistory(external_id=external_id, entries=entries)


def _elder_copy(
    ctx: Ctx, db: Session, op: ProxyOperator, binding_id: str
) -> tuple[Beneficiary, Certification, Standing]:
    """The latest valid certificate of the elder of one of the caller's bindings in force (`copies.elder_copy`)."""
    return copies.elder_copy(db, op, binding_id, local_today(ctx.settings))


@router.get(
    "/bindings/{binding_id}/certificate",
    summary="The latest valid certificate of the elder of one of the caller's bindings (JSON)",
    response_model=Certificate,
    **EXACT,
)
def elder_certificate(ctx: Ctx, db: DB, op: Operator, binding_id: BindingId) -> Certificate:
    elder, cert, st = _elder_copy(ctx, db, op, binding_id)
    return certificate_view(elder.name, elder.id_masked, cert, st, ctx.settings.public_base_url)


@router.get("/bindings/{binding_id}/certificate.png", summary="The same certificate, printable (QR code)", **PNG)
def elder_certificate_png(ctx: Ctx, db: DB, op: Operator, binding_id: BindingId) -> PngResponse:
    elder, cert, st = _elder_copy(ctx, db, op, binding_id)
    return PngResponse(certificate_png(elder.name, cert, st, ctx.settings.public_base_url))
