"""0012: staff accounts carry "must change the password". Migrated (both databases, down and up, no drift) and
carried into an embedded database made at 0011 by create_all (existing accounts not flagged)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from alembic import command
from service.infra.db.engine import create_all
from service.infra.db.migrate import alembic_config, upgrade
from service.schema import metadata
from tests.service.live import alembic_version, embedded_file, migrated_database, refused_downgrade, table_columns


def _columns(url: str) -> set[str]:
    return table_columns(url, "staff_users")


def test_0012_adds_the_flag_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert "must_change_password" in _columns(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()
    command.downgrade(alembic_config(url), "0011")
    assert "must_change_password" not in _columns(url)
    upgrade(url)
    assert "must_change_password" in _columns(url)


def test_0012_downgrade_refuses_to_drop_a_forced_password_change(backend_urls: dict[str, str], tmp_path: Path) -> None:
    """Before, the downgrade dropped the column without a word: the password an admin had set (and may still know)
    went on working for the account, there and after going back up."""
    url = migrated_database(backend_urls, tmp_path, "0012")
    account = (
        "INSERT INTO staff_users (username, display_name, role, password_hash, active, failed_logins, created_at,"
        " must_change_password) VALUES ('new', 'new', 'reviewer', 'x', :t, 0, '2026-01-01 00:00:00', :t)"
    )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(account), {"t": True})
        said = refused_downgrade(url, "0011")
        assert said.startswith("cannot go below 0012: the older schema cannot hold 1 staff accounts still to"), said
        assert alembic_version(url) == "0012"
        with engine.begin() as conn:
            assert conn.execute(text("SELECT must_change_password FROM staff_users")).scalar_one() in (1, True)
            conn.execute(text("UPDATE staff_users SET must_change_password = :f"), {"f": False})
    finally:
        engine.dispose()
    command.downgrade(alembic_config(url), "0011")  # nothing left to lose: it goes
    assert "must_change_password" not in _columns(url)


def test_an_embedded_database_from_0011_gets_the_flag_unset(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0011")
    embedded_file(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO staff_users (username, display_name, role, password_hash, active, failed_logins,"
                    " created_at) VALUES ('old', 'old', 'reviewer', 'x', 1, 0, '2026-01-01 00:00:00')"
                )
            )
        create_all(engine, metadata)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT must_change_password FROM staff_users")).scalar_one() in (0, False)
    finally:
        engine.dispose()
