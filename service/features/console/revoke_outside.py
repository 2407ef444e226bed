"""What the console adds to a revocation asked for outside it (the operator API, `pension-cert revoke`:
service/certification/revoke_request.py): a relative's proxy certification revoked locks their binding pending staff
review, and the citizens' requests the certification answered are open again (assist.reopen_on_revocation), as the
console's own revocation does (revoke.py), whichever route revoked it. The console's
RevokedHook (service/certification/contract.py), registered by service/features/install.py: the request's
parameters live in revoke_request.py alone."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.certification.contract import FeatureHooks
from service.features.console.assist import reopen_on_revocation
from service.features.console.revoke import _lock_binding


def lock_revoked_binding(hooks: FeatureHooks, db: Session, session_id: str, actor: str, target: str) -> None:
    """The binding's lock and the requests reopened (once per revocation: the core does not run the hooks again for
    a retried request). ``hooks``: the context's, bound at installation (install.py), for the accounts the
    revocation is not for."""
    _lock_binding(db, session_id, actor, target)
    reopen_on_revocation(db, hooks, session_id, actor)
