"""Which stored session media a session row points to: one rule for the orphan sweep (retention.sweep_orphans) and
for a restore, which names the objects no row refers to (restore_record.record_restore: the sessions it lost)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.certification.models import CertSession
from service.infra.storage import MediaStorage

SESSIONS_PREFIX = "sessions/"


def referenced(db: Session, key: str) -> bool:
    """Whether a session row points to the stored object `key` (`sessions/<id>/...`), its media not purged."""
    session_id = key.split("/")[1] if key.count("/") >= 2 else ""
    s = db.get(CertSession, session_id) if session_id else None
    return s is not None and s.media_purged_at is None and key in (s.id_card_key, s.video_key)


def unreferenced_media(db: Session, storage: MediaStorage) -> list[str]:
    """The keys of the session media no row points to, in key order."""
    return [obj.key for obj in storage.list(SESSIONS_PREFIX) if not referenced(db, obj.key)]
