"""0017: the evidence_holds table (a supervisor's hold on a session's media: service/certification/evidence_hold.py).
Migrated (both databases, down and up, no drift); a session stored before the migration has no hold, and its media
are purged as before; a hold can be placed on it; an embedded database made at 0016 gets the table from create_all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

from alembic import command
from service.certification.evidence_hold import place_hold
from service.certification.models import CertSession, EvidenceHold, media_held, utcnow
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import (
    alembic_version,
    create_all_at,
    insert_rows,
    migrated_database,
    refused_downgrade,
    schema_drift,
    table_columns,
)

HOLD = {
    "id",
    "session_id",
    "reason",
    "note",
    "placed_by",
    "placed_at",
    "ends_at",
    "released_at",
    "released_by",
    "release_note",
}
ROWS = (
    "INSERT INTO beneficiaries (id, external_id, id_hash, id_enc, id_masked, name, region, benefit_types, status,"
    " template_consent, roster_digest, created_at, updated_at)"
    " VALUES (1, 'old', 'old', 'x', '1101**********002X', '张三', '110105', '[]', 'active', :f, '',"
    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    "INSERT INTO cert_sessions (id, beneficiary_id, channel, token_hash, actions, nonce, nonce_expires_at, expires_at,"
    " template_consent, state, job_attempts, reasons, created_at, decided_at, id_card_key, video_key)"
    " VALUES ('s-old', 1, 'self', '-', '[]', 'n-old', '2026-01-02 00:00:00', '2026-01-02 00:00:00', :f, 'decided', 0,"
    " '[]', '2026-01-02 00:00:00', '2026-01-02 00:00:00', 'sessions/s-old/id_card', 'sessions/s-old/video')",
)


def _has_table(url: str) -> bool:
    engine = create_engine(url)
    try:
        return inspect(engine).has_table("evidence_holds")
    finally:
        engine.dispose()


def _old_session_is_not_held_and_can_be(url: str) -> None:
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            held = select(CertSession.id).where(media_held(utcnow()))
            assert db.scalars(held).all() == []
            place_hold(db, "s-old", "investigation", "涉嫌冒领", "staff:sup1", "old", 180)
            db.commit()
            assert db.scalars(held).all() == ["s-old"]
            hold = db.scalars(select(EvidenceHold)).one()
            assert hold.placed_by == "staff:sup1" and hold.ends_at == hold.placed_at + dt.timedelta(days=180)
    finally:
        engine.dispose()


def test_0017_adds_the_evidence_holds_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert table_columns(url, "evidence_holds") == HOLD
    command.downgrade(alembic_config(url), "0016")
    assert not _has_table(url)
    insert_rows(url, ROWS, False)
    upgrade(url)
    assert schema_drift(url) == []
    _old_session_is_not_held_and_can_be(url)


def test_0017_downgrade_refuses_to_drop_an_evidence_hold(backend_urls: dict[str, str], tmp_path: Path) -> None:
    """Before, the downgrade dropped the table without a word, and the next purge deleted the held media (the
    evidence of a 冒领 case); going back up did not bring the hold back."""
    url = migrated_database(backend_urls, tmp_path, "0017")
    hold = (
        "INSERT INTO evidence_holds (session_id, reason, note, placed_by, placed_at, ends_at) VALUES ('s-old',"
        " 'investigation', '涉嫌冒领', 'staff:sup1', '2026-12-01 10:00:00', '2027-06-01 10:00:00')"
    )
    insert_rows(url, (*ROWS, hold), False)
    said = refused_downgrade(url, "0016")
    assert said.startswith("cannot go below 0017: the older schema cannot hold 1 evidence holds"), said
    assert alembic_version(url) == "0017" and _has_table(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            assert db.scalars(select(EvidenceHold.session_id)).all() == ["s-old"]
    finally:
        engine.dispose()
    insert_rows(url, ("DELETE FROM evidence_holds",), False)  # nothing left to lose: it goes
    command.downgrade(alembic_config(url), "0016")
    assert not _has_table(url)


def test_an_embedded_database_from_0016_gets_the_evidence_holds_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0016")
    insert_rows(url, ROWS, 0)
    create_all_at(url)
    assert table_columns(url, "evidence_holds") == HOLD
    _old_session_is_not_held_and_can_be(url)
