"""`pension-cert move-database --to postgresql://…` (docs/operations.md, "Moving from SQLite to PostgreSQL"; Part BD):
a pilot's embedded SQLite database, written by the app's own code, moved to a real, migrated PostgreSQL database.
Before, nothing moved the data: a bureau scaling out started again from an empty database."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from sqlalchemy import create_engine, func, insert, select, text

import service.schema
from service.adapters.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_INPUT, EXIT_UNAVAILABLE
from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.heartbeat import beat, mark_stopped
from service.certification.models import AuditEntry, Beneficiary, CertSession, CycleEvent, RosterImport
from service.certification.registry import note_exported
from service.features.console import audit_chain
from tests.service import factories
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.sqlite_service import sqlite_service
from tests.service.adapters.cli.test_cli_contract import assert_clean
from tests.service.conftest import make_settings
from tests.service.live import fresh_database

if TYPE_CHECKING:
    import subprocess

    from service.certification.database_move import MoveFailedError

PEOPLE = 40


@pytest.fixture
def pg_url(scaleout_urls: dict[str, str]) -> str:
    """The throwaway PostgreSQL server's URL (tests/service/conftest.py: skipped only where it cannot start)."""
    return scaleout_urls["database_url"]


@pytest.fixture
def target(pg_url: str, tmp_path: Path) -> str:
    """An empty database of its own, migrated with Alembic to head."""
    return fresh_database({"database_url": pg_url}, tmp_path)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[dict[str, str], ServiceContext]]:
    """A pilot's SQLite database and the environment its commands run with."""
    env, ctx = sqlite_service(tmp_path / "var", tmp_path / "pilot.db")
    pilot(ctx)
    yield env, ctx
    ctx.engine.dispose()


def pilot(ctx: ServiceContext) -> None:
    """People with enrolled templates, sessions (decided with a result, open without), suspensions, both audit
    trails (the staff chain anchored in the media store) and a worker that stopped cleanly."""
    rng = np.random.default_rng(7)
    with ctx.db() as db:
        for i in range(PEOPLE):
            b = factories.beneficiary(db, ctx.keyring, name=f"张秀英{i}")
            factories.enrol_template(ctx.keyring, b, rng.standard_normal(512), "arcface")
            row = factories.session_row(b.id)
            if i % 2:
                row.state, row.decision, row.result = "decided", "accept", {"score": 0.8123456789, "名": "甲"}
            db.add(row)
            if i % 5 == 0:
                db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=dt.date(2026, 12, 1)))
        audit(db, "api:test", "beneficiary.read", "P000001", {"why": "试点"})
    for n in range(3):
        with ctx.db() as db:
            audit_chain.record(db, "admin", "case.view", f"s{n}", {"note": f"查看 {n}"})
    beat(ctx, "process", name="pilot-host:1:aaaa")
    mark_stopped(ctx, "pilot-host:1:aaaa")


def move_failure(ctx: ServiceContext, target: str) -> MoveFailedError:
    """The move of `ctx`'s database into `target`, run in this process as the command runs it: its failure."""
    from service.certification import database_move
    from service.infra.db.engine import make_engine

    engine = make_engine(target)
    try:
        with pytest.raises(database_move.MoveFailedError) as caught:
            database_move.move(ctx, engine, service.schema.metadata, 100, {"os_user": "test"})
    finally:
        engine.dispose()
    return caught.value


def refused(cli: CliRunner, to: str, env: dict[str, str], code: int) -> subprocess.CompletedProcess[str]:
    """`move-database --to <to>` run as an operator runs it: it must exit with `code` and a clean message."""
    proc = cli("move-database", "--to", to, env=env)
    assert proc.returncode == code, proc.stderr
    assert_clean(proc.stderr)
    return proc


def env_for(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "PENSION_CERT_DATABASE_URL": url}


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {
            t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in service.schema.metadata.sorted_tables
        }
    engine.dispose()
    return found


def one_row(url: str, sql: str) -> Any:
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(text(sql)).one()
    engine.dispose()
    return tuple(row)


