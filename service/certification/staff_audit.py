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

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.infra.db.engine import Base


class ConsoleAuditEntry(Base):
    """Append-only and tamper-evident: each entry's hash covers its content and the previous entry's hash;
    `seq` is unique, so two writers cannot both extend the same head."""

    __tablename__ = "console_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    # Indexed (0019): the person page's access log finds the entries naming a person by it (console/access_log.py).
    target: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
