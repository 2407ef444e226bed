"""0021: console_audit_shown, one row per person a list page showed (the person page's "查阅记录" and the day's
volume count them: service/features/console/access_log.py), and staff_users.granted_by (an admin-made supervisor
account awaiting another supervisor's confirmation: accounts.py). Migrated (both databases, down and up, no drift),
the chain's entries and the accounts kept, an existing account confirmed; an embedded database made at 0020 gets
both from create_all, and a list view written after it is on the person's access log."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import Session

from alembic import command
from service.certification.models import Beneficiary
from service.features.console import access_log
from service.infra.db.migrate import alembic_config, upgrade
from tests.service.live import (
    alembic_version,
    create_all_at,
    insert_rows,
    migrated_database,
    refused_downgrade,
    schema_drift,
    table_columns,
)

ROWS = (
    "INSERT INTO console_audit (seq, at, actor, action, target, detail, prev_hash, hash)"
    " VALUES (1, '2026-01-01 00:00:00', 'staff:rev1', 'queue.view', '-', '{\"shown\": [\"EXT-1\"]}', :f, 'h1')",
    "INSERT INTO staff_users (id, username, display_name, role, password_hash, active, failed_logins, created_at,"
    " must_change_password, scope) VALUES (1, 'sup1', 'sup1', 'supervisor', 'x', true, 0, '2026-01-01 00:00:00',"
    " false, '[]')",
)
TABLE = "console_audit_shown"


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _granted(url: str) -> list[tuple[str, int | None]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [(str(u), g) for u, g in conn.execute(text("SELECT username, granted_by FROM staff_users"))]
    finally:
        engine.dispose()


def _seqs(url: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [int(s) for s in conn.execute(text("SELECT seq FROM console_audit ORDER BY seq")).scalars()]
    finally:
        engine.dispose()


def test_0021_adds_the_shown_people_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    assert TABLE in _tables(url)
    command.downgrade(alembic_config(url), "0020")
    assert TABLE not in _tables(url) and "granted_by" not in table_columns(url, "staff_users")
    insert_rows(url, ROWS, "0" * 64)
    upgrade(url)
    assert TABLE in _tables(url)
    assert schema_drift(url) == []
    assert _seqs(url) == [1] and _granted(url) == [("sup1", None)]


def test_0021_downgrade_refuses_to_drop_a_list_view_or_an_unconfirmed_account(
    backend_urls: dict[str, str], tmp_path: Path
) -> None:
    """Before, the downgrade dropped both without a word: the list views were gone from the people's 查阅记录, and an
    admin-made supervisor account still awaiting a second supervisor counted as confirmed after going back up."""
    url = migrated_database(backend_urls, tmp_path, "0021")
    shown = "INSERT INTO console_audit_shown (seq, beneficiary_id) VALUES (1, 7)"
    insert_rows(url, (*ROWS, shown, "UPDATE staff_users SET granted_by = 1"), "0" * 64)
    said = refused_downgrade(url, "0020")
    assert said.startswith("cannot go below 0021: the older schema cannot hold 1 views of a person by a list page"), (
        said
    )
    assert "; 1 admin-made accounts awaiting a second supervisor" in said, said
    assert alembic_version(url) == "0021" and TABLE in _tables(url) and _granted(url) == [("sup1", 1)]
    insert_rows(url, ("UPDATE staff_users SET granted_by = NULL",), False)
    assert "cannot hold 1 views of a person" in refused_downgrade(url, "0020")  # either one is kept
    insert_rows(url, (f"DELETE FROM {TABLE}",), False)  # nothing left to lose: it goes
    command.downgrade(alembic_config(url), "0020")
    assert TABLE not in _tables(url) and "granted_by" not in table_columns(url, "staff_users")


def test_an_embedded_database_from_0020_gets_the_table_and_counts_a_list_view(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0020")
    insert_rows(url, ROWS, "0" * 64)
    assert TABLE not in _tables(url)
    create_all_at(url)
    assert TABLE in _tables(url) and _seqs(url) == [1] and _granted(url) == [("sup1", None)]
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            b = Beneficiary(id=7, external_id="EXT-1", id_hash="h")  # as the access log reads a person: not stored
            access_log.record_list(db, "staff:rev1", "queue.view", "-", {"n": 1, "shown": ["EXT-1"]}, [7])
            # The new list view is on the person's access log; the old one stays in its entry's JSON list only.
            assert [a.seq for a in access_log.person_entries(db, b)] == [2]
    finally:
        engine.dispose()
