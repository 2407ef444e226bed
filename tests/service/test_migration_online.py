"""Upgrading a live PostgreSQL database during the day (docs/operations.md, upgrading a running bureau).

- 0019's index on console_audit is built CONCURRENTLY: a console action's audit write goes through while the build
  waits for a transaction already writing the table (a plain CREATE INDEX would queue every write behind it).
- A concurrent build that failed left an INVALID index of that name: the rerun drops it and builds it again.
- An ALTER TABLE behind a long transaction gives up after lock_timeout with a line telling the operator to rerun,
  instead of queueing (and blocking every query on the table) for as long as that transaction lasts; the rerun
  after it ends finishes the upgrade.
- Runs that change the schema take one lock: a second waits, saying so on stderr with the holder's pid; `alembic
  current` takes none and answers meanwhile.
Each ends at the models' schema (no drift)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import OperationalError

from alembic import command
from service.infra.db.migrate import alembic_config, upgrade
from service.infra.db.online_ddl import MIGRATION_LOCK
from tests.service.live import REPO, migrated_database, schema_drift

INDEX = "ix_console_audit_target"
# The latest migration, where an upgrade ends (not a number written here, which each new migration would break).
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
ALEMBIC = str(Path(sys.executable).parent / "alembic")
AUDIT = (
    "INSERT INTO console_audit (seq, at, actor, action, target, detail, prev_hash, hash)"
    " VALUES (:seq, '2026-01-01 00:00:00', 'staff:rev1', 'beneficiary.view', :target, '{}', :h, :h)"
)


@pytest.fixture
def pg_url(backend_urls: dict[str, str], tmp_path: Path) -> Iterator[str]:
    if backend_urls["database_url"].startswith("sqlite"):
        pytest.skip("lock levels and concurrent index builds: PostgreSQL (the embedded SQLite file has one process)")
    yield backend_urls["database_url"]


@contextmanager
def _connect(url: str) -> Iterator[Connection]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _audit(conn: Connection, seq: int, target: str = "EXT-1") -> None:
    conn.execute(text(AUDIT), {"seq": seq, "target": target, "h": f"h{seq}"})


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """`fn` running in a thread; 'done' or the exception it raised lands in the list."""
    out: list[object] = []

    def run() -> None:
        try:
            fn()
            out.append("done")
        except Exception as exc:  # the test reads it
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _wait_for_lock_wait(url: str, statement: str, seconds: float = 30) -> None:
    """Until a session runs `statement…` waiting on a lock (the migration stuck behind the open transaction)."""
    end = time.monotonic() + seconds
    with _connect(url) as conn:
        while time.monotonic() < end:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query ILIKE :q AND wait_event_type = 'Lock'"
                ),
                {"q": statement + "%"},
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.1)
    raise AssertionError(f"no session waits on a lock in {statement!r}")


def _lock_holder(url: str) -> int:
    """The pid of the session holding the migration runs' advisory lock."""
    with _connect(url) as conn:
        return int(
            conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND (classid::bigint << 32 | objid::bigint) = :k"
                ),
                {"k": MIGRATION_LOCK},
            ).scalar_one()
        )


def _index_state(url: str) -> tuple[bool, bool] | None:
    """(valid, unique) of the target index, None when absent."""
    with _connect(url) as conn:
        row = conn.execute(
            text(
                "SELECT i.indisvalid, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = :n"
            ),
            {"n": INDEX},
        ).first()
        return None if row is None else (bool(row[0]), bool(row[1]))


def test_the_audit_index_is_built_while_console_actions_keep_writing(pg_url: str, tmp_path: Path) -> None:
    url = migrated_database({"database_url": pg_url}, tmp_path, "0018")
    with _connect(url) as blocker:
        _audit(blocker, 1)  # a console action's transaction, still open when the upgrade starts
        thread, out = _in_thread(lambda: upgrade(url))
        try:
            _wait_for_lock_wait(url, "CREATE INDEX")
            with _connect(url) as writer:  # another staff action meanwhile: not queued behind the build
                writer.execute(text("SET lock_timeout = '3s'"))
                _audit(writer, 2)
                writer.commit()
        finally:
            blocker.commit()
        thread.join(60)
    assert out == ["done"]
    assert _index_state(url) == (True, False)
    assert schema_drift(url) == []


def test_an_invalid_index_left_by_a_failed_concurrent_build_is_rebuilt(pg_url: str, tmp_path: Path) -> None:
    url = migrated_database({"database_url": pg_url}, tmp_path, "0018")
    with _connect(url) as conn:
        _audit(conn, 1, "EXT-1")
        _audit(conn, 2, "EXT-1")
        conn.commit()
        # A concurrent build that fails half-way (here: on a duplicate) leaves its index behind, INVALID.
        with pytest.raises(Exception, match="could not create unique index"):
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text(f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON console_audit (target)")
            )
    assert _index_state(url) == (False, True)
    upgrade(url)
    assert _index_state(url) == (True, False)
    assert schema_drift(url) == []


