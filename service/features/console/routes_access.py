"""Supervisors' pages on who looked at whom (access_log.py): a person's "查阅记录" and the day's heavy viewers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.features.console import access_log, audit_chain, scope
from service.features.console.inputs import RowId, SeqNumber
from service.features.console.web import PREFIX, Supervisor, config_of, ctx_of, no_store, render, unit

router = APIRouter(prefix=PREFIX)


@router.get("/beneficiaries/{bid}/access")
def access_page(request: Request, staff: Supervisor, bid: RowId, before: SeqNumber = 0) -> Response:
    with unit(request) as db:
        b = scope.beneficiary(db, staff, bid)  # out of the staff member's scope: as missing
        if b is None:
            return render(request, "message.html", staff, status=404, message="人员不存在", back="/roster")
        entries = access_log.person_entries(db, b, before)
        # Reading who looked at a person is a look at them: recorded under them, so it is listed here too.
        audit_chain.record(db, staff.actor, access_log.ACTION, audit_chain.person_target(b), {"before": before})
    older = entries[-1].seq if len(entries) == access_log.PAGE else None
    return no_store(render(request, "access_log.html", staff, b=b, entries=entries, older=older))


@router.get("/access/volume")
def volume_page(request: Request, staff: Supervisor) -> Response:
    limit = config_of(request).views_alert_per_day
    with unit(request) as db:
        # A scoped supervisor: the staff their scope covers, as in the audit log's viewer.
        actors = scope.audit_actors(db, staff)
        viewers, since = access_log.heavy_viewers_today(db, ctx_of(request).settings, limit, actors)
        audit_chain.record(db, staff.actor, access_log.VOLUME_ACTION, "-", {"listed": [v.actor for v in viewers]})
    return no_store(
        render(
            request,
            "access_volume.html",
            staff,
            viewers=viewers,
            limit=limit,
            since=since,
            listed_factor=access_log.LISTED_FACTOR,
        )
    )
