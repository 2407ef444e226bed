"""One writer at a time over a piece of work no single row stands for (a run over many rows, a log's head)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def one_writer_at_a_time(db: Session, key: int) -> None:
    """Holds the caller's transaction, to its commit or rollback, against every other taking `key`: a second one
    waits here, then reads what the first committed. Where it comes among the row locks is the caller's rule
    (service/certification/lock_order.py: the restore records' and the warning run's first, the audit chain's last).
    PostgreSQL: a transaction-level advisory lock on `key`. SQLite: the transaction begun now (BEGIN IMMEDIATE,
    service/infra/db/engine.py), the database's one write lock, whatever the key."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    else:
        db.connection()
