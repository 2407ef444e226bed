"""The Alembic migrations build exactly the schema the models declare (no drift), on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from service.infra.db.engine import Base
from service.infra.db.migrate import upgrade
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


def test_worker_heartbeat_migration_down_and_up(backend_urls: dict[str, str], tmp_path: Path) -> None:
    """0006 (worker heartbeats): downgrade removes the table and the session column and keeps the sessions;
    upgrade brings both back, again without drift."""
    import secrets
    import uuid

    from sqlalchemy import inspect, text
    from sqlalchemy.orm import Session

    from alembic import command
    from service.certification.models import CertSession, WorkerHeartbeat, utcnow
    from service.infra.db.migrate import alembic_config
    from service.infra.security import Keyring
    from tests.service import factories

    url = fresh_database(backend_urls, tmp_path)
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        upgrade(url)
    engine = create_engine(url)
    sid, now = str(uuid.uuid4()), utcnow()
    with Session(engine) as db:
        b = factories.beneficiary(db, Keyring(secrets.token_bytes(32), "k"))
        db.add(WorkerHeartbeat(name="host:1:abcd", kind="process", host="host", pid=1, started_at=now, last_seen=now))
        db.add(
            CertSession(
                id=sid,
                beneficiary_id=b.id,
                channel="self",
                token_hash="t",
                nonce=uuid.uuid4().hex,
                nonce_expires_at=now,
                expires_at=now,
                state="processing",
                worker_process="host:1:abcd",
            )
        )
        db.commit()
    try:
        command.downgrade(alembic_config(url), "0005")
        insp = inspect(engine)
        assert "worker_heartbeats" not in insp.get_table_names()
        assert "worker_process" not in {c["name"] for c in insp.get_columns("cert_sessions")}
        row = text("SELECT * FROM cert_sessions WHERE id = :i")
        with engine.connect() as conn:
            assert conn.execute(row, {"i": sid}).mappings().one()["state"] == "processing"

        upgrade(url)
        assert "worker_heartbeats" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert conn.execute(row, {"i": sid}).mappings().one()["worker_process"] is None
        assert diff == []
    finally:
        engine.dispose()


def test_embedded_database_from_an_earlier_version_gets_the_new_columns(tmp_path: Path) -> None:
    """scripts/start.sh reuses var/pension_cert.db: a database made before the household and heartbeat columns
    (here: migrated only to 0004) is brought up to the models at start, and the ORM reads it."""
    from sqlalchemy import inspect, select
    from sqlalchemy.orm import Session

    from service.certification.models import Beneficiary
    from service.infra.db.engine import add_missing_columns, create_all

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = create_engine(url)
    before = {c["name"] for c in inspect(engine).get_columns("beneficiaries")}
    assert "household" not in before
    create_all(engine)
    insp = inspect(engine)
    assert "household" in {c["name"] for c in insp.get_columns("beneficiaries")}
    assert "worker_process" in {c["name"] for c in insp.get_columns("cert_sessions")}
    assert any(ix["column_names"] == ["household"] for ix in insp.get_indexes("beneficiaries"))
    with Session(engine) as db:
        assert db.scalars(select(Beneficiary).where(Beneficiary.household == "h1")).all() == []
    assert add_missing_columns(engine) == []  # idempotent
    engine.dispose()


def test_assist_request_migration_keeps_one_open_request_per_person(
    backend_urls: dict[str, str], tmp_path: Path
) -> None:
    """0007 (citizens' manual-review / home-visit requests): the partial unique index refuses a second open
    request for the same person (closed ones do not count); downgrade removes the table, upgrade restores it."""
    import secrets

    import pytest
    from sqlalchemy import inspect
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from alembic import command
    from service.features.console.models import AssistRequest
    from service.infra.db.migrate import alembic_config
    from service.infra.security import Keyring
    from tests.service import factories

    url = fresh_database(backend_urls, tmp_path)
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        upgrade(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            b = factories.beneficiary(db, Keyring(secrets.token_bytes(32), "k"))

            def ask(status: str = "open") -> AssistRequest:
                return AssistRequest(
                    beneficiary_id=b.id, kind="home_visit", phone="13800138000", openid="o", status=status
                )

            db.add_all([ask("closed"), ask("closed"), ask()])
            db.commit()
            db.add(ask())
            with pytest.raises(IntegrityError):
                db.commit()
            db.rollback()
        command.downgrade(alembic_config(url), "0006")
        assert "assist_requests" not in inspect(engine).get_table_names()
        upgrade(url)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()
