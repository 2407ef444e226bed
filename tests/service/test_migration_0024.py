"""0024: audit_entries are indexed by (target, action) (a key's list of outcomes finds each session's `session.create`
entry by the session: service/certification/outcome.py, channel_outcomes). Migrated (both databases, down and up,
no drift); an embedded database made at 0023 gets the index from create_all."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from alembic import command
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, migrated_database, schema_drift

INDEX = "ix_audit_entries_target_action"


def _indexes(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        found = inspect(engine).get_indexes("audit_entries")
        return {str(i["name"]): [str(c) for c in i["column_names"]] for i in found}
    finally:
        engine.dispose()


def test_0024_indexes_the_audit_by_target_and_action_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert _indexes(url)[INDEX] == ["target", "action"]
    command.downgrade(alembic_config(url), "0023")
    assert INDEX not in _indexes(url)
    upgrade(url)
    assert _indexes(url)[INDEX] == ["target", "action"]
    assert schema_drift(url) == []


def test_an_embedded_database_from_0023_gets_the_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0023")
    assert INDEX not in _indexes(url)
    create_all_at(url)
    assert _indexes(url)[INDEX] == ["target", "action"]
