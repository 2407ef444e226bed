"""0026: beneficiaries.grace_dated (the record's validity is the first-import grace date: cycle.awaiting_first). Its
downgrade dropped the marks without a word; the date alone cannot rebuild them, so after going back up every
grace-dated person read 已认证 until they certified. It now refuses while a record is marked (lossy_downgrade.py)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from service.infra.db.migrate import alembic_config
from tests.service.live import alembic_version, insert_rows, migrated_database, refused_downgrade, table_columns

PERSON = (
    "INSERT INTO beneficiaries (id, external_id, id_hash, id_enc, id_masked, name, region, benefit_types, status,"
    " valid_until, grace_dated, template_consent, roster_digest, created_at, updated_at) VALUES (1, 'R1', 'h1', 'e',"
    " '3701**********0012', '张秀英', '370102', '[]', 'active', '2027-03-01', NOT :f, :f, '', '2026-12-01 00:00:00',"
    " '2026-12-01 00:00:00')"
)


def test_0026_downgrade_refuses_to_drop_a_grace_mark(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path, "0026")
    insert_rows(url, (PERSON,), False)
    said = refused_downgrade(url, "0025")
    assert said.startswith("cannot go below 0026: the older schema cannot hold 1 people awaiting a first"), said
    assert alembic_version(url) == "0026" and "grace_dated" in table_columns(url, "beneficiaries")
    insert_rows(url, ("UPDATE beneficiaries SET grace_dated = :f",), False)  # certified since: nothing to lose
    command.downgrade(alembic_config(url), "0025")
    assert alembic_version(url) == "0025" and "grace_dated" not in table_columns(url, "beneficiaries")
