"""Dashboard page, its CSV export and its charts as standalone SVG images."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from service.certification.models import utcnow
from service.features.console import audit_chain, scope
from service.features.console.auth import Staff
from service.features.console.dashboard import COLUMN_ZH, COLUMNS, Stats, compute, mix_svg, regions_svg, to_csv
from service.features.console.web import PREFIX, CurrentStaff, ctx_of, render, unit
from service.infra.clock import local_today

router = APIRouter(prefix=PREFIX)


def _stats(request: Request, staff: Staff, level: int) -> Stats:
    """The figures of the people in `staff`'s region scope."""
    digits = level if level in (2, 4, 6) else 4
    with unit(request) as db:
        ctx = ctx_of(request)
        return compute(db, ctx.rules, utcnow(), region_digits=digits, today=local_today(ctx.settings), staff=staff)


@router.get("/dashboard")
def dashboard(request: Request, staff: CurrentStaff, level: int = 4) -> Response:
    st = _stats(request, staff, level)
    # The SVG is built from numbers and escaped region names only (see dashboard.py).
    return render(
        request,
        "dashboard.html",
        staff,
        st=st,
        level=level,
        columns=COLUMNS,
        column_zh=COLUMN_ZH,
        scope_text=scope.describe(st.scope),
        regions_svg=Markup(regions_svg(st)),
        mix_svg=Markup(mix_svg(st)),
    )


@router.get("/dashboard.csv")
def dashboard_csv(request: Request, staff: CurrentStaff, level: int = 4) -> Response:
    st = _stats(request, staff, level)
    with unit(request) as db:
        audit_chain.record(db, staff.actor, "dashboard.export", "csv", {"level": level, "scope": list(staff.scope)})
    headers = {"Content-Disposition": f'attachment; filename="dashboard-{st.today.isoformat()}.csv"'}
    # BOM: spreadsheet programs on Chinese Windows read UTF-8 CSV correctly only with it.
    return Response("\ufeff" + to_csv(st), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/dashboard/{chart}.svg")
def dashboard_svg(request: Request, staff: CurrentStaff, chart: str, level: int = 4) -> Response:
    st = _stats(request, staff, level)
    if chart == "regions":
        return Response(regions_svg(st), media_type="image/svg+xml")
    if chart == "decisions":
        return Response(mix_svg(st), media_type="image/svg+xml")
    return Response(status_code=404)
