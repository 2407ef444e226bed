"""Schema changes a live PostgreSQL database takes during the day (the migrations' building blocks).

A plain ``CREATE INDEX`` holds a SHARE lock on its table for the whole build: on console_audit (millions of rows,
written by every console action) every staff action would wait minutes. On PostgreSQL an index on an existing table
is built ``CONCURRENTLY`` (writes go on; it waits for the transactions already writing the table, without a lock
wait that queues anyone), outside the migration's transaction. A concurrent build that fails (cancelled, the
process killed) leaves an INVALID index of that name behind, which would make every rerun fail on "already exists"
and which the planner never uses: it is dropped and built again. A valid one already there (a build that finished
before its migration was stamped) is kept. SQLite (the embedded file, one process) takes the plain statements.

Every other statement of a migration waits at most ``lock_timeout`` for its lock (alembic/env.py, LOCK_TIMEOUT): an
``ALTER TABLE`` queued behind a long transaction would otherwise block every query on the table meanwhile.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import inspect, text

from alembic import op

# What alembic/env.py sets for every migration's session on PostgreSQL, unless `-x lock_timeout=…` says otherwise:
# the longest an ALTER TABLE may queue (blocking the table's readers and writers behind it) before it gives up.
LOCK_TIMEOUT = "5s"
# SQLSTATE lock_not_available: a statement gave up waiting for its lock (lock_timeout).
LOCK_NOT_AVAILABLE = "55P03"
# The session-level advisory lock every migration run on PostgreSQL holds (alembic/env.py; released when its
# connection closes): one run at a time.
MIGRATION_LOCK = 7_263_001_019


def _postgresql() -> bool:
    return bool(op.get_context().dialect.name == "postgresql")


def _index_valid(name: str) -> bool | None:
    """Whether the index `name` is usable (True), left INVALID by a failed concurrent build (False), or absent."""
    row = (
        op.get_bind()
        .execute(
            text(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = :name AND pg_catalog.pg_table_is_visible(c.oid)"
            ),
            {"name": name},
        )
        .first()
    )
    return None if row is None else bool(row[0])


def create_index(name: str, table: str, columns: list[str], postgresql_ops: dict[str, str] | None = None) -> None:
    """``CREATE INDEX`` that does not stop writes to `table` on PostgreSQL (see the module's text); re-runnable.
    `postgresql_ops`: a column's operator class there (``varchar_pattern_ops``: prefix matches use the index)."""
    if not _postgresql():
        op.create_index(name, table, columns, unique=False)
        return
    ops: dict[str, Any] = {"postgresql_ops": postgresql_ops} if postgresql_ops else {}
    with op.get_context().autocommit_block():
        if op.get_context().as_sql:  # `alembic upgrade --sql`: the statement only, nothing to look at
            op.create_index(name, table, columns, unique=False, postgresql_concurrently=True, **ops)
            return
        state = _index_valid(name)
        if state:
            return
        # The concurrent build waits for every transaction writing the table, however long: that wait blocks no one.
        previous = op.get_bind().execute(text("SHOW lock_timeout")).scalar_one()
        op.execute("SET lock_timeout = 0")
        try:
            if state is False:
                op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
            op.create_index(name, table, columns, unique=False, postgresql_concurrently=True, **ops)
        finally:
            op.execute(text("SELECT set_config('lock_timeout', :v, false)").bindparams(v=str(previous)))


def drop_index(name: str, table: str) -> None:
    """``DROP INDEX`` without an ACCESS EXCLUSIVE lock held while other queries queue, on PostgreSQL."""
    if not _postgresql():
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def add_column(table: str, column: sa.Column[object]) -> None:
    """``ADD COLUMN`` unless a run stopped after committing it (a later concurrent build's step failed)."""
    if not op.get_context().as_sql and column.name in {c["name"] for c in inspect(op.get_bind()).get_columns(table)}:
        return
    with op.batch_alter_table(table) as batch:
        batch.add_column(column)
