"""0029: cert_sessions carry `light`, the screen-light sequence issued with the session's challenge (docs/wechat.md,
"The screen-light challenge"). A session stored before reads NULL (none was issued: its video is analysed without
one); one the service opens now stores its sequence. Migrated (both databases, down and up, no drift); an embedded
database made at 0028 gets the column from create_all."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from alembic import command
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, insert_rows, migrated_database, schema_drift, table_columns
from tests.service.test_migration_0018 import ROWS


def _light(url: str) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT light FROM cert_sessions WHERE id = 's-old'")).scalar_one()
    finally:
        engine.dispose()


def test_0029_gives_a_stored_session_no_light_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path, "0028")
    insert_rows(url, ROWS, False)
    assert "light" not in table_columns(url, "cert_sessions")
    upgrade(url)
    assert "light" in table_columns(url, "cert_sessions")
    assert _light(url) is None  # none was issued: nothing was shown, nothing to measure
    assert schema_drift(url) == []
    command.downgrade(alembic_config(url), "0028")
    assert "light" not in table_columns(url, "cert_sessions")
    upgrade(url)
    assert _light(url) is None and schema_drift(url) == []


def test_an_embedded_database_from_0028_gets_the_light_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0028")
    insert_rows(url, ROWS, 0)
    assert "light" not in table_columns(url, "cert_sessions")
    create_all_at(url)
    assert "light" in table_columns(url, "cert_sessions")
    assert _light(url) is None
