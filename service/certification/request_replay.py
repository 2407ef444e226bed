"""A retried operator request (the bureau's system timed out after the commit and sends it again under the same
`Idempotency-Key`) is answered as the first was, marked `replayed`, rather than refused by the state the first one
left (a revocation "revoked already", a review "nothing to review", which read as someone else having done it).

The rule, one for every such route (the revocation: revoke_request.py; the staff review: review.py): the request's
own audit entry keeps the key and what was asked, each digested (`digest`); a later request of the same caller with
the same key is the retry when it asked the same, IDEMPOTENCY_MISMATCH when it asked anything else or came from
another caller. Only the audit is read: no table of keys to keep or purge."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.errors import ServiceError
from service.certification.models import AuditEntry
from service.infra.security import mask_text


def digest(text: str) -> str:
    """A request key or what was asked, as its audit entry keeps it: letters and the digits 2-7 (base32), so no run
    of digits reads as an ID number to the audit's masking, and the key itself is not kept."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:26].lower()


def first_request(
    db: Session,
    action: str,
    target: str,
    key: str,
    asked: str,
    actors: tuple[str, ...],
    same_subject: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any] | None:
    """The detail of the entry (`action` on `target`) the first request of digested `key` wrote, when this request
    is its retry (same `asked` digest, a caller among `actors`: its name under each signing key in use); None when
    no request of this key is recorded. IDEMPOTENCY_MISMATCH when the key's request asked another thing or came from
    another caller. `same_subject`: what else the entry must name to be of this request (a revocation's
    certification: keys are per certification there)."""
    entries = db.scalars(
        select(AuditEntry).where(AuditEntry.action == action, AuditEntry.target == target[:64]).order_by(AuditEntry.id)
    ).all()
    for entry in entries:
        detail = entry.detail or {}
        if detail.get("request") != key or not same_subject(detail):
            continue
        if detail.get("asked") != asked or entry.actor not in {mask_text(actor)[:64] for actor in actors}:
            raise ServiceError("IDEMPOTENCY_MISMATCH", "this request key was used for another request")
        return detail
    return None
