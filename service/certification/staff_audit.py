"""The staff audit chain's table (``console_audit``), in the core although the console writes it.

Why here: the chain is anchored outside the database by the core's daily store upkeep
(service/certification/retention.py → audit_anchor.py), and verified by the CLI, so the core must read the
chain's head without importing the console feature. The table, its name and its columns are unchanged (`target`
indexed since 0019); the chain's rules (hashing, appending, verifying) stay in service/features/console/audit_chain.py.

What it records: what the console's staff saw and did (views of personal data, claims, logins, decisions with
their reason), not the history of the records, which is the core's ``audit`` (audit.py explains the split: a
console accept/reject is in both, as ``case.decide.<stage>`` here and ``session.review`` there).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ColumnElement, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.infra.db.engine import Base


class ConsoleAuditEntry(Base):
    """Append-only and tamper-evident: each entry's hash covers its content and the previous entry's hash;
    `seq` is unique, so two writers cannot both extend the same head."""

    __tablename__ = "console_audit"
    # The audit-log viewer's filters by account and by action, newest first (migration 0025; console/routes_audit.py).
    __table_args__ = (
        Index("ix_console_audit_actor_seq", "actor", "seq"),
        Index("ix_console_audit_action_seq", "action", "seq", postgresql_ops={"action": "varchar_pattern_ops"}),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    # Indexed (0019): the person page's access log finds the entries naming a person by it (console/access_log.py).
    target: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


def action_prefix(prefix: str, dialect: str) -> ColumnElement[bool]:
    """The entries whose action starts with `prefix` (the audit-log viewer's filter), as a condition the action
    index serves. SQLite's LIKE ignores case, so no index serves it: a range there (compared byte by byte, so
    case-sensitive as on PostgreSQL). PostgreSQL's LIKE with a fixed prefix uses the index's pattern operator
    class (migration 0025); a range there would follow the database's collation, which orders punctuation its
    own way."""
    last = ord(prefix[-1]) + 1 if prefix else 0
    if dialect == "postgresql" or not 0 < last <= 0x10FFFF or 0xD800 <= last < 0xE000:
        return ConsoleAuditEntry.action.startswith(prefix, autoescape=True)  # SQLite: an odd last character only
    return (ConsoleAuditEntry.action >= prefix) & (ConsoleAuditEntry.action < prefix[:-1] + chr(last))