def test_the_move_copies_every_table_verified_and_the_chain_verifies_on_postgresql(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str
) -> None:
    env, ctx = source
    before = counts(env["PENSION_CERT_DATABASE_URL"])
    proc = cli("move-database", "--to", target, "--batch", "7", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] and {name: t["rows"] for name, t in out["tables"].items()} == before
    assert out["rows"] == sum(before.values()) and before["beneficiaries"] == PEOPLE
    after = counts(target)
    assert after == {**before, "audit_entries": before["audit_entries"] + 1}  # + the move's own entry
    # Byte for byte: the sealed template, the keyed hash, the stored time (naive UTC), JSON NULL against SQL NULL.
    sql = "SELECT template, id_hash, id_enc, created_at FROM beneficiaries WHERE external_id = '{}'"
    with ctx.db() as db:
        first = db.scalars(select(Beneficiary).order_by(Beneficiary.id)).first()
        assert first is not None
    moved = one_row(target, sql.format(first.external_id))
    assert (bytes(moved[0]), moved[1], moved[2], moved[3]) == (
        first.template,
        first.id_hash,
        first.id_enc,
        first.created_at,
    )
    nulls = "SELECT count(*) FROM cert_sessions WHERE result IS NULL"
    assert one_row(target, nulls) == one_row(env["PENSION_CERT_DATABASE_URL"], nulls) == (PEOPLE // 2,)
    # The staff chain and its anchors (in the same media store) verify on the target.
    check = cli("console", "verify-audit", env=env_for(env, target))
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["entries"] == before["console_audit"] == 3
    assert one_row(target, "SELECT actor FROM audit_entries WHERE action = 'database.moved'") == ("cli",)


def test_the_service_inserts_after_the_move_its_ids_follow_the_copied_ones(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str, tmp_path: Path
) -> None:
    """Without the sequences set past the copied ids, the next person, audit entry or event collides."""
    env, ctx = source
    proc = cli("move-database", "--to", target, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sequences"]["beneficiaries.id"] == PEOPLE + 1
    settings = ctx.settings.model_copy(update={"database_url": target})
    moved = ServiceContext(settings, schema=None)
    try:
        with moved.db() as db:
            b = factories.beneficiary(db, moved.keyring)
            audit(db, "api:test", "beneficiary.read", b.external_id)
            db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=dt.date(2026, 12, 6)))
            db.add(factories.session_row(b.id))
        with moved.db() as db:
            assert b.id == PEOPLE + 1
            assert db.scalar(select(func.max(CycleEvent.id))) == PEOPLE // 5 + 1
            assert db.scalar(select(func.count()).select_from(AuditEntry)) == 3
            audit_chain.record(db, "admin", "case.view", "after-the-move")
    finally:
        moved.engine.dispose()
    check = cli("console", "verify-audit", env=env_for(env, target))
    assert check.returncode == 0 and json.loads(check.stdout)["entries"] == 4, check.stdout + check.stderr


def test_the_move_refuses_a_target_not_migrated_or_not_empty(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str, pg_url: str
) -> None:
    env, _ctx = source
    bare = "bare_" + uuid.uuid4().hex[:8]
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {bare}"))
    admin.dispose()
    proc = refused(cli, pg_url.rsplit("/", 1)[0] + "/" + bare, env, EXIT_CONFIG)
    assert "SCHEMA_NOT_MIGRATED: the target database is not at this version's migrations" in proc.stderr
    assert "alembic upgrade head" in proc.stderr and "nothing was written" in proc.stderr

    engine = create_engine(target)
    with engine.begin() as conn:
        conn.execute(insert(RosterImport).values(filename="live.csv", sha256="0" * 64))
    engine.dispose()
    busy = refused(cli, target, env, EXIT_INPUT)
    assert "TARGET_NOT_EMPTY" in busy.stderr and "roster_imports" in busy.stderr
    assert sum(counts(target).values()) == 1  # nothing merged into it
    wrong = cli("move-database", "--to", "sqlite:///elsewhere.db", env=env)
    assert wrong.returncode == EXIT_INPUT and "BAD_TARGET" in wrong.stderr


def test_the_move_refuses_while_a_worker_of_the_source_is_alive(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str
) -> None:
    env, ctx = source
    beat(ctx, "process", name="pilot-host:2:bbbb")
    proc = refused(cli, target, env, EXIT_UNAVAILABLE)
    assert "SERVICE_RUNNING" in proc.stderr and "pilot-host:2:bbbb" in proc.stderr
    assert sum(counts(target).values()) == 0
    mark_stopped(ctx, "pilot-host:2:bbbb")  # stopped cleanly (Ctrl-C on scripts/start.sh)
    assert cli("move-database", "--to", target, env=env).returncode == 0


