"""0013: staff accounts carry a region scope. Migrated (both databases, down and up, no drift), existing accounts
get the whole jurisdiction ('[]'), and an embedded database made at 0012 gets the column from create_all."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from alembic import command
from service.features.console.models import StaffUser
from service.infra.db.engine import create_all
from service.infra.db.migrate import alembic_config, upgrade
from service.schema import metadata
from tests.service.live import alembic_version, embedded_file, migrated_database, refused_downgrade, table_columns

OLD_ACCOUNT = (
    "INSERT INTO staff_users (username, display_name, role, password_hash, active, failed_logins, created_at,"
    " must_change_password) VALUES ('old', 'old', 'reviewer', 'x', :t, 0, '2026-01-01 00:00:00', :f)"
)


def _columns(url: str) -> set[str]:
    return table_columns(url, "staff_users")


def test_0013_adds_the_scope_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert "scope" in _columns(url)
    command.downgrade(alembic_config(url), "0012")
    assert "scope" not in _columns(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(OLD_ACCOUNT), {"t": True, "f": False})
        upgrade(url)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        with Session(engine) as db:
            old = db.scalar(select(StaffUser).where(StaffUser.username == "old"))
            assert old is not None and old.scope == []  # the whole jurisdiction, as before
    finally:
        engine.dispose()


def test_0013_downgrade_refuses_to_drop_a_region_scope(backend_urls: dict[str, str], tmp_path: Path) -> None:
    """Before, the downgrade dropped the column without a word: a reviewer limited to 3701 saw the whole
    jurisdiction, there and after going back up ('[]')."""
    url = migrated_database(backend_urls, tmp_path, "0013")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(OLD_ACCOUNT), {"t": True, "f": False})
            conn.execute(text("UPDATE staff_users SET scope = '[\"3701\"]'"))
        said = refused_downgrade(url, "0012")
        assert said.startswith("cannot go below 0013: the older schema cannot hold 1 staff accounts limited"), said
        assert alembic_version(url) == "0013"
        with Session(engine) as db:
            assert db.scalars(select(StaffUser.scope)).all() == [["3701"]]
        with engine.begin() as conn:
            conn.execute(text("UPDATE staff_users SET scope = '[]'"))  # nothing left to lose: it goes
    finally:
        engine.dispose()
    command.downgrade(alembic_config(url), "0012")
    assert "scope" not in _columns(url)


def test_an_embedded_database_from_0012_gets_the_scope_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0012")
    embedded_file(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(OLD_ACCOUNT), {"t": 1, "f": 0})
        create_all(engine, metadata)
        with Session(engine) as db:
            old = db.scalar(select(StaffUser).where(StaffUser.username == "old"))
            assert old is not None and old.scope == []
    finally:
        engine.dispose()
