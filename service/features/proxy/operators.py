"""Operators: a relative's account tied to a channel identity, authenticated by a bearer token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import utcnow
from service.features.proxy.models import ProxyOperator
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


def login(db: Session, ctx: ServiceContext, channel: str, channel_id: str, client: str) -> OperatorLogin:
    """Find or create the operator of (channel, channel_id) and issue a fresh token (the previous one stops
    working: one device at a time)."""
    if channel not in CHANNELS:
        raise ServiceError("UNAUTHORIZED", f"unknown channel {channel!r}", status=422)
    # The raw openid / phone number is not stored: a keyed hash identifies the account.
    ch_hash = ctx.keyring.mac(f"proxy-operator:{channel}:{channel_id}")
    op = db.scalar(
        select(ProxyOperator)
        .where(ProxyOperator.channel == channel, ProxyOperator.channel_hash == ch_hash)
        .with_for_update()
    )
    created = op is None
    token = new_token()
    if op is None:
        op = ProxyOperator(id=str(uuid.uuid4()), channel=channel, channel_hash=ch_hash, token_hash=token_hash(token))
        op.template_consent = False
        db.add(op)
    else:
        op.token_hash = token_hash(token)
    db.flush()
    audit(db, client, "proxy.operator.login", op.id, {"channel": channel, "created": created})
    return OperatorLogin(op, token, created)


def authenticate(db: Session, token: str | None) -> ProxyOperator:
    if not token:
        raise ServiceError("UNAUTHORIZED", "operator token missing", status=401)
    op = db.scalar(select(ProxyOperator).where(ProxyOperator.token_hash == token_hash(token)))
    if op is None:
        raise ServiceError("UNAUTHORIZED", "operator token unknown", status=401)
    return op


def store_template(ctx: ServiceContext, op: ProxyOperator, embedding: np.ndarray, model: str) -> None:
    """Keep the operator's face template (encrypted), used to tell the elder apart from the operator."""
    op.template = ctx.keyring.encrypt_field(
        embedding.astype(np.float32).tobytes().hex(), "proxy_operator.template"
    ).encode()
    op.template_model = model
    op.template_consent = True


def load_template(ctx: ServiceContext, op: ProxyOperator) -> tuple[np.ndarray, str] | None:
    if op.template is None or op.template_model is None:
        return None
    raw = ctx.keyring.decrypt_field(op.template.decode(), "proxy_operator.template")
    return np.frombuffer(bytes.fromhex(raw), dtype=np.float32).copy(), op.template_model


def mark_verified(op: ProxyOperator, person_hash: str, id_masked: str, name: str) -> None:
    op.person_hash, op.id_masked, op.name, op.verified_at = person_hash, id_masked, name, utcnow()
