"""Audit entries: who did what to which record. Details never hold an unmasked ID number."""

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
