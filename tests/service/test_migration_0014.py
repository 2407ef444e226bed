"""0014: beneficiaries carry identity_since. Migrated (both databases, down and up, no drift); a record whose ID
number a roster import changed before the migration gets the time of its latest change from the audit trail,
every other record NULL; an embedded database made at 0013 gets the column from create_all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from alembic import command
from service.certification.models import Beneficiary
from service.infra.db.engine import create_all
from service.infra.db.migrate import alembic_config, upgrade
from service.schema import metadata
from tests.service.live import embedded_file, migrated_database, table_columns

RECORD = (
    "INSERT INTO beneficiaries (external_id, id_hash, id_enc, id_masked, name, region, benefit_types, status,"
    " template_consent, roster_digest, created_at, updated_at)"
    " VALUES (:ext, :ext, 'x', '1101**********002X', '张三', '110105', '[]', 'active', :f, '',"
    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
)
CHANGE = "INSERT INTO audit_entries (at, actor, action, target, detail) VALUES (:at, 'staff:sup1', :action, :ext, '{}')"


def test_0014_adds_identity_since_down_and_up_from_the_audit_trail(
    backend_urls: dict[str, str], tmp_path: Path
) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert "identity_since" in table_columns(url, "beneficiaries")
    command.downgrade(alembic_config(url), "0013")
    assert "identity_since" not in table_columns(url, "beneficiaries")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for ext in ("changed", "kept"):
                conn.execute(text(RECORD), {"ext": ext, "f": False})
            for at, action, ext in (
                ("2026-03-01 09:00:00", "roster.identity_changed", "changed"),
                ("2026-04-02 10:30:00", "roster.identity_changed", "changed"),  # changed twice: the latest
                ("2026-05-01 08:00:00", "roster.import", "kept"),
            ):
                conn.execute(text(CHANGE), {"at": at, "action": action, "ext": ext})
        upgrade(url)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        with Session(engine) as db:
            since = {e: at for e, at in db.execute(select(Beneficiary.external_id, Beneficiary.identity_since))}
        assert since == {"changed": dt.datetime(2026, 4, 2, 10, 30), "kept": None}
    finally:
        engine.dispose()


def test_an_embedded_database_from_0013_gets_identity_since_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0013")
    embedded_file(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(RECORD), {"ext": "old", "f": 0})
        create_all(engine, metadata)
        with Session(engine) as db:
            old = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "old"))
            assert old is not None and old.identity_since is None
    finally:
        engine.dispose()
