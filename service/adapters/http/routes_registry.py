"""Beneficiary registry for machine clients: roster import, lookups, status lists, exports, the cycle run."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from service.adapters.http.deps import DB, AdminClient, ApiClient, Ctx, ExternalId, IsoDate
from service.adapters.http.schemas import EXACT, BeneficiaryView, CsvResponse, CycleRun, RosterReport, StatusList
from service.adapters.http.upload import read_limited
from service.certification import registry
from service.certification.audit import MISS, asked, audit_read, person_ref
from service.certification.daily_run import business_day, daily_run
from service.certification.errors import NotFoundError, ServiceError
from service.certification.models import Beneficiary, one_of_hashes
from service.certification.roster import import_roster, import_terms
from service.infra.config import Settings
from service.infra.security import ID_INPUT_MAX, normalise_id

router = APIRouter(prefix="/api/v1", tags=["registry"])
# Query dates are `YYYY-MM-DD` as a body's are (deps.IsoDate): lax parsing read `since=1704067200` (seconds since
# 1970) as 1 January 2024 and `since=86400` as 2 January 1970, the payment file's whole history.
Today = Annotated[IsoDate | None, Query(description="simulated date, YYYY-MM-DD (default: today)")]
Since = Annotated[IsoDate | None, Query(description="YYYY-MM-DD: events dated or recorded on or after that day")]
MAX_ROSTER_BYTES = 64 * 1024 * 1024
# A list's formats: any other value is a 422 FIELD_INVALID naming both (it was answered as JSON, audited as asked).
ListFormat = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


def _day(today: dt.date | None, settings: Settings) -> dt.date:
    return business_day(settings, today)  # the one rule for simulated dates (service/certification/daily_run.py)


@router.post(
    "/roster",
    summary="Import the roster (CSV or XLSX; operator key); idempotent, rejected rows reported",
    response_model=RosterReport,
    **EXACT,
)
def post_roster(ctx: Ctx, db: DB, actor: AdminClient, file: Annotated[UploadFile, File()]) -> RosterReport:
    data = read_limited(file, MAX_ROSTER_BYTES)
    report = import_roster(db, ctx.keyring, file.filename or "roster.csv", data, actor, import_terms(ctx)).to_dict()
    db.commit()  # acknowledged only once committed
    return RosterReport.model_validate(report)


@router.get("/beneficiaries/{external_id}", response_model=BeneficiaryView, **EXACT)
def get_beneficiary(
    ctx: Ctx, db: DB, actor: ApiClient, external_id: ExternalId, today: Today = None
) -> BeneficiaryView:
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == external_id))
    if b is None:
        # A miss is audited too: a client trying ids one after another leaves a trace (the id asked, in the
        # details, where a number-like one is masked).
        audit_read(db, actor, MISS, "-", {"by": "external_id", "asked": asked(external_id)})
        raise NotFoundError("beneficiary", "BENEFICIARY_UNKNOWN")
    (row,) = registry.views(db, [b], _day(today, ctx.settings), ctx.rules, cases=ctx.hooks.case_sources())
    view = BeneficiaryView.model_validate(row)
    audit_read(db, actor, "beneficiary.read", b.external_id, {"by": "external_id"})
    return view


class NumberLookup(BaseModel):
    id_number: str = Field(max_length=ID_INPUT_MAX, description="the beneficiary's ID number")


@router.post(
    "/beneficiaries/lookup",
    summary="Look a beneficiary up by ID number, sent in the body (hashed, never stored in clear)",
    response_model=BeneficiaryView,
    **EXACT,
)
def lookup_beneficiary(ctx: Ctx, db: DB, actor: ApiClient, body: NumberLookup, today: Today = None) -> BeneficiaryView:
    return find_beneficiary(ctx, db, actor, body.id_number, today)


@router.get(
    "/beneficiaries",
    summary="Deprecated: use POST /api/v1/beneficiaries/lookup",
    description="The number in the URL reaches the access logs of every proxy and gateway in front of the service "
    "(the service masks only its own): send it in the body of POST /api/v1/beneficiaries/lookup instead.",
    response_model=BeneficiaryView,
    deprecated=True,
    **EXACT,
)
def find_beneficiary(ctx: Ctx, db: DB, actor: ApiClient, id_number: str, today: Today = None) -> BeneficiaryView:
    numbers = ctx.keyring.id_hashes(normalise_id(id_number))  # under any signing key in use
    b = db.scalar(select(Beneficiary).where(one_of_hashes(Beneficiary.id_hash, numbers)))
    if b is None:
        # "Is this number a pensioner?" asked of many numbers is the oracle to see: audited, without the number.
        audit_read(db, actor, MISS, "-", {"by": "id_number"})
        raise NotFoundError("beneficiary", "BENEFICIARY_UNKNOWN")
    (row,) = registry.views(db, [b], _day(today, ctx.settings), ctx.rules, cases=ctx.hooks.case_sources())
    view = BeneficiaryView.model_validate(row)
    audit_read(db, actor, "beneficiary.read", b.external_id, {"by": "id_number"})
    return view


@router.get(
    "/lists/{which}",
    summary="due_soon, overdue, awaiting_decision or suspended; JSON or CSV (format=csv)",
    response_model=StatusList,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    **EXACT,
)
def get_list(
    ctx: Ctx, db: DB, actor: AdminClient, which: str, today: Today = None, format: ListFormat = "json"
) -> StatusList | CsvResponse:
    if which not in registry.LISTS:
        raise ServiceError("NOT_FOUND", f"list must be one of {registry.LISTS}")
    day = _day(today, ctx.settings)
    cases = ctx.hooks.case_sources()  # open requests for a home visit or a manual review (cycle.being_decided)
    people = registry.status_list(db, which, day, ctx.rules, cases=cases)
    rows = registry.views(db, people, day, ctx.rules, cases=cases)
    shown = [person_ref(b.external_id, b.id) for b in people]
    registry.audit_shown(db, actor, "list.read", which, {"people": len(rows), "format": format}, shown)
    if format == "csv":
        return CsvResponse(registry.to_csv(rows, registry.EXPORT_COLUMNS))
    items = [BeneficiaryView.model_validate(row) for row in rows]
    return StatusList(list=which, date=day.isoformat(), count=len(rows), items=items)


@router.get(
    "/exports/{kind}.csv",
    summary="suspensions (deaths among them, kind deceased) or resumptions for the payment system",
    response_class=CsvResponse,
)
def export_events(ctx: Ctx, db: DB, actor: AdminClient, kind: str, since: Since = None) -> CsvResponse:
    if kind not in registry.EXPORTS:
        raise ServiceError("NOT_FOUND", "export must be suspensions or resumptions")
    rows = registry.export_events(db, ctx.storage, kind, since, ctx.settings)
    detail = {"rows": len(rows), "since": since.isoformat() if since else None}
    registry.audit_shown(db, actor, "export.read", kind, detail, [row["person"] for row in rows])
    return CsvResponse(registry.to_csv(rows, registry.EVENT_COLUMNS))


@router.post(
    "/cycle/run",
    summary="Daily run (operator key): suspend overdue beneficiaries, purge media past retention",
    response_model=CycleRun,
    **EXACT,
)
def post_cycle_run(
    ctx: Ctx,
    actor: AdminClient,
    today: Annotated[
        IsoDate | None, Query(description="simulated date, YYYY-MM-DD: development and test environments only")
    ] = None,
    force: Annotated[bool, Query(description="run even when an unusual share would be suspended")] = False,
) -> CycleRun:
    # A date far ahead would suspend everyone and purge every medium: never outside development and test.
    run = daily_run(ctx, actor, today, force)
    return CycleRun(
        date=run.date.isoformat(),
        suspended=run.suspended,
        sessions_expired=run.sessions_expired,
        media_purged=run.media_purged,
        media_orphans_removed=run.media_orphans_removed,
    )
