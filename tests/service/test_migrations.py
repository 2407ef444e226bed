"""The Alembic migrations build exactly the schema the models declare (no drift), on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from service.db import console_models, models, proxy_models, wechat_models  # noqa: F401 - all tables
from service.db.engine import Base
from service.db.migrate import upgrade
from tests.service.live import fresh_database


def test_migrations_match_the_models(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = fresh_database(backend_urls, tmp_path)  # for SQLite this is create_all: migrate a new file instead
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
