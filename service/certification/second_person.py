"""Two supervisors for one act done from a person's page (docs/security.md, Parts BC and BK): the first asks, in
the records' trail; a second, another actor, confirms within ASK_DAYS and the act is done; the first asking again is
refused, and that refusal is recorded (committed before the error rolls the unit back), so repeated tries to act
alone show; so is the caller's own refusal of the second (`check_or_refuse`: the console refuses an account an
admin made, not yet confirmed, and that admin confirming its request). The one home of this rule: an evidence
hold's early release (evidence_hold.py) and a certification's revocation from the console
(revocation.revoke_by_two).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, utcnow
from service.infra.security import mask_text

ASK_DAYS = 7  # a request counts this long; then the next click is a new request, not a confirmation


@dataclass(frozen=True)
class Ask:
    """A supervisor's request waiting for a second supervisor (its trail entry)."""

    actor: str  # as the audit trail keeps it
    note: str
    at: dt.datetime
    detail: dict[str, Any] = field(default_factory=dict)


def waiting_asks(
    db: Session, action: str, key: str, since: Mapping[int, dt.datetime], now: dt.datetime | None = None
) -> dict[int, Ask]:
    """For each key value of `since` (an evidence hold's id, a certification's), the first request still waiting,
    those with none left out: an `action` entry whose detail `key` is that value, made after its `since` and within
    ASK_DAYS (an older one has lapsed). One read: only the entries of the last ASK_DAYS (`at` is indexed), not the
    whole trail's requests."""
    if not since:
        return {}
    cutoff = (now or utcnow()) - dt.timedelta(days=ASK_DAYS)
    starts = {k: max(v, cutoff) for k, v in since.items()}
    recent = select(AuditEntry).where(AuditEntry.action == action, AuditEntry.at >= min(starts.values()))
    out: dict[int, Ask] = {}
    for e in db.scalars(recent.order_by(AuditEntry.id)):
        value = e.detail.get(key)
        if isinstance(value, int) and value in starts and value not in out and e.at >= starts[value]:
            out[value] = Ask(e.actor, str(e.detail.get("note", "")), e.at, dict(e.detail))
    return out


def is_asker(asked: Ask, actor: str) -> bool:
    """Whether `actor` made the request `asked` (compared as the trail keeps actors)."""
    return asked.actor == mask_text(actor)[:64]


def refuse_alone(
    db: Session, actor: str, action: str, target: str, detail: dict[str, Any], code: str, message: str
) -> NoReturn:
    """The asker confirming their own request: recorded (`action`, with the code) and committed now, as the error
    rolls the caller's transaction back; then refused with `code`."""
    audit(db, actor, action, target, detail | {"reason": code})
    db.commit()
    raise ServiceError(code, message)


def check_or_refuse(
    db: Session,
    check: Callable[[str], None] | None,
    asked: Ask,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
) -> None:
    """The caller's `check` that `actor` may confirm the request `asked` (given its asker, raising its refusal):
    its refusal recorded as `refuse_alone`'s, under its own code."""
    if check is None:
        return
    try:
        check(asked.actor)
    except ServiceError as exc:
        refuse_alone(db, actor, action, target, detail, exc.code, exc.detail)
