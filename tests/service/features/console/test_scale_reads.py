"""The console's reads over years of data (docs/security.md): the review queue reads the open cases by index, not
every session the bureau ever decided; the dashboard reads no decision record and no list of every reviewed
session; the audit-log viewer's account and action filters read the log by index, not all of it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, text
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Channel, SessionDecision, SessionState, utcnow
from service.certification.staff_audit import ConsoleAuditEntry, action_prefix
from service.features.console import dashboard, review_queue
from service.features.console.models import ReviewDecision
from service.infra.clock import local_today
from tests.service import factories


def _statements(ctx: ServiceContext, run: Any, wanted: str) -> list[tuple[str, Any]]:
    """The statements `run()` issues whose text contains `wanted`."""
    found: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if wanted in statement:
            found.append((statement, parameters))

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        run()
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    assert found
    return found


def _assert_indexed(conn: Connection, statement: str, parameters: Any, table: str, index: str) -> None:
    """`statement` reads `table` by `index`, filtering no more than a handful of rows out (PostgreSQL: run)."""
    if conn.dialect.name == "postgresql":
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters))
        removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
        assert f"Seq Scan on {table} " not in plan and max(removed, default=0) < 100, plan
    else:
        plan = "\n".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
        assert f"SCAN {table}" not in plan, plan
    assert index in plan, plan


def test_the_queue_reads_the_open_cases_by_index_not_the_decided_history(ctx: ServiceContext, db: Session) -> None:
    """`state = 'decided'` alone found every session ever decided, each then filtered on its decision: the queue page
    and 下一件 cost in proportion to years of history, not to the cases open."""
    b = factories.beneficiary(db, ctx.keyring)
    now = utcnow()
    history = SessionState.DECIDED, SessionDecision.ACCEPT
    db.add_all(factories.session_row(b.id, state=history[0], decision=history[1], decided_at=now) for _ in range(3000))
    for state, decision in ((SessionState.DECIDED, SessionDecision.REVIEW), (SessionState.FAILED, None)):
        db.add(factories.session_row(b.id, state=state, decision=decision, decided_at=now, queued_at=now))
    db.flush()
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ANALYZE cert_sessions"))
    page: list[review_queue.QueuePage] = []
    found = _statements(ctx, lambda: page.append(review_queue.list_queue(db)), "FROM cert_sessions")
    assert page[0].total == 2
    light = [(st, p) for st, p in found if "cert_sessions.decision = " in st]  # the open-case filter's
    assert light
    for statement, parameters in light:
        _assert_indexed(db.connection(), statement, parameters, "cert_sessions", "ix_cert_sessions_state_decision")


def test_the_dashboard_reads_no_decision_record_and_counts_as_before(
    ctx: ServiceContext, db: Session, staff_users: dict[str, int]
) -> None:
    """Every session decided in the year travelled whole to the dashboard (its decision record, about 1.5 KB), and
    every reviewed session's id: seconds per view at a few 10⁴ sessions. The database now counts; the figures are
    those of the rule (machine_decision) on known data."""
    now = utcnow()
    b = factories.beneficiary(db, ctx.keyring)

    def decided(decision: str | None, hours: float, **fields: Any) -> str:
        s = factories.session_row(
            b.id,
            state=fields.pop("state", SessionState.DECIDED),
            decision=decision,
            queued_at=now - dt.timedelta(hours=hours + 1),
            decided_at=fields.pop("decided_at", now - dt.timedelta(hours=1)),
            **fields,
        )
        db.add(s)
        db.flush()
        return s.id

    decided(SessionDecision.ACCEPT, 1)
    decided(SessionDecision.ACCEPT, 3)
    looked_at = decided(SessionDecision.ACCEPT, 5)  # a console decision row: no automatic accept
    db.add(
        ReviewDecision(session_id=looked_at, user_id=staff_users["rev1"], stage="final", decision="accept", reason="-")
    )
    decided(SessionDecision.REJECT, 7)
    settled = factories.review_result(review={"machine_decision": "review"})
    decided(SessionDecision.ACCEPT, 9, result=settled)  # a review case staff settled: a review
    decided(SessionDecision.ACCEPT, 11, result={"review": {"machine_decision": None}})  # a failed job settled: none
    decided(SessionDecision.ACCEPT, 13, channel=Channel.STAFF)  # at the counter: no machine decision
    decided(SessionDecision.REVIEW, 15)  # open: counted, no time to decision yet
    decided(SessionDecision.ACCEPT, 2, decided_at=now - dt.timedelta(days=400))  # before the window
    db.flush()
    columns: list[str] = []

    def read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        columns.extend(str(d[0]) for d in cursor.description or ())

    event.listen(ctx.engine, "after_cursor_execute", read)
    try:
        st = dashboard.compute(db, ctx.rules, now, today=local_today(ctx.settings))
    finally:
        event.remove(ctx.engine, "after_cursor_execute", read)
    assert "result" not in columns and "session_id" not in columns  # no decision record, no list of reviewed ids
    assert dict(st.decision_mix) == {"accept": 3, "reject": 1, "review": 2}
    assert (st.decided, st.auto_accepted) == (6, 2)
    assert st.median_decision_h == pytest.approx(5)  # 1, 3, 5, 7, 9 hours (the settled review's staff time too)
    assert st.backlog == 1 and st.totals["certified"] + st.totals["undated"] == 1


def test_the_audit_viewer_filters_read_the_log_by_index(
    ctx: ServiceContext, db: Session, staff_users: dict[str, int]
) -> None:
    """A filter by account or by action walked the whole staff log back from its newest entry (`actor` had no
    index; `action LIKE 'x%'` uses none on SQLite, nor on PostgreSQL under a bureau's collation): a rare account or
    action read every entry."""
    head = db.scalar(text("SELECT coalesce(max(seq), 0) FROM console_audit")) or 0
    rows = [
        {
            "seq": head + i,
            "at": utcnow(),
            "actor": "staff:many",
            "action": "queue.view",
            "target": f"T{i}",
            "detail": "{}",
            "prev_hash": "x",
            "hash": f"h-scale-{i}",
        }
        for i in range(1, 3001)
    ]
    rows[-10]["actor"], rows[-10]["action"] = "staff:rare", "certification.revoke"
    db.execute(
        text(
            "INSERT INTO console_audit (seq, at, actor, action, target, detail, prev_hash, hash) "
            "VALUES (:seq, :at, :actor, :action, :target, :detail, :prev_hash, :hash)"
        ),
        rows,
    )
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ANALYZE console_audit"))
    base = select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(50)
    dialect = db.get_bind().dialect.name
    for q, index in (
        (base.where(ConsoleAuditEntry.actor == "staff:rare"), "ix_console_audit_actor_seq"),
        (base.where(action_prefix("certification.", dialect)), "ix_console_audit_action"),
        (base.where(action_prefix("certification.revoke", dialect)), "ix_console_audit_action"),
    ):
        got: list[ConsoleAuditEntry] = []
        [(statement, parameters)] = _statements(
            ctx, lambda q=q, got=got: got.extend(db.scalars(q)), "FROM console_audit"
        )
        assert [e.action for e in got] == ["certification.revoke"]
        _assert_indexed(db.connection(), statement, parameters, "console_audit", index)
