"""0011: one open assistance request per person and requester. Migrated (both databases, down and up, no drift)
and carried into an embedded database made at 0010 by create_all (the index is rebuilt)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alembic import command
from service.features.console.models import AssistRequest
from service.infra.db.engine import create_all
from service.infra.db.migrate import alembic_config, upgrade
from service.infra.security import Keyring
from service.schema import metadata
from tests.service import factories
from tests.service.live import embedded_file, migrated_database


def _two_requesters_for_one_person(engine: Engine) -> None:
    with Session(engine) as db:
        b = factories.beneficiary(db, Keyring(secrets.token_bytes(32), "k"))

        def ask(openid: str) -> AssistRequest:
            return AssistRequest(beneficiary_id=b.id, kind="home_visit", phone="13800138000", openid=openid)

        db.add_all([ask("o-pensioner"), ask("o-stranger")])
        db.commit()  # two requesters: both stored
        db.add(ask("o-pensioner"))
        with pytest.raises(IntegrityError):  # the same requester twice: refused
            db.commit()


def _index_columns(engine: Engine) -> list[str]:
    (index,) = [i for i in inspect(engine).get_indexes("assist_requests") if i["name"] == "uq_assist_requests_open"]
    return [str(c) for c in index["column_names"]]


def test_0011_keys_open_requests_by_person_and_requester(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)
    engine = create_engine(url)
    try:
        assert _index_columns(engine) == ["beneficiary_id", "openid"]
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        command.downgrade(alembic_config(url), "0010")
        assert _index_columns(engine) == ["beneficiary_id"]
        upgrade(url)
        _two_requesters_for_one_person(engine)
    finally:
        engine.dispose()


def test_an_embedded_database_from_0010_gets_the_new_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0010")
    embedded_file(url)
    engine = create_engine(url)
    try:
        assert _index_columns(engine) == ["beneficiary_id"]
        create_all(engine, metadata)
        assert _index_columns(engine) == ["beneficiary_id", "openid"]
        _two_requesters_for_one_person(engine)
        create_all(engine, metadata)  # idempotent
        assert _index_columns(engine) == ["beneficiary_id", "openid"]
    finally:
        engine.dispose()
