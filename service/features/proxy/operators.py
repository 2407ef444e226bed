"""Operators: a relative's account tied to a channel identity, authenticated by a bearer token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.errors import InvalidInputError, ServiceError
from service.certification.models import utcnow
from service.features.proxy.models import ProxyOperator, ProxyOperatorIdentity
from service.infra.security import new_token, token_hash

CHANNELS = ("wechat", "phone")


@dataclass(frozen=True)
class OperatorLogin:
    operator: ProxyOperator
    token: str
    created: bool


def actor(op: ProxyOperator) -> str:
    """The operator's identity in audit entries."""
    return f"operator:{op.id}"


def channel_hash(ctx: ServiceContext, channel: str, channel_id: str) -> str:
    # The raw openid / phone number is not stored: a keyed hash identifies the account.
    return ctx.keyring.mac(f"proxy-operator:{channel}:{channel_id}")


def find(db: Session, ctx: ServiceContext, channel: str, channel_id: str) -> ProxyOperator | None:
    """The operator of (channel, channel_id), if there is one; no token is issued."""
    where = (ProxyOperator.channel == channel, ProxyOperator.channel_hash == channel_hash(ctx, channel, channel_id))
    return db.scalar(select(ProxyOperator).where(*where))


def login(db: Session, ctx: ServiceContext, channel: str, channel_id: str, client: str) -> OperatorLogin:
    """Find or create the operator of (channel, channel_id) and issue a fresh token (the previous one stops
    working: one device at a time)."""
    if channel not in CHANNELS:
        raise InvalidInputError("UNAUTHORIZED", f"unknown channel {channel!r}")
    ch_hash = channel_hash(ctx, channel, channel_id)
    op = db.scalar(
        select(ProxyOperator)
        .where(ProxyOperator.channel == channel, ProxyOperator.channel_hash == ch_hash)
        .with_for_update()
    )
    created = op is None
    token = new_token()
    if op is None:
        op = ProxyOperator(id=str(uuid.uuid4()), channel=channel, channel_hash=ch_hash, token_hash=token_hash(token))
        db.add(op)
    else:
        op.token_hash = token_hash(token)
    db.flush()
    audit(db, client, "proxy.operator.login", op.id, {"channel": channel, "created": created})
    return OperatorLogin(op, token, created)


def authenticate(db: Session, token: str | None) -> ProxyOperator:
    if not token:
        raise ServiceError("UNAUTHORIZED", "operator token missing")
    op = db.scalar(select(ProxyOperator).where(ProxyOperator.token_hash == token_hash(token)))
    if op is None:
        raise ServiceError("UNAUTHORIZED", "operator token unknown")
    return op


def _identity(op: ProxyOperator) -> ProxyOperatorIdentity:
    """The operator's identity row, created on first use (it is saved with the operator)."""
    if op.identity is None:
        op.identity = ProxyOperatorIdentity(operator_id=op.id, template_consent=False)
    return op.identity


def store_template(ctx: ServiceContext, op: ProxyOperator, embedding: np.ndarray, model: str) -> None:
    """Keep the operator's face template (encrypted), used to tell the elder apart from the operator."""
    who = _identity(op)
    who.template = ctx.keyring.encrypt_field(
        embedding.astype(np.float32).tobytes().hex(), "proxy_operator.template"
    ).encode()
    who.template_model = model
    who.template_consent = True


def load_template(ctx: ServiceContext, op: ProxyOperator) -> tuple[np.ndarray, str] | None:
    who = op.identity
    if who is None or who.template is None or who.template_model is None:
        return None
    raw = ctx.keyring.decrypt_field(who.template.decode(), "proxy_operator.template")
    return np.frombuffer(bytes.fromhex(raw), dtype=np.float32).copy(), who.template_model


def mark_verified(op: ProxyOperator, person_hash: str, id_masked: str, name: str) -> None:
    who = _identity(op)
    who.person_hash, who.id_masked, who.name, who.verified_at = person_hash, id_masked, name, utcnow()
