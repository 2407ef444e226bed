"""Audit log viewer (supervisors and admins): newest first, filtered by action or actor, with the result of
re-verifying the whole hash chain."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from service.console import audit_chain
from service.console.web import PREFIX, Supervisor, config_of, no_store, render, unit
from service.db.console_models import ConsoleAuditEntry

router = APIRouter(prefix=PREFIX)


@router.get("/audit")
def audit_page(request: Request, staff: Supervisor, action: str = "", actor: str = "", before: int = 0) -> Response:
    size = config_of(request).page_size
    with unit(request) as db:
        q = select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(size)
        if action:
            q = q.where(ConsoleAuditEntry.action.startswith(action[:64]))
        if actor:
            q = q.where(ConsoleAuditEntry.actor == actor[:64])
        if before > 0:
            q = q.where(ConsoleAuditEntry.seq < before)
        entries = db.scalars(q).all()
        check = audit_chain.verify_chain(db)
        # Reading the log is itself recorded (it names who looked at which records).
        audit_chain.record(db, staff.actor, "audit.view", "-", {"action": action, "actor": actor, "before": before})
    older = entries[-1].seq if len(entries) == size else None
    return no_store(
        render(request, "audit.html", staff, entries=entries, check=check, action=action, actor=actor, older=older)
    )
