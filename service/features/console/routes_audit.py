"""Audit log viewer (supervisors and admins): newest first, filtered by action or actor, with the result of
`verify-audit`'s check (audit_chain.check_log: the hash chain and the anchors in the media store; on every view the
recent tail, the head and the newest anchor; 完整校验 all of it). A scoped supervisor lists the entries of the
staff their scope covers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from service.certification.staff_audit import ConsoleAuditEntry, action_prefix
from service.features.console import audit_chain, scope
from service.features.console.inputs import SeqNumber
from service.features.console.web import PREFIX, Supervisor, config_of, ctx_of, no_store, render, unit

router = APIRouter(prefix=PREFIX)
TAIL = 2000


@router.get("/audit")
def audit_page(
    request: Request, staff: Supervisor, action: str = "", actor: str = "", before: SeqNumber = 0, full: int = 0
) -> Response:
    size = config_of(request).page_size
    with unit(request) as db:
        q = select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(size)
        if action:
            q = q.where(action_prefix(action[:64], db.get_bind().dialect.name))  # by index (staff_audit.py)
        if actor:
            q = q.where(ConsoleAuditEntry.actor == actor[:64])
        if before > 0:
            q = q.where(ConsoleAuditEntry.seq < before)
        actors = scope.audit_actors(db, staff)
        if actors is not None:  # a scoped supervisor: their district's staff only (the chain is checked whole)
            q = q.where(ConsoleAuditEntry.actor.in_(actors))
        entries = db.scalars(q).all()
        head = db.scalar(select(func.max(ConsoleAuditEntry.seq))) or 0
        # The recent tail is checked on every view; the whole chain on request (it grows all year).
        start = 1 if full else max(1, head - TAIL + 1)
        check = audit_chain.check_log(db, ctx_of(request).storage, full=bool(full), from_seq=start)
        # Reading the log is itself recorded (it names who looked at which records).
        audit_chain.record(
            db, staff.actor, "audit.view", "-", {"action": action, "actor": actor, "before": before, "full": bool(full)}
        )
    older = entries[-1].seq if len(entries) == size else None
    return no_store(
        render(
            request,
            "audit.html",
            staff,
            entries=entries,
            check=check,
            action=action,
            actor=actor,
            older=older,
            start=start,
        )
    )
