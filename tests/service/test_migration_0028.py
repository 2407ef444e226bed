"""0028: certifications carry `own_validity`, whether the row's valid_until is its own as given when accepted (a
revocation never cuts such a row: revocation.cut_back). A row stored before reads false (may carry a date, judged as
before); a row the service stores now reads true. Migrated (both databases, down and up, no drift); an embedded
database made at 0027 gets the column from create_all."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from alembic import command
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, insert_rows, migrated_database, schema_drift, table_columns
from tests.service.test_migration_0018 import ROWS


def _own_validity(url: str) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT own_validity FROM certifications WHERE id = 1")).scalar_one()
    finally:
        engine.dispose()


def test_0028_marks_no_stored_row_as_holding_its_own_validity_down_and_up(
    backend_urls: dict[str, str], tmp_path: Path
) -> None:
    url = migrated_database(backend_urls, tmp_path, "0027")
    insert_rows(url, ROWS, False)
    upgrade(url)
    assert "own_validity" in table_columns(url, "certifications")
    assert not _own_validity(url)  # not known: judged as before
    assert schema_drift(url) == []
    command.downgrade(alembic_config(url), "0027")
    assert "own_validity" not in table_columns(url, "certifications")
    upgrade(url)
    assert not _own_validity(url) and schema_drift(url) == []


def test_an_embedded_database_from_0027_gets_the_own_validity_mark(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0027")
    insert_rows(url, ROWS, 0)
    assert "own_validity" not in table_columns(url, "certifications")
    create_all_at(url)
    assert "own_validity" in table_columns(url, "certifications")
    assert not _own_validity(url)