def test_a_failure_halfway_leaves_the_target_empty_and_a_rerun_moves_it(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str
) -> None:
    """SQLite keeps a value longer than its column allows (it checks no length); PostgreSQL refuses it in the tenth
    table, after nine were written: all of it is rolled back, the message says so, and once fixed a rerun works."""
    env, ctx = source
    with ctx.db() as db:
        sid = db.scalars(select(CertSession.id).limit(1)).one()
        db.execute(text("UPDATE cert_sessions SET channel = 'wechat-official-account' WHERE id = :s"), {"s": sid})
    proc = refused(cli, target, env, EXIT_FAILED)
    assert "MOVE_FAILED: table cert_sessions could not be copied: value too long" in proc.stderr
    assert "the target was rolled back and holds no row of the service" in proc.stderr
    assert sum(counts(target).values()) == 0
    with ctx.db() as db:
        db.execute(text("UPDATE cert_sessions SET channel = 'wechat' WHERE id = :s"), {"s": sid})
    again = cli("move-database", "--to", target, env=env)
    assert again.returncode == 0, again.stderr
    assert counts(target)["cert_sessions"] == PEOPLE


def test_a_copy_that_differs_from_the_source_is_not_committed(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str
) -> None:
    """A target that changes what it is given (here a trigger rewriting names) is caught by the checksums before
    the commit: nothing stays."""
    env, _ctx = source
    engine = create_engine(target)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION trim_name() RETURNS trigger AS $$ BEGIN NEW.name := left(NEW.name, 3); "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text("CREATE TRIGGER trim_name BEFORE INSERT ON beneficiaries FOR EACH ROW EXECUTE FUNCTION trim_name()")
        )
    engine.dispose()
    proc = refused(cli, target, env, EXIT_FAILED)
    assert "MOVE_NOT_VERIFIED: the copy does not match the source: beneficiaries (40 rows in the source" in proc.stderr
    assert "the same count but different contents" in proc.stderr
    assert sum(counts(target).values()) == 0


def test_a_source_at_an_older_migration_is_refused(
    cli: CliRunner, target: str, tmp_path: Path, source: tuple[dict[str, str], ServiceContext]
) -> None:
    env, _ctx = source
    from service.infra.db.migrate import upgrade

    older = f"sqlite:///{tmp_path / 'older.db'}"
    upgrade(older, "0017")
    proc = refused(cli, target, env_for(env, older), EXIT_CONFIG)
    assert "SCHEMA_NOT_MIGRATED: the source database: the database is at migration 0017" in proc.stderr
    assert sum(counts(target).values()) == 0


