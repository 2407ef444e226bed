"""The Alembic migrations build exactly the schema the models declare (no drift), on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from service.infra.db.migrate import upgrade
from service.schema import metadata
from tests.service.live import embedded_file, fresh_database, migrated_database


def test_migrations_match_the_models(backend_urls: dict[str, str], tmp_path: Path) -> None:
    url = migrated_database(backend_urls, tmp_path)  # on SQLite a fresh one is create_all's: a migrated file
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
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
    from service.certification.models import WorkerHeartbeat, utcnow
    from service.infra.db.migrate import alembic_config
    from service.infra.security import Keyring
    from tests.service import factories

    url = migrated_database(backend_urls, tmp_path)
    engine = create_engine(url)
    sid, now = str(uuid.uuid4()), utcnow()
    with Session(engine) as db:
        b = factories.beneficiary(db, Keyring(secrets.token_bytes(32), "k"))
        db.add(WorkerHeartbeat(name="host:1:abcd", kind="process", host="host", pid=1, started_at=now, last_seen=now))
        db.add(factories.session_row(b.id, id=sid, state="processing", worker_process="host:1:abcd"))
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
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
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
    embedded_file(url)
    engine = create_engine(url)
    before = {c["name"] for c in inspect(engine).get_columns("beneficiaries")}
    assert "household" not in before
    create_all(engine, metadata)
    insp = inspect(engine)
    assert "household" in {c["name"] for c in insp.get_columns("beneficiaries")}
    assert "worker_process" in {c["name"] for c in insp.get_columns("cert_sessions")}
    assert any(ix["column_names"] == ["household"] for ix in insp.get_indexes("beneficiaries"))
    with Session(engine) as db:
        assert db.scalars(select(Beneficiary).where(Beneficiary.household == "h1")).all() == []
    assert add_missing_columns(engine, metadata) == []  # idempotent
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

    url = migrated_database(backend_urls, tmp_path)
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
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


_OPERATORS_0007 = (
    "INSERT INTO proxy_operators (id, channel, channel_hash, token_hash, person_hash, id_masked, name, verified_at,"
    " template, template_model, template_consent, created_at) VALUES (:id, 'wechat', :ch, 't', :ph, :masked,"
    " :name, :at, :tpl, :model, :consent, :created)"
)
_VERIFIED = {"id": "op-verified", "ch": "c1", "ph": "h" * 64, "masked": "3701**********0012", "name": "李建国"}
AT = "2026-05-01 08:30:00"
_UNVERIFIED = {"id": "op-new", "ch": "c2", "ph": None, "masked": None, "name": None}


def _operators_at_0007(url: str) -> None:
    """Migrate to 0007 and add a verified relative with an enrolled template and a fresh, unverified one."""
    import datetime as dt

    from sqlalchemy import text

    upgrade(url, "0007")
    engine = create_engine(url)
    at = dt.datetime(2026, 5, 1, 8, 30)
    with engine.begin() as conn:
        conn.execute(
            text(_OPERATORS_0007), {**_VERIFIED, "created": at, "at": at, "tpl": b"enc", "model": "m1", "consent": True}
        )
        conn.execute(
            text(_OPERATORS_0007),
            {**_UNVERIFIED, "created": at, "at": None, "tpl": None, "model": None, "consent": False},
        )
    engine.dispose()


def test_operator_identity_migration_moves_the_identity_and_back(backend_urls: dict[str, str], tmp_path: Path) -> None:
    """0008: a verified relative's identity and template move from proxy_operators to their own table (an
    unverified account gets no identity row); downgrade puts them back on the operator, unchanged."""

    from sqlalchemy import inspect, text

    from alembic import command
    from service.infra.db.migrate import alembic_config

    url = fresh_database(backend_urls, tmp_path)
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
    else:  # fresh_database migrated to head: step back to the schema before this migration
        command.downgrade(alembic_config(url), "0007")
    _operators_at_0007(url)
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM proxy_operator_identities")).mappings().all()
            assert [(r["operator_id"], r["person_hash"], r["name"], r["id_masked"]) for r in rows] == [
                ("op-verified", "h" * 64, "李建国", "3701**********0012")
            ]
            assert (bytes(rows[0]["template"]), rows[0]["template_model"], bool(rows[0]["template_consent"])) == (
                b"enc",
                "m1",
                True,
            )
            assert str(rows[0]["verified_at"])[:19] == AT  # SQLite hands a raw query's datetime back as text
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert "person_hash" not in {c["name"] for c in inspect(engine).get_columns("proxy_operators")}

        command.downgrade(alembic_config(url), "0007")
        assert "proxy_operator_identities" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            ops = conn.execute(text("SELECT * FROM proxy_operators ORDER BY id")).mappings().all()
        assert [
            (r["id"], r["person_hash"], r["name"], r["template"] and bytes(r["template"]), bool(r["template_consent"]))
            for r in ops
        ] == [
            ("op-new", None, None, None, False),
            ("op-verified", "h" * 64, "李建国", b"enc", True),
        ]
        assert str(ops[1]["verified_at"])[:19] == AT and ops[1]["template_model"] == "m1"
    finally:
        engine.dispose()


def test_embedded_database_from_0007_carries_the_operator_identities(tmp_path: Path) -> None:
    """scripts/start.sh reuses var/pension_cert.db: create_all on a database from before 0008 carries each
    relative's identity to the new table, and a new operator can then be created (the old NOT NULL
    template_consent column is gone)."""
    import uuid

    from sqlalchemy import inspect
    from sqlalchemy.orm import Session

    from service.features.proxy.models import ProxyOperator
    from service.infra.db.engine import create_all

    url = f"sqlite:///{tmp_path / 'old.db'}"
    _operators_at_0007(url)
    embedded_file(url)
    engine = create_engine(url)
    try:
        create_all(engine, metadata)
        assert "template_consent" not in {c["name"] for c in inspect(engine).get_columns("proxy_operators")}
        with Session(engine) as db:
            verified, fresh = db.get(ProxyOperator, "op-verified"), db.get(ProxyOperator, "op-new")
            assert verified is not None and fresh is not None and fresh.identity is None
            assert (verified.person_hash, verified.name, verified.template_enrolled) == ("h" * 64, "李建国", True)
            db.add(ProxyOperator(id=str(uuid.uuid4()), channel="wechat", channel_hash="c3", token_hash="t"))
            db.commit()
        create_all(engine, metadata)  # idempotent: nothing left to carry
        with Session(engine) as db:
            assert db.get(ProxyOperator, "op-verified").identity is not None  # type: ignore[union-attr]
    finally:
        engine.dispose()
