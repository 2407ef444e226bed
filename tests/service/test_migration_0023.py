"""0023: review_claims carry `released_at`, when a reviewer gave the case back (review_queue.reclaim_at). Migrated
(both databases, down and up, no drift); an embedded database made at 0022 gets the column from create_all."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import create_all_at, migrated_database, schema_drift, table_columns


def test_0023_adds_the_time_of_giving_back_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert "released_at" in table_columns(url, "review_claims")
    command.downgrade(alembic_config(url), "0022")
    assert "released_at" not in table_columns(url, "review_claims")
    upgrade(url)
    assert "released_at" in table_columns(url, "review_claims")
    assert schema_drift(url) == []


def test_an_embedded_database_from_0022_gets_the_time_of_giving_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0022")
    assert "released_at" not in table_columns(url, "review_claims")
    create_all_at(url)
    assert "released_at" in table_columns(url, "review_claims")
