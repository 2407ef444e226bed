"""Activity-evidence import (hospital settlements, bank-counter records) and the alert list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from service.certification.catalog import message_zh
from service.certification.models import Beneficiary
from service.features.console import access_log, accounts, routes_assist, scope
from service.features.console.alert_review import RESOLVE_REFUSALS, resolve_alert
from service.features.console.alt_cert import AltCertError, EvidenceReport, import_evidence
from service.features.console.identity_alerts import FINDING_REFUSALS, FINDINGS, settle_identity_alert
from service.features.console.inputs import RowId
from service.features.console.look_alikes import KIND as LOOK_ALIKE
from service.features.console.look_alikes import other_id, other_people
from service.features.console.models import ConsoleAlert
from service.features.console.web import (
    PREFIX,
    Supervisor,
    check_csrf,
    config_of,
    ctx_of,
    no_store,
    redirect,
    render,
    unit,
)

router = APIRouter(prefix=PREFIX)
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024


@router.get("/evidence")
def evidence_page(request: Request, staff: Supervisor) -> Response:
    return render(request, "evidence.html", staff, report=None, error=None)


@router.post("/evidence")
async def evidence_import(
    request: Request, staff: Supervisor, file: Annotated[UploadFile, File()], csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(staff, csrf)
    data = await file.read(MAX_EVIDENCE_BYTES + 1)
    report: EvidenceReport | None = None
    error = None
    if len(data) > MAX_EVIDENCE_BYTES:
        error = "文件过大"
    else:
        try:
            with unit(request) as db:
                report = import_evidence(db, ctx_of(request), staff, file.filename or "evidence.csv", data)
        except AltCertError as exc:
            error = exc.message
    return render(request, "evidence.html", staff, status=200 if error is None else 422, report=report, error=error)


@router.get("/alerts")
def alerts_page(request: Request, staff: Supervisor) -> Response:
    with unit(request) as db:
        found = db.execute(
            select(ConsoleAlert, Beneficiary)
            .join(Beneficiary, Beneficiary.id == ConsoleAlert.beneficiary_id)
            .where(scope.region_filter(staff, Beneficiary.region))
            .order_by(ConsoleAlert.resolved, ConsoleAlert.id.desc())
            .limit(200)
        ).all()
        others = other_people(db, [a for a, _ in found])
        rows = scope.alerts_in_scope(staff, [(a, b) for a, b in found], others)
        # Who saw whom: both people of a look-alike pair.
        shown = [p.external_id for a, b in rows for p in (b, others.get(other_id(a) or -1)) if p is not None]
        people = [p.id for a, b in rows for p in (b, others.get(other_id(a) or -1)) if p is not None]
        access_log.record_list(db, staff.actor, "alerts.view", "-", {"n": len(rows), "shown": shown}, people)
        # How many staff of the supervisor's scope are over the day's line of 查阅量 (counted, not named: the
        # volume page lists them and records who was listed).
        limit = config_of(request).views_alert_per_day
        actors = scope.audit_actors(db, staff)
        heavy = len(access_log.heavy_viewers_today(db, ctx_of(request).settings, limit, actors)[0])
        pending = accounts.pending_accounts(db, staff)  # admin-made supervisor accounts to confirm (Part BK)
    # `?e=` names a refusal by its code, shown as the catalog's sentence; anything else shows nothing.
    code = request.query_params.get("e", "")
    error = message_zh(code) if code in FINDING_REFUSALS | RESOLVE_REFUSALS else None
    return no_store(
        render(
            request,
            "alerts.html",
            staff,
            rows=rows,
            others=others,
            look_alike=LOOK_ALIKE,
            identity_findings=FINDINGS,
            error=error,
            heavy=heavy,
            views_limit=limit,
            listed_factor=access_log.LISTED_FACTOR,
            pending_accounts=pending,
        )
    )


@router.post("/alerts/{alert_id}/resolve")
def resolve(
    request: Request,
    staff: Supervisor,
    alert_id: RowId,
    csrf: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    """Mark an alert handled, saying what was done (alert_review.resolve_alert; a roster change of ID number is
    settled by a finding instead: /identity)."""
    check_csrf(staff, csrf)
    with unit(request) as db:
        refused = resolve_alert(db, staff, alert_id, note)
    return redirect(f"/alerts?e={refused}" if refused else "/alerts")


@router.post("/alerts/{alert_id}/identity")
def identity_finding(
    request: Request,
    staff: Supervisor,
    alert_id: RowId,
    csrf: Annotated[str, Form()] = "",
    finding: Annotated[str, Form()] = "",
) -> Response:
    """A supervisor's finding on a roster change of ID number: `same_person` (a typo corrected) or
    `other_person` (identity_alerts.settle_identity_alert)."""
    check_csrf(staff, csrf)
    with unit(request) as db:
        refused = settle_identity_alert(db, ctx_of(request), staff, alert_id, finding)
    return redirect(f"/alerts?e={refused}" if refused else "/alerts")


# Citizens' manual-review / home-visit requests: closed through the same alternative certification.
router.include_router(routes_assist.router)
