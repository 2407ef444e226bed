"""Activity-evidence import (hospital settlements, bank-counter records) and the alert list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from service.certification.catalog import message_zh
from service.features.console import access_log, accounts, routes_assist, scope
from service.features.console.alert_review import (
    EVIDENCE_IMPORTED,
    RECERTIFIED,
    RESOLVE_REFUSALS,
    STAFF_CERTIFIED,
    list_alerts,
    resolve_alert,
)
from service.features.console.alt_cert import DEATH_ALERT, AltCertError, EvidenceReport, import_evidence
from service.features.console.assist_hold_end import ALERT as REVIEW_VIDEO_EXPIRING
from service.features.console.identity_alerts import FINDING_REFUSALS, FINDINGS, settle_identity_alert
from service.features.console.identity_alerts import KIND as IDENTITY_CHANGED
from service.features.console.inputs import RowId
from service.features.console.look_alikes import KIND as LOOK_ALIKE
from service.features.console.look_alikes import other_id
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
# The alerts page's kinds, in Chinese (its table and the count of open ones by kind).
ALERT_KIND_ZH = {
    DEATH_ALERT: "死亡后仍认证通过",
    LOOK_ALIKE: "同一张脸在两个账户",
    IDENTITY_CHANGED: "名册变更身份证号",
    RECERTIFIED: "冒领撤销后又由工作人员认证",
    STAFF_CERTIFIED: "工作人员办理的认证待复核",
    EVIDENCE_IMPORTED: "活动轨迹凭证导入待复核",
    REVIEW_VIDEO_EXPIRING: "人工审核视频即将删除",
}


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
        if report is not None and report.refused:
            error, report = report.refused, None
    return render(request, "evidence.html", staff, status=200 if error is None else 422, report=report, error=error)


@router.get("/alerts")
def alerts_page(request: Request, staff: Supervisor) -> Response:
    asked = request.query_params.get("kind", "")
    kind = asked if asked in ALERT_KIND_ZH else None  # `?kind=`: the open alerts of one kind
    with unit(request) as db:
        listing = list_alerts(db, staff, kind)
        rows, others = listing.rows, listing.others
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
            kind_zh=ALERT_KIND_ZH,
            open_by_kind=listing.open_by_kind,
            unlisted=listing.unlisted,
            kind=kind,
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
    seen: Annotated[int | None, Form()] = None,
) -> Response:
    """Mark an alert handled, saying what was done (alert_review.resolve_alert; a roster change of ID number is
    settled by a finding instead: /identity). `seen`: how many certifications the page showed in it."""
    check_csrf(staff, csrf)
    with unit(request) as db:
        refused = resolve_alert(db, staff, alert_id, note, seen)
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