def test_an_alter_behind_a_long_transaction_gives_up_and_a_rerun_finishes(pg_url: str, tmp_path: Path) -> None:
    url = migrated_database({"database_url": pg_url}, tmp_path, "0019")
    cfg = alembic_config(url)
    cfg.attributes["lock_timeout"] = "1s"
    with _connect(url) as blocker:
        blocker.execute(text("SELECT count(*) FROM wechat_notices")).scalar_one()  # a long report, still open
        thread, out = _in_thread(lambda: command.upgrade(cfg, "head"))
        thread.join(15)
        gave_up = not thread.is_alive()
        blocker.rollback()
        thread.join(60)
    assert gave_up, "the migration queued behind the open transaction instead of giving up"
    assert len(out) == 1 and isinstance(out[0], CommandError)
    message = str(out[0])
    assert "lock_timeout=1s" in message and "run the same command again" in message
    assert isinstance(out[0].__cause__, OperationalError)
    with _connect(url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0019"
    upgrade(url)  # the blocker has ended
    with _connect(url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    assert schema_drift(url) == []


def test_two_upgrades_at_once_run_one_after_the_other(pg_url: str, tmp_path: Path) -> None:
    """Two API containers starting together both run `alembic upgrade head`: the second waits for the first (it
    would otherwise take the first's build in progress, INVALID until it ends, for a failed one and drop it)."""
    url = migrated_database({"database_url": pg_url}, tmp_path, "0018")
    with _connect(url) as blocker:
        _audit(blocker, 1)  # keeps the first run's concurrent build in progress
        first, out1 = _in_thread(lambda: upgrade(url))
        try:
            _wait_for_lock_wait(url, "CREATE INDEX")
            holder = _lock_holder(url)
            # Another process (Alembic's operations are one per process): the operator's run beside a container's.
            second = subprocess.Popen(
                [ALEMBIC, "upgrade", "head"],
                cwd=REPO,
                env={**os.environ, "PENSION_CERT_DATABASE_URL": url},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            # Its output read as it comes: the blocker ends only once the second run has said that it waits (a
            # count of sessions let a loaded machine end it before the second run's first try).
            lines: list[str] = []
            reader = threading.Thread(target=lambda: lines.extend(ln.decode() for ln in second.stdout or ()))
            reader.start()
            deadline = time.monotonic() + 60
            while not any("another migration run" in ln for ln in lines) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.5)  # it tries again, and waits on
        finally:
            blocker.commit()
        first.join(60)
        second.wait(timeout=60)
        reader.join(60)
        said = "".join(lines)
    assert out1 == ["done"] and second.returncode == 0, said
    # The operator sees why it waits, once, and which session holds the lock (the one to end if it is a stale one).
    waiting = [line for line in said.splitlines() if "another migration run holds the database" in line]
    assert len(waiting) == 1, said
    assert f"pid {holder}" in waiting[0], said
    assert _index_state(url) == (True, False)
    with _connect(url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    assert schema_drift(url) == []


def test_the_operator_running_alembic_reads_one_line_saying_to_run_it_again(pg_url: str, tmp_path: Path) -> None:
    url = migrated_database({"database_url": pg_url}, tmp_path, "0019")
    env = {**os.environ, "PENSION_CERT_DATABASE_URL": url}  # as the operator's shell has it
    with _connect(url) as blocker:
        blocker.execute(text("SELECT count(*) FROM wechat_notices")).scalar_one()
        try:
            run = subprocess.run(
                [ALEMBIC, "-x", "lock_timeout=1s", "upgrade", "head"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            blocker.rollback()
    said = run.stdout + run.stderr  # Alembic's command line prints its FAILED line on stdout
    assert run.returncode != 0
    assert said.startswith("FAILED: a migration waited more than lock_timeout=1s"), said
    assert "Traceback" not in said and "run the same command again" in said


def test_alembic_current_answers_while_another_run_holds_the_migration_lock(pg_url: str, tmp_path: Path) -> None:
    """The operator looks at where the database stands during another host's long index build: `alembic current`
    changes nothing, so it neither takes nor waits for the lock the runs that change the schema take."""
    url = migrated_database({"database_url": pg_url}, tmp_path, "0020")
    env = {**os.environ, "PENSION_CERT_DATABASE_URL": url}
    with _connect(url) as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        holder.commit()
        try:
            run = subprocess.run([ALEMBIC, "current"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("`alembic current` waited for the migration lock")
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            holder.commit()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0020" in run.stdout
    assert "another migration run" not in run.stdout + run.stderr


def test_a_downgrade_that_gives_up_says_to_run_the_same_command_again(pg_url: str, tmp_path: Path) -> None:
    url = migrated_database({"database_url": pg_url}, tmp_path, "head")
    cfg = alembic_config(url)
    cfg.attributes["lock_timeout"] = "500ms"
    with _connect(url) as blocker:
        blocker.execute(text("SELECT count(*) FROM staff_users")).scalar_one()  # 0021's downgrade alters it
        try:
            with pytest.raises(CommandError) as raised:
                command.downgrade(cfg, "0020")
        finally:
            blocker.rollback()
    message = str(raised.value)
    assert "run the same command again" in message
    assert "upgrade" not in message  # not an instruction to redo the upgrade the operator is undoing
