"""A revocation asked for outside the console (the operator API, `pension-cert revoke`: service/certification/
revoke_request.py), with what the console's revocation does besides the core's: a relative's proxy certification
revoked locks their binding pending staff review (revoke.py, `_lock_binding`), whichever route revoked it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.certification.cycle import CycleRules
from service.certification.revoke_request import RevokeAnswer, Target, revoke_requested
from service.features.console.revoke import _lock_binding


def revoke_outside_console(
    db: Session,
    rules: CycleRules,
    target: Target,
    reason: str,
    note: str,
    actor: str,
    request_key: str | None,
    via: dict[str, Any],
    *,
    hold_days: int,
    aliases: tuple[str, ...] = (),
) -> RevokeAnswer:
    """`revoke_requested`, then the binding's lock (not again for a retried request: the first one locked it)."""
    answer = revoke_requested(
        db, rules, target, reason, note, actor, request_key, via, hold_days=hold_days, aliases=aliases
    )
    if not answer.replayed:
        _lock_binding(db, answer.session_id, actor, answer.external_id)
    return answer
