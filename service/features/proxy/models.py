"""Proxy certification tables: relatives' accounts (operators), their bindings to elders, and which
certification sessions were opened by whom (verification of the operator, consent of the elder, proxy
certification)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from service.certification.models import Beneficiary, CertSession, beneficiary_of, utcnow
from service.features.proxy import legacy
from service.infra.db.engine import Base


class BindingStatus(enum.StrEnum):
    PENDING_CONSENT = "pending_consent"  # the elder has not consented yet: no proxy session possible
    ACTIVE = "active"
    ENDED = "ended"  # unbound; kept, it counts in the relative's lifetime history
    EXPIRED = "expired"  # the elder did not consent within the window (ProxyPolicy.pending_consent_days)
    # The roster gave the elder's record another ID number: the binding was to the old person. Its consent is
    # never reused by a later binding of the record (its lock and flag are carried over like any binding's).
    REVOKED = "revoked"
    # The elder ended it ("我的信息": PIPL art. 15, consent withdrawn): no consent of the pair given before it is
    # reused by a later binding (the elder consents again), and a certification in flight under it gives nothing.
    WITHDRAWN = "withdrawn"
    # The same person (verified with the same ID number) bound the elder from another account (a new phone): the
    # relationship goes on there, so it is not counted again in the person's lifetime history.
    MOVED = "moved"


# No longer a binding (its ``ended_at`` is set): unbound, expired unconsented, revoked by a roster change, ended by
# the elder, or moved to the person's other account.
ENDED_STATUSES = frozenset(
    {
        BindingStatus.ENDED.value,
        BindingStatus.EXPIRED.value,
        BindingStatus.REVOKED.value,
        BindingStatus.WITHDRAWN.value,
        BindingStatus.MOVED.value,
    }
)


class ProxySessionKind(enum.StrEnum):
    VERIFICATION = "verification"  # the operator's own real-name verification
    CONSENT = "consent"  # the elder, live, consenting to the binding
    CERTIFICATION = "certification"  # a proxy certification of the elder


class ProxyOperator(Base):
    """A relative's account, tied to a channel identity (WeChat openid, phone) stored only as a keyed hash.

    Who the relative proved to be and their face template live apart, in `ProxyOperatorIdentity` (one row per
    operator, once verified): the account is a channel login, the identity is personal data with its own
    retention. The read-only properties below are the identity's, None while there is none."""

    __tablename__ = "proxy_operators"
    __table_args__ = (UniqueConstraint("channel", "channel_hash", name="uq_proxy_operator_channel"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    channel_hash: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    # Whose logins the account answers: the channel key's actor (`api:<8 hex>`) that created it, or `wechat-h5` (the
    # service's own H5 pages). Another key naming the same phone / openid is refused (operators.login; migration
    # 0022). NULL: made before 0022 by no login the audit names; the next login claims it.
    client: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # selectin, not joined: operators are loaded FOR UPDATE, which PostgreSQL refuses on an outer join.
    identity: Mapped[ProxyOperatorIdentity | None] = relationship(
        lazy="selectin", cascade="all, delete-orphan", uselist=False
    )

    @property
    def person_hash(self) -> str | None:
        return self.identity.person_hash if self.identity else None

    @property
    def id_masked(self) -> str | None:
        return self.identity.id_masked if self.identity else None

    @property
    def name(self) -> str | None:
        return self.identity.name if self.identity else None

    @property
    def verified_at(self) -> dt.datetime | None:
        return self.identity.verified_at if self.identity else None

    @property
    def template_enrolled(self) -> bool:
        return self.identity is not None and self.identity.template is not None


class ProxyOperatorIdentity(Base):
    """The operator's verified identity (set by their verification session: whose ID number they proved to
    hold) and their enrolled face template (with consent), used to tell the elder apart from the operator."""

    __tablename__ = "proxy_operator_identities"

    operator_id: Mapped[str] = mapped_column(ForeignKey("proxy_operators.id"), primary_key=True)
    person_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_masked: Mapped[str | None] = mapped_column(String(24))
    name: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    template: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted float32 embedding (with consent)
    template_model: Mapped[str | None] = mapped_column(String(64))
    template_consent: Mapped[bool] = mapped_column(Boolean, default=False)


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


class ProxyClaim(Base):
    """Who a relative's verification session claims to be: the ID number their card must carry (encrypted, as a
    beneficiary's number is), its keyed hash, masked form and the name given. One row per verification session,
    which has no beneficiary (`cert_sessions.beneficiary_id` NULL): an operator may open several (a typo, a
    retry) and only an accepted one becomes their identity (`ProxyOperatorIdentity`)."""

    __tablename__ = "proxy_claims"

    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), primary_key=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("proxy_operators.id"), index=True)
    id_hash: Mapped[str] = mapped_column(String(64), index=True)
    id_enc: Mapped[str] = mapped_column(Text)  # keyring field CLAIM_FIELD
    id_masked: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The claimed person's region code, so that the review queue's region filter finds their verification: the
    # roster's region when the number is a beneficiary's, else the number's own area code (GB/T 2260, its
    # first six digits: where it was issued). '' for claims made before migration 0010 that the roster lacks.
    region: Mapped[str] = mapped_column(String(12), default="", server_default="", index=True)


def subject_of(db: Session, s: CertSession) -> Beneficiary | ProxyClaim | None:
    """Whom a session is about: its beneficiary, or for a relative's verification session (which has none) the
    identity the relative claims; None when neither exists. Both carry ``name``, ``id_masked``, ``id_hash`` and
    ``region``."""
    return beneficiary_of(db, s) or db.get(ProxyClaim, s.id)


# The claim's number is encrypted as the field a beneficiary's number is: migration 0009 (which holds no key)
# moves the ciphertext of a relative's old `proxy_operator` beneficiary row into the claim as it is.
CLAIM_FIELD = "beneficiary.id_number"


_IDENTITY_COLUMNS = (
    "person_hash",
    "id_masked",
    "name",
    "verified_at",
    "template",
    "template_model",
    "template_consent",
)


@event.listens_for(ProxyOperatorIdentity.__table__, "after_create")
def _carry_legacy_identities(_table: Any, conn: Connection, **_kw: Any) -> None:
    """An embedded database from before 0008 (create_all, no Alembic) gets the new table empty while the
    identities still sit on `proxy_operators`: carry them over and drop the old columns there, as the
    migration does (the old NOT NULL template_consent would otherwise refuse every new operator)."""
    present = {c["name"] for c in inspect(conn).get_columns("proxy_operators")}
    if "person_hash" not in present:
        return
    cols = ", ".join(_IDENTITY_COLUMNS)
    conn.exec_driver_sql(
        f"INSERT INTO proxy_operator_identities (operator_id, {cols}) SELECT id, {cols} FROM proxy_operators "
        "WHERE verified_at IS NOT NULL OR person_hash IS NOT NULL OR template IS NOT NULL"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_proxy_operators_person_hash")
    for name in _IDENTITY_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE proxy_operators DROP COLUMN {name}")


@event.listens_for(ProxyClaim.__table__, "after_create")
def _carry_operator_rows(_table: Any, conn: Connection, **_kw: Any) -> None:
    """An embedded database from before 0009 (create_all, no Alembic) gets the claims table empty while each
    relative's verification session still points at a `proxy_operator` row of `beneficiaries`: do what the
    migration does (service/features/proxy/legacy.py)."""
    if inspect(conn).has_table("proxy_sessions"):
        legacy.relax_beneficiary_columns(conn)
        legacy.claims_from_operator_rows(conn)
