"""Proxy certification tables: relatives' accounts (operators), their bindings to elders, and which
certification sessions were opened by whom (verification of the operator, consent of the elder, proxy
certification)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.certification.models import utcnow
from service.infra.db.engine import Base


class BindingStatus(enum.StrEnum):
    PENDING_CONSENT = "pending_consent"  # the elder has not consented yet: no proxy session possible
    ACTIVE = "active"
    ENDED = "ended"  # unbound; kept, it counts in the relative's lifetime history


class ProxySessionKind(enum.StrEnum):
    VERIFICATION = "verification"  # the operator's own real-name verification
    CONSENT = "consent"  # the elder, live, consenting to the binding
    CERTIFICATION = "certification"  # a proxy certification of the elder


class ProxyOperator(Base):
    """A relative's account, tied to a channel identity (WeChat openid, phone) stored only as a keyed hash."""

    __tablename__ = "proxy_operators"
    __table_args__ = (UniqueConstraint("channel", "channel_hash", name="uq_proxy_operator_channel"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    channel_hash: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    # Set by the verification session: whose ID number the operator proved to hold.
    person_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_masked: Mapped[str | None] = mapped_column(String(24))
    name: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    template: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted float32 embedding (with consent)
    template_model: Mapped[str | None] = mapped_column(String(64))
    template_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ProxyBinding(Base):
    __tablename__ = "proxy_bindings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("proxy_operators.id"), index=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=BindingStatus.PENDING_CONSENT, index=True)
    consent_method: Mapped[str | None] = mapped_column(String(16))
    consent_ref: Mapped[str | None] = mapped_column(String(64))  # consent session id or approving staff id
    consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # the operator filmed themselves
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ProxySession(Base):
    """Links a certification session to the operator (and binding) that opened it."""

    __tablename__ = "proxy_sessions"

    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("proxy_operators.id"), index=True)
    binding_id: Mapped[str | None] = mapped_column(ForeignKey("proxy_bindings.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
