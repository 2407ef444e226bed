"""What the console adds to a revocation asked for outside it (the operator API, `pension-cert revoke`:
service/certification/revoke_request.py): a relative's proxy certification revoked locks their binding pending staff
review, as the console's own revocation does (revoke.py, `_lock_binding`), whichever route revoked it. The console's
RevokedHook (service/certification/contract.py), registered by service/features/install.py: the request's
parameters live in revoke_request.py alone."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.features.console.revoke import _lock_binding


def lock_revoked_binding(db: Session, session_id: str, actor: str, target: str) -> None:
    """The binding's lock (once per revocation: the core does not run the hooks again for a retried request)."""
    _lock_binding(db, session_id, actor, target)
