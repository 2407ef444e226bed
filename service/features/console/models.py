"""Staff console tables: staff users and their login sessions, review claims and decisions, alternative
certifications, deaths, alerts. The hash-chained console audit log's table (``ConsoleAuditEntry``) is the core's
(service/certification/staff_audit.py, anchored by service/certification/audit_anchor.py)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from service.certification.models import utcnow
from service.infra.db.engine import Base


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # reviewer | supervisor | admin
    password_hash: Mapped[str] = mapped_column(String(256))  # argon2id
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The password was set by an admin (created or reset in the console), who chose it and may still know it: the
    # holder must replace it before doing anything else (routes_auth.change_own_password clears it).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The region scope (service/features/console/scope.py): GB/T 2260 division-code prefixes ("4201" = 武汉市) whose
    # pensioners this account may see and act on; empty: the whole jurisdiction.
    scope: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # The admin who, in the console, created this account as a supervisor or admin, raised it to one, or set its
    # password (and may hold it): until a supervisor other than that admin confirms the account (accounts.py), it
    # is nobody's second person (docs/security.md, Part BK). None: confirmed, or made by the operator (CLI).
    granted_by: Mapped[int | None] = mapped_column(Integer)  # that admin's staff_users.id


class StaffSession(Base):
    """A logged-in browser: only the token's hash is stored; the CSRF token belongs to the session."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ReviewClaim(Base):
    """One row per session under review: who holds it (claim) and the first decision awaiting a second."""

    __tablename__ = "review_claims"

    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), primary_key=True)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # When the holder first claimed it: claiming again, or giving it back and claiming it again, does not move it
    # (review_queue.claim_case), so a claim's lifetime cannot be renewed by its holder.
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Who gave the case back last (放弃), with `claimed_at` kept: their next claim continues that lifetime.
    released_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # When they gave it back (migration 0023): once the claim's lifetime has run out, its giver may claim the case
    # again only `reclaim_wait_s` later (review_queue.reclaim_at); colleagues at once.
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # A proxy rejection by the first reviewer waits here for a supervisor's second decision.
    pending_decision: Mapped[str | None] = mapped_column(String(8))
    pending_reason: Mapped[str | None] = mapped_column(Text)
    pending_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    pending_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ReviewDecision(Base):
    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    stage: Mapped[str] = mapped_column(String(12))  # first | second | final
    decision: Mapped[str] = mapped_column(String(8))  # accept | reject | retry
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AltCertification(Base):
    """A certification without a selfie: at the counter, on a home visit, or from activity evidence."""

    __tablename__ = "alt_certifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # counter | home_visit | activity
    on_date: Mapped[dt.date] = mapped_column(Date)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AssistKind(enum.StrEnum):
    """What a citizen asks for (the H5 form's values)."""

    MANUAL_REVIEW = "manual_review"
    HOME_VISIT = "home_visit"


class AssistStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AssistOutcome(enum.StrEnum):
    """How staff closed a request: with an alternative certification, or with a reply to the person."""

    CERTIFIED = "certified"
    ANSWERED = "answered"


class AssistRequest(Base):
    """A citizen's request (H5) for a manual review of the failed attempts or for a home visit, for themselves or
    for an elder a relative is bound to; staff close it, usually with an alternative certification."""

    __tablename__ = "assist_requests"
    # One open request per person and requester (service/features/console/assist.py checks first; this decides a
    # race). Per requester: a stranger who knows a pensioner's name and number must not hold their one request.
    __table_args__ = (
        Index(
            "uq_assist_requests_open",
            "beneficiary_id",
            "openid",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # AssistKind
    phone: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(200), default="")
    openid: Mapped[str] = mapped_column(String(64))  # who asked: the closing notice goes there
    by_relative: Mapped[bool] = mapped_column(Boolean, default=False)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("cert_sessions.id"))  # the failed session, if any
    status: Mapped[str] = mapped_column(String(8), default=AssistStatus.OPEN, index=True)  # AssistStatus
    outcome: Mapped[str | None] = mapped_column(String(16))  # AssistOutcome
    outcome_note: Mapped[str | None] = mapped_column(String(500))
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class DeathRecord(Base):
    __tablename__ = "death_records"

    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), primary_key=True)
    date_of_death: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ConsoleAlert(Base):
    __tablename__ = "console_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    beneficiary_id: Mapped[int | None] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ConsoleAuditShown(Base):
    """One row per person a list page showed (the queue, the alerts, the citizens' requests, a roster search's
    results), under the staff audit chain's entry of that view (docs/security.md, Part BK; migration 0021): the
    entry's JSON list (`shown`, in the hashed details: the record) is kept, and this is its index, so the person's
    查阅记录 and the day's volume count the people a list showed (console/access_log.py). Written in one batch per
    page. The person's row id, not a key: the record stays what it was if the row is ever removed."""

    __tablename__ = "console_audit_shown"

    seq: Mapped[int] = mapped_column(ForeignKey("console_audit.seq"), primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
