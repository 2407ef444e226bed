"""A revocation's look-up of the record's validity before the revoked accept, and an operator's retried review, read
the audit entries of their one target, not every entry of their action (`cycle.certified`: one per accepted
certification, millions after a few years; docs/security.md)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.orm import Session

from service.certification import revocation
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Certification, utcnow
from service.certification.request_replay import first_request
from tests.service import factories

INDEX = "ix_audit_entries_target_action"


def test_revocation_and_review_retry_read_their_targets_entries_by_index(ctx: ServiceContext, db: Session) -> None:
    b = factories.beneficiary(db, ctx.keyring)
    now = utcnow()
    for action in (revocation.CERTIFIED_ACTION, "session.review"):
        rows = [{"at": now, "actor": "system", "action": action, "target": f"T{i}", "detail": {}} for i in range(3000)]
        db.execute(insert(AuditEntry), rows)
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ANALYZE audit_entries"))
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM audit_entries" in statement:
            statements.append((statement, parameters))

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        assert revocation._before(db, b, Certification(id=1)) is None
        assert first_request(db, "session.review", "T7", "key", "asked", ("api:ops",)) is None
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    assert len(statements) == 2
    conn = db.connection()
    for statement, parameters in statements:
        if conn.dialect.name == "postgresql":
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters))
            removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
            assert "Seq Scan on audit_entries" not in plan and max(removed, default=0) < 100, plan
        else:
            plan = "\n".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
        assert INDEX in plan, plan
