"""Alembic environment: the URL is the configured ``sqlalchemy.url`` or the service settings'."""

from __future__ import annotations

import sys
import time
from logging.config import fileConfig

from alembic.util import CommandError
from sqlalchemy import Connection, engine_from_config, pool, text
from sqlalchemy.exc import DBAPIError

from alembic import context
from service.infra.db.online_ddl import LOCK_NOT_AVAILABLE, LOCK_TIMEOUT, MIGRATION_LOCK
from service.schema import metadata  # every model module, so autogenerate and compare see every table

config = context.config
if config.cmd_opts is not None and config.config_file_name:
    # The alembic command line (cmd_opts: a programmatic run has none, and keeps its own logging): alembic.ini's
    # loggers print each migration it runs on stderr ("Running downgrade 0021 -> 0020, …"); without them an
    # operator's downgrade said nothing at all, whatever it dropped.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
if not config.get_main_option("sqlalchemy.url"):
    from service.infra.config import Settings

    config.set_main_option("sqlalchemy.url", Settings().effective_database_url)

target_metadata = metadata


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def lock_timeout() -> str:
    """How long one statement may wait for its table lock: `-x lock_timeout=30s`, a programmatic run's
    `Config.attributes["lock_timeout"]`, else online_ddl.LOCK_TIMEOUT (PostgreSQL's syntax: 5s, 500ms)."""
    given = context.get_x_argument(as_dictionary=True).get("lock_timeout") or config.attributes.get("lock_timeout")
    return str(given or LOCK_TIMEOUT)


def changes_the_database() -> bool:
    """Whether this command moves or stamps the database's revision (upgrade, downgrade, stamp: the commands
    given a destination); `alembic current`, `check`, `history` only read it and take no lock."""
    try:
        context.get_revision_argument()
    except KeyError:
        return False
    return True


def lock_holder(connection: Connection) -> int | None:
    """The server pid of the session holding MIGRATION_LOCK (None: it has just been released)."""
    pid = connection.execute(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND (classid::bigint << 32 | objid::bigint) = :k"
        ),
        {"k": MIGRATION_LOCK},
    ).scalar()
    return None if pid is None else int(pid)


def one_run_at_a_time(connection: Connection) -> None:
    """Take MIGRATION_LOCK, trying once a second with no transaction open in between: a session waiting inside a
    statement would hold a snapshot the first run's concurrent index build waits for (a deadlock). The wait is
    said once, on stderr, programmatic runs included (they configure no logging)."""
    said = False
    while not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK}).scalar_one():
        holder = lock_holder(connection)
        connection.commit()
        if not said:
            sys.stderr.write(
                f"another migration run holds the database (session pid {holder}): waiting for it to end\n"
            )
            sys.stderr.flush()
            said = True
        time.sleep(1)
    connection.commit()


def run_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    wait = lock_timeout()
    with connectable.connect() as connection:
        if connection.dialect.name == "postgresql" and changes_the_database():
            # One run at a time (two API containers starting at once, an operator's run beside them): the second
            # waits, then finds the first's work done; it never takes a build in progress for a failed one.
            one_run_at_a_time(connection)
            # An ALTER TABLE queued behind a long transaction blocks every later query on its table: give up instead.
            connection.execute(text("SELECT set_config('lock_timeout', :v, false)"), {"v": wait})
            connection.commit()
        # One transaction per migration: the ones done stay done (and stamped) when a later one gives up, and a
        # migration that builds an index concurrently (outside any transaction) is expected.
        context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
        try:
            with context.begin_transaction():
                context.run_migrations()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            raise CommandError(
                f"a migration waited more than lock_timeout={wait} for a table another transaction holds (a long "
                "query, or a session left open in a transaction: see pg_stat_activity), and gave up without "
                "blocking the service any longer. The migration it was running was rolled back; those before it "
                "are applied (`alembic current`): run the same command again, at a quieter moment or once "
                "that transaction has ended; `-x lock_timeout=30s` lets it wait longer (every query on that table "
                "waits behind it meanwhile)"
            ) from exc


if context.is_offline_mode():
    run_offline()
else:
    run_online()