def test_events_after_the_move_are_numbered_past_every_id_the_payment_files_carried(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str
) -> None:
    """The pilot exported event 500 (recorded in the media store), then its highest events were renumbered or
    lost: past the copied maximum alone, the next suspension would reuse an id the payment system holds."""
    env, ctx = source
    note_exported(ctx.storage, [{"event_id": 500}])
    proc = cli("move-database", "--to", target, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["next_event_id"] == 501
    settings = ctx.settings.model_copy(update={"database_url": target})
    moved = ServiceContext(settings, schema=None)
    try:
        with moved.db() as db:
            first = db.scalars(select(Beneficiary.id).limit(1)).one()
            event = CycleEvent(beneficiary_id=first, kind="resumed", on_date=dt.date(2026, 12, 6))
            db.add(event)
        assert event.id == 501
    finally:
        moved.engine.dispose()


def schema_of(url: str) -> list[tuple[str, ...]]:
    """Everything SQLite's catalogue says of a file: tables, columns (their CREATE statements) and indexes."""
    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")]
    finally:
        conn.close()


def on_file(url: str, *statements: str) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        for sql in statements:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def test_a_refused_source_is_left_exactly_as_it_was(
    cli: CliRunner, target: str, tmp_path: Path, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """Before, the command opened the source as the app does (create_all, columns and indexes added) and only then
    checked its schema: a file at migration 0017 was refused but now carried 0018's column and indexes, so the
    remedy (`alembic upgrade head`) failed on it; a file lacking a column was silently completed and moved; a
    table this version does not know was dropped without a word."""
    env, ctx = source
    from service.infra.db.migrate import upgrade

    older = f"sqlite:///{tmp_path / 'older.db'}"
    upgrade(older, "0017")
    before = schema_of(older)
    proc = refused(cli, target, env_for(env, older), EXIT_CONFIG)
    assert "SCHEMA_NOT_MIGRATED: the source database: the database is at migration 0017" in proc.stderr
    assert schema_of(older) == before  # `alembic upgrade head` still applies to it
    ctx.engine.dispose()
    url = env["PENSION_CERT_DATABASE_URL"]
    cases = [
        (
            [
                "CREATE TABLE face_payments (id INTEGER PRIMARY KEY, amount TEXT)",
                "INSERT INTO face_payments VALUES (1, 'x')",
            ],
            "the source database has table face_payments, which this version does not know",
            ["DROP TABLE face_payments"],
        ),
        (
            ["ALTER TABLE beneficiaries ADD COLUMN pension_bank TEXT"],
            "SCHEMA_MISMATCH: the source database has beneficiaries.pension_bank, which this version does not know",
            ["ALTER TABLE beneficiaries DROP COLUMN pension_bank"],
        ),
        (
            ["ALTER TABLE beneficiaries DROP COLUMN identity_since"],
            "SCHEMA_MISMATCH: the source database lacks beneficiaries.identity_since (an earlier version made it: "
            "start this version once on it",
            [],
        ),
    ]
    for change, message, undo in cases:
        on_file(url, *change)
        before = schema_of(url)
        proc = refused(cli, target, env, EXIT_CONFIG)
        assert message in proc.stderr and "nothing was written" in proc.stderr
        assert schema_of(url) == before, message
        assert sum(counts(target).values()) == 0
        on_file(url, *undo)


def test_a_missing_or_empty_source_is_refused_and_not_created(
    cli: CliRunner, target: str, tmp_path: Path, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """Before, a mistyped PENSION_CERT_DATABASE_URL (or the default relative `var/` from another folder) created
    an empty file, "moved" it with exit 0 and left the move's audit entry in the target: the real move was then
    refused (TARGET_NOT_EMPTY)."""
    env, _ctx = source
    typo = tmp_path / "typo_pension_cert.db"
    proc = refused(cli, target, env_for(env, f"sqlite:///{typo}"), EXIT_CONFIG)
    assert f"SOURCE_MISSING: the source database {typo} does not exist" in proc.stderr
    assert not typo.exists() and sum(counts(target).values()) == 0
    made = ServiceContext(
        make_settings(tmp_path / "var2", database_url=f"sqlite:///{typo}"), schema=service.schema.metadata
    )
    made.engine.dispose()
    proc = refused(cli, target, env_for(env, f"sqlite:///{typo}"), EXIT_CONFIG)
    assert f"SOURCE_EMPTY: the source database {typo} holds no record of the service" in proc.stderr
    assert sum(counts(target).values()) == 0
    assert cli("move-database", "--to", target, env=env).returncode == 0  # the real one still moves


def test_a_malformed_target_url_is_refused_without_a_traceback_or_its_password(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext]
) -> None:
    env, _ctx = source
    for url in ("postgresql://u:pw-s3cret@localhost:abc/db", "postgresql+nodriver://u:pw-s3cret@localhost/db"):
        proc = refused(cli, url, env, EXIT_INPUT)
        assert "BAD_TARGET" in proc.stderr and "pw-s3cret" not in proc.stderr
    # A password in the query string is hidden as the one before the host is.
    proc = refused(cli, "postgresql://u@127.0.0.1:1/db?password=pw-s3cret&passfile=/x/pgp", env, EXIT_UNAVAILABLE)
    assert "DB_UNAVAILABLE: the target database postgresql://u@127.0.0.1:1/db?" in proc.stderr
    assert "pw-s3cret" not in proc.stderr and "/x/pgp" not in proc.stderr


WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO audit_entries (at, actor, action, target, detail) "
             "VALUES ('2026-12-06 00:00:00.000000', 'api:late', 'beneficiary.read', 'LATE', '{}')")
conn.execute("COMMIT")
"""


def test_a_writer_waiting_for_the_copy_rolls_the_move_back(
    cli: CliRunner, source: tuple[dict[str, str], ServiceContext], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer the heartbeats cannot see (an API with WORKER_MODE=none, cron's cycle-run) waits for the copy's
    write lock and commits into SQLite right after: before, that row was simply missing from PostgreSQL, the
    move reported success. A real second process writes here while the copy holds the lock."""
    import subprocess
    import sys
    import time

    from service.certification import database_move

    env, ctx = source
    path = env["PENSION_CERT_DATABASE_URL"].removeprefix("sqlite:///")
    real_copy = database_move.copy_all
    writers: list[subprocess.Popen[bytes]] = []

    def copy_with_a_writer(*args: Any, **kwargs: Any) -> Any:
        writers.append(subprocess.Popen([sys.executable, "-c", WRITER, path]))
        time.sleep(1.0)  # it started and waits for SQLite's write lock, which the copy holds
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(database_move, "copy_all", copy_with_a_writer)
    failure = move_failure(ctx, target)
    assert writers[0].wait(30) == 0
    assert failure.code == "SOURCE_CHANGED" and failure.target_empty is True
    assert "written while the copy ran" in str(failure)
    assert sum(counts(target).values()) == 0
    monkeypatch.undo()
    proc = cli("move-database", "--to", target, env=env)  # the writer stopped: the same command moves it all
    assert proc.returncode == 0, proc.stderr
    assert one_row(target, "SELECT count(*) FROM audit_entries WHERE target = 'LATE'") == (1,)


def test_a_target_lost_during_the_copy_is_named_and_nothing_is_committed(
    source: tuple[dict[str, str], ServiceContext], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the outage surfaced as the bare "DB_UNAVAILABLE: the database does not answer" (which database, and
    what became of the copy?). Here PostgreSQL ends the copy's connection after the copy began."""
    from service.certification import database_move

    _env, ctx = source
    real_copy = database_move.copy_all

    def copy_on_a_dropped_connection(src: Any, conn: Any, *args: Any, **kwargs: Any) -> Any:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        admin = create_engine(target)
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        admin.dispose()
        return real_copy(src, conn, *args, **kwargs)

    monkeypatch.setattr(database_move, "copy_all", copy_on_a_dropped_connection)
    failure = move_failure(ctx, target)
    assert failure.code == "TARGET_UNAVAILABLE" and failure.outage
    assert "the target database stopped answering during the copy, before anything was committed" in str(failure)
    assert failure.target_empty is True and sum(counts(target).values()) == 0


def _file_state(path: Path) -> tuple[str, int, str, list[str]]:
    """A file as the operator would compare it: its bytes, its mode, SQLite's journal mode and its companions."""
    import hashlib
    import stat

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()
    companions = sorted(p.name for p in path.parent.glob(f"{path.name}-*"))
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(path.stat().st_mode), journal, companions


def test_a_refused_source_keeps_its_journal_mode_and_file_mode(
    cli: CliRunner, target: str, tmp_path: Path, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """Opening the source as the app does switched it to WAL mode and took the group's read right away, before
    the checks: a file the move then refused (a worker alive, a target in use, a table it does not know) was
    changed anyway (a backup copy no longer byte for byte its backup, a -wal and -shm beside it, a mode the
    bureau's backup user could no longer read). The checks now read it read-only: a refused file is untouched."""
    env, ctx = source
    ctx.engine.dispose()
    url = env["PENSION_CERT_DATABASE_URL"]
    path = Path(url.removeprefix("sqlite:///"))
    on_file(url, "PRAGMA journal_mode=DELETE", "CREATE TABLE face_payments (id INTEGER PRIMARY KEY)")
    path.chmod(0o640)
    before = _file_state(path)
    assert before[1:] == (0o640, "delete", []), before
    proc = refused(cli, target, env, EXIT_CONFIG)
    assert "SCHEMA_MISMATCH" in proc.stderr
    assert _file_state(path) == before
    on_file(url, "DROP TABLE face_payments")
    on_file(url, "UPDATE worker_heartbeats SET stopped_at = NULL, last_seen = CURRENT_TIMESTAMP")
    busy = _file_state(path)
    assert "SERVICE_RUNNING" in refused(cli, target, env, EXIT_UNAVAILABLE).stderr
    assert _file_state(path) == busy and sum(counts(target).values()) == 0


def test_a_source_that_is_not_sqlite_exits_as_every_source_refusal(
    cli: CliRunner, target: str, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """The source is a setting (PENSION_CERT_DATABASE_URL): SOURCE_MISSING and SOURCE_EMPTY exit 4, as a bad
    setting does (the command line's contract), but a source that is not SQLite exited 2, a bad argument."""
    env, _ctx = source
    proc = refused(cli, target, env_for(env, target), EXIT_CONFIG)
    assert "BAD_SOURCE" in proc.stderr and "PENSION_CERT_DATABASE_URL" in proc.stderr


def test_the_move_refuses_a_media_store_that_is_not_the_sources_and_says_the_media_stay(
    cli: CliRunner, target: str, tmp_path: Path, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """The media are not moved (they stay in the store, sealed with the media key): before, nothing checked or said
    so. An operator who had already pointed the settings at the new set-up's store (another folder or bucket) or
    key moved the database with exit 0, and the new service then showed no picture and failed verify-audit on
    every anchor. Now refused, exit 4 `MEDIA_STORE_MISMATCH`, nothing written; with the pilot's store the move
    says, before copying, that the media stay there with the same keys, and names the store in its output."""
    import base64
    import secrets

    env, ctx = source
    ctx.engine.dispose()
    other = tmp_path / "new-media"
    other.mkdir()  # the new set-up's store, already made (a folder that does not exist: the test below)
    proc = refused(cli, target, {**env, "PENSION_CERT_MEDIA_DIR": str(other)}, EXIT_CONFIG)
    assert "MEDIA_STORE_MISMATCH" in proc.stderr and f"the folder {other}" in proc.stderr, proc.stderr
    assert "holds no anchor" in proc.stderr and "nothing was written" in proc.stderr
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    proc = refused(cli, target, {**env, "PENSION_CERT_MEDIA_KEY": key}, EXIT_CONFIG)
    assert "MEDIA_STORE_MISMATCH" in proc.stderr and "does not open with PENSION_CERT_MEDIA_KEY" in proc.stderr
    assert sum(counts(target).values()) == 0
    moved = cli("move-database", "--to", target, env=env)
    assert moved.returncode == 0, moved.stderr
    media = tmp_path / "var" / "media"
    assert f"the media are not moved: they stay in the folder {media}" in moved.stderr
    assert json.loads(moved.stdout)["media"] == f"the folder {media}"


def test_a_damaged_anchor_does_not_refuse_the_pilots_own_store(
    cli: CliRunner, target: str, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """One object under `audit/` that does not open (the head or a daily anchor: bit rot, an edit verify-audit
    reports) made the whole store read as sealed with another key: the pilot's own store was refused with
    MEDIA_STORE_MISMATCH "does not open with PENSION_CERT_MEDIA_KEY", and the operator sent after the key. Each
    anchor is now read on its own: one that opens and matches is enough; when none does and some did not open, the
    message names them and points to `pension-cert console verify-audit`."""
    from service.certification.audit_anchor import HEAD_KEY, PREFIX, write_anchor

    env, ctx = source
    with ctx.db() as db:
        daily = write_anchor(db, ctx.storage)
    assert daily is not None
    media = Path(ctx.settings.effective_media_dir)
    head = media / f"{HEAD_KEY}.enc"
    (anchor,) = (media / PREFIX).glob("*.enc")
    good = anchor.read_bytes()
    ctx.engine.dispose()
    for damaged in (head, anchor):
        damaged.write_bytes(b"bit rot" * 10)
    proc = refused(cli, target, env, EXIT_CONFIG)
    assert "MEDIA_STORE_MISMATCH" in proc.stderr and f"{HEAD_KEY}, {PREFIX}" in proc.stderr, proc.stderr
    assert "pension-cert console verify-audit" in proc.stderr and sum(counts(target).values()) == 0
    anchor.write_bytes(good)  # the daily anchor opens and matches: the head alone damaged
    moved = cli("move-database", "--to", target, env=env)
    assert moved.returncode == 0, moved.stderr


def test_a_refused_wal_source_keeps_its_bytes_and_mode_and_gains_only_empty_companions(
    cli: CliRunner, target: str, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """Every real pilot's file is in WAL mode (the app's engine sets it). SQLite's read-only check of such a file
    leaves an empty -wal and -shm beside it, as any reader does: the docs said a refused source was left "exactly
    as it was". What stays: the file's bytes, its mode and its journal mode; the companions are empty."""
    env, ctx = source
    ctx.engine.dispose()
    url = env["PENSION_CERT_DATABASE_URL"]
    path = Path(url.removeprefix("sqlite:///"))
    on_file(url, "PRAGMA journal_mode=WAL", "CREATE TABLE face_payments (id INTEGER PRIMARY KEY)")
    path.chmod(0o640)
    for companion in path.parent.glob(f"{path.name}-*"):
        companion.unlink()
    before = _file_state(path)  # read as the check reads it: the reader's own -wal and -shm beside it
    assert before[1:3] == (0o640, "wal"), before
    proc = refused(cli, target, env, EXIT_CONFIG)
    assert "SCHEMA_MISMATCH" in proc.stderr
    after = _file_state(path)
    assert after[:3] == before[:3] and set(after[3]) <= {f"{path.name}-wal", f"{path.name}-shm"}, after
    assert path.with_name(f"{path.name}-wal").stat().st_size == 0


def test_a_source_in_uri_form_or_in_memory_is_refused_as_a_setting(
    cli: CliRunner, target: str, tmp_path: Path, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """A source named in SQLite's URI form (sqlite:///file:…?uri=true) or in memory failed as exit 5 "unable to
    open": the read-only check took it for a path. Now exit 4 BAD_SOURCE, saying to name the file by its path."""
    env, ctx = source
    ctx.engine.dispose()
    path = env["PENSION_CERT_DATABASE_URL"].removeprefix("sqlite:///")
    for url in (f"sqlite:///file:{path}?mode=rw&uri=true", "sqlite:///:memory:", "sqlite://"):
        proc = refused(cli, target, env_for(env, url), EXIT_CONFIG)
        assert "BAD_SOURCE" in proc.stderr and "sqlite:////path/to/pension_cert.db" in proc.stderr, proc.stderr
    assert sum(counts(target).values()) == 0


def test_a_mistyped_media_folder_is_refused_without_creating_it(
    cli: CliRunner, target: str, tmp_path: Path, source: tuple[dict[str, str], ServiceContext]
) -> None:
    """A mistyped PENSION_CERT_MEDIA_DIR was refused ("nothing was written") but the check had made the folder (and
    PENSION_CERT_VAR_DIR's) on its way: an empty folder the operator then took for a store. Now refused as no such
    folder, and neither is made."""
    env, ctx = source
    ctx.engine.dispose()
    typo = tmp_path / "meida"
    var = tmp_path / "no-var"
    proc = refused(cli, target, {**env, "PENSION_CERT_MEDIA_DIR": str(typo), "PENSION_CERT_VAR_DIR": str(var)}, 4)
    assert "MEDIA_STORE_MISMATCH" in proc.stderr and f"no such folder: {typo}" in proc.stderr, proc.stderr
    assert not typo.exists() and not var.exists() and sum(counts(target).values()) == 0


def test_a_store_whose_readable_anchors_do_not_match_names_the_ones_that_did_not_open(
    source: tuple[dict[str, str], ServiceContext],
) -> None:
    """Another store (its anchors open but name other entries) with a damaged head: refused, the message names the
    object that did not open and points to verify-audit, not to the key."""
    from service.certification.audit_anchor import HEAD_KEY, PREFIX, Anchor, encode_anchor
    from service.certification.move_source import media_refusal

    _env, ctx = source
    ctx.storage.put(f"{PREFIX}000000000999", encode_anchor(Anchor(999, "cd" * 32, "2026-12-01T00:00:00Z")))
    (Path(ctx.settings.effective_media_dir) / f"{HEAD_KEY}.enc").write_bytes(b"bit rot" * 10)
    with ctx.db() as db:
        why = media_refusal(db, ctx.storage, "the folder X")
    assert "holds no anchor of it that opens and matches (audit/head did not open" in why, why
    assert "pension-cert console verify-audit" in why and "does not open with PENSION_CERT_MEDIA_KEY" not in why
