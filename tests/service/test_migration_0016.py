"""0016: certifications carry their revocation (revoked_at, revoked_by, revoke_reason, revoke_note). Migrated (both
databases, down and up, no drift); a certification stored before the migration is not revoked (its certificate still
reads valid); an embedded database made at 0015 gets the columns from create_all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from alembic import command
from service.certification.certificates import CertificateStatus, standing
from service.certification.models import Certification
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

REVOCATION = {"revoked_at", "revoked_by", "revoke_reason", "revoke_note"}
ROWS = (
    "INSERT INTO beneficiaries (id, external_id, id_hash, id_enc, id_masked, name, region, benefit_types, status,"
    " template_consent, roster_digest, created_at, updated_at)"
    " VALUES (1, 'old', 'old', 'x', '1101**********002X', '张三', '110105', '[]', 'active', :f, '',"
    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    "INSERT INTO cert_sessions (id, beneficiary_id, channel, token_hash, actions, nonce, nonce_expires_at, expires_at,"
    " template_consent, state, job_attempts, reasons, created_at)"
    " VALUES ('s-old', 1, 'self', '-', '[]', 'n-old', '2026-01-02 00:00:00', '2026-01-02 00:00:00', :f, 'decided', 0,"
    " '[]', '2026-01-02 00:00:00')",
    "INSERT INTO certifications (id, beneficiary_id, session_id, certified_on, valid_until, code, created_at)"
    " VALUES (1, 1, 's-old', '2026-01-02', '2099-01-01', 'code-old', '2026-01-02 00:00:00')",
)


def _old_certification_is_in_force(url: str) -> None:
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            cert = db.scalar(select(Certification).where(Certification.code == "code-old"))
            assert cert is not None and cert.revoked_at is None and cert.revoke_reason is None
            assert standing(db, cert, dt.date(2026, 6, 1)).status is CertificateStatus.VALID
    finally:
        engine.dispose()


def test_0016_adds_the_revocation_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert table_columns(url, "certifications") >= REVOCATION
    command.downgrade(alembic_config(url), "0015")
    assert not REVOCATION & table_columns(url, "certifications")
    insert_rows(url, ROWS, False)
    upgrade(url)
    assert schema_drift(url) == []
    _old_certification_is_in_force(url)


def test_0016_downgrade_refuses_to_drop_a_revocation(backend_urls: dict[str, str], tmp_path: Path) -> None:
    """Before, the downgrade dropped the columns without a word: after `alembic upgrade head` again, a certification
    revoked for fraud (冒领) was in force, its certificate check answered valid and the cycle paid on."""
    url = migrated_database(backend_urls, tmp_path, "0016")
    revoke = (
        "UPDATE certifications SET revoked_at = '2026-12-01 10:00:00', revoked_by = 'staff:9', revoke_reason = 'fraud'"
    )
    insert_rows(url, (*ROWS, revoke), False)
    said = refused_downgrade(url, "0015")
    assert said.startswith("cannot go below 0016: the older schema cannot hold 1 revoked certifications"), said
    assert "restore the dump taken before the upgrade to 0016" in said, said
    assert alembic_version(url) == "0016" and table_columns(url, "certifications") >= REVOCATION
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT revoked_by FROM certifications")).scalar_one() == "staff:9"
    finally:
        engine.dispose()
    insert_rows(url, ("UPDATE certifications SET revoked_at = NULL",), False)  # nothing left to lose: it goes
    command.downgrade(alembic_config(url), "0015")
    assert not REVOCATION & table_columns(url, "certifications")


def test_an_embedded_database_from_0015_gets_the_revocation_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0015")
    insert_rows(url, ROWS, 0)
    create_all_at(url)
    assert table_columns(url, "certifications") >= REVOCATION
    _old_certification_is_in_force(url)
