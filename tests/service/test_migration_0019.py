"""0019: console_audit is indexed by target (the person page's "查阅记录": who looked at this person, answered from
the staff audit chain by the records that name them, not by a scan of the whole log). Migrated (both databases,
down and up, no drift); an embedded database made at 0018 gets the index from create_all, its entries kept."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from alembic import command
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, insert_rows, migrated_database, schema_drift

ROWS = (
    "INSERT INTO console_audit (seq, at, actor, action, target, detail, prev_hash, hash)"
    " VALUES (1, '2026-01-01 00:00:00', 'staff:rev1', 'beneficiary.view', 'EXT-1', '{}', :f, 'h1')",
)
INDEX = "ix_console_audit_target"


def _audit_indexes(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        return {
            str(i["name"]): [str(c) for c in i["column_names"]] for i in inspect(engine).get_indexes("console_audit")
        }
    finally:
        engine.dispose()


def _targets(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [str(t) for t in conn.execute(text("SELECT target FROM console_audit ORDER BY seq")).scalars()]
    finally:
        engine.dispose()


def test_0019_indexes_the_audit_target_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert _audit_indexes(url).get(INDEX) == ["target"]
    command.downgrade(alembic_config(url), "0018")
    assert INDEX not in _audit_indexes(url)
    insert_rows(url, ROWS, "0" * 64)
    upgrade(url)
    assert _audit_indexes(url).get(INDEX) == ["target"]
    assert schema_drift(url) == []
    assert _targets(url) == ["EXT-1"]


def test_an_embedded_database_from_0018_gets_the_target_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0018")
    insert_rows(url, ROWS, "0" * 64)
    assert INDEX not in _audit_indexes(url)
    create_all_at(url)
    assert _audit_indexes(url).get(INDEX) == ["target"]
    assert _targets(url) == ["EXT-1"]
