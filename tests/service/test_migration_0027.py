"""0027: beneficiaries carry `roster_status`, the status word the roster's last import of the row gave (whether a roster
`deceased` is the death a supervisor withdrew: deaths.roster_death_withdrawn). Nullable, no backfill (a record
stored before reads NULL: not known); the downgrade drops it (a memo, no security data). Migrated (both databases,
down and up, no drift); an embedded database made at 0026 gets the column from create_all."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from alembic import command
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, insert_rows, migrated_database, schema_drift, table_columns

PERSON = (
    "INSERT INTO beneficiaries (id, external_id, id_hash, id_enc, id_masked, name, region, benefit_types, status,"
    " valid_until, grace_dated, template_consent, roster_digest, created_at, updated_at) VALUES (1, 'R1', 'h1', 'e',"
    " '3701**********0012', '张秀英', '370102', '[]', 'active', '2027-03-01', :f, :f, '', '2026-12-01 00:00:00',"
    " '2026-12-01 00:00:00')"
)


def _roster_status(url: str) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT roster_status FROM beneficiaries WHERE id = 1")).scalar_one()
    finally:
        engine.dispose()


def test_0027_adds_the_rosters_last_status_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path, "0026")
    insert_rows(url, (PERSON,), False)
    upgrade(url)
    assert "roster_status" in table_columns(url, "beneficiaries")
    assert _roster_status(url) is None  # not known: a roster `deceased` applies, as before
    assert schema_drift(url) == []
    insert_rows(url, ("UPDATE beneficiaries SET roster_status = 'deceased'",), False)
    command.downgrade(alembic_config(url), "0026")  # a memo: dropped without refusal
    assert "roster_status" not in table_columns(url, "beneficiaries")
    upgrade(url)
    assert _roster_status(url) is None and schema_drift(url) == []


def test_an_embedded_database_from_0026_gets_the_rosters_last_status(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0026")
    assert "roster_status" not in table_columns(url, "beneficiaries")
    create_all_at(url)
    assert "roster_status" in table_columns(url, "beneficiaries")
