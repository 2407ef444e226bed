"""Audit entries: who did what to which record. Details never hold an unmasked ID number.

One of two trails, by design (docs/architecture.md, "One home per rule"). This one (table ``audit_entries``) is
the history of the records — sessions, roster imports, bindings, purges — whoever acted: a channel, a worker, an
API client, a staff member, the retention job. The domain reads it too (`attempts.requesters` finds who opened a
session by its ``session.create`` entry). It is written in the caller's transaction, with no global lock, so the
busy paths (uploads, decisions) never wait on each other for it.

The other, the staff audit chain (service/features/console/audit_chain.py, table ``console_audit`` in
staff_audit.py), is the accountability of the console's users: every view of personal data, claim, login and
decision with its reason, hash-chained and anchored outside the database. A console accept/reject is therefore
written to both: here as ``session.review`` (its effect on the session, the same entry an API review writes),
there as ``case.decide.<stage>`` (the staff member's act). Merging them would either put every upload and worker
decision behind the chain's single-head lock or take the staff decisions out of the sessions' history.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from service.certification.models import AuditEntry
from service.infra.security import mask_text

log = logging.getLogger("service.certification.audit")


def audit(db: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    db.add(AuditEntry(actor=actor[:64], action=action, target=target[:64], detail=detail or {}))
    log.info("audit %s %s %s", actor, action, mask_text(target))
