"""Engine and session factory for one database URL (SQLite embedded, PostgreSQL scale-out)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

CONNECT_TIMEOUT_S = 5
log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        # The worker thread and the API threads share the file; WAL lets readers go on while one writes.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        # Pre-ping replaces connections that died with a server restart, so the API and the workers recover by
        # themselves; the connect timeout turns an unreachable server into a quick error (503), not a hang.
        kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if url.startswith("sqlite"):
        private_sqlite_file(url)
    # A database error's text would otherwise carry the statement's bound values (names, phone numbers,
    # addresses, ciphertexts) into the logs with its traceback.
    kwargs["hide_parameters"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


# The database holds names, birth dates and OCR'd addresses in clear (only ID numbers are encrypted): the file
# and its companions are for the service's own user only. SQLite creates -wal, -shm and -journal with the
# database file's permissions, so creating the file 0600 before SQLite opens it is enough for new databases.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def private_sqlite_file(url: str) -> Path | None:
    """Create the SQLite database file of `url` with mode 0600 before SQLAlchemy opens it, and take group and
    other permissions away from an existing one (and its -wal/-shm/-journal), e.g. one created 0644 by an
    earlier version. Returns the path; None for an in-memory database. Best effort on files not ours."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    if path.parent.is_dir():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            log.warning("cannot create %s with mode 0600: %s", path, exc)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            mode = stat.S_IMODE(companion.stat().st_mode)
            if mode & 0o077:
                os.chmod(companion, mode & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot make %s private (mode 0600): %s", companion, exc)
    return path


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: the API and the worker thread never deadlock upgrading a read
    # lock, they wait (busy timeout) instead. It also makes SAVEPOINTs work (per-test rollback).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own implicit transactions are switched off; _sqlite_begin emits BEGIN itself.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def create_all(engine: Engine, metadata: MetaData) -> None:
    """Embedded default: create the tables of `metadata` directly (PostgreSQL deployments run Alembic migrations).
    The composition roots pass service/schema.py's ``metadata``: this module, below every feature, cannot import
    their models, and reading ``Base.metadata`` here would create only the tables imported so far.

    A database the migrations manage is refused unless at this version's migrations (SchemaNotMigratedError,
    migrate.schema_state): on PostgreSQL, and a SQLite file with an Alembic version as well (one an operator
    migrated, e.g. for move-database). Tables or columns made here beside Alembic's back would make its `upgrade
    head` fail on each; older code on a newer file would ignore its safety tables. One at this version's head is
    left to Alembic: no DDL here, which would re-add what a migration dropped or rebuild an index a migration
    redefined, behind alembic_version's back. Only a file without a version (the pilot's) is brought up here."""
    from service.infra.db.migrate import SchemaNotMigratedError, schema_state  # lazy: Alembic reads its scripts

    problem, migrated = schema_state(engine, metadata)
    if problem:
        raise SchemaNotMigratedError(problem)
    if migrated:
        return
    metadata.create_all(engine)
    add_missing_columns(engine, metadata)
    rebuild_changed_indexes(engine, metadata)


def rebuild_changed_indexes(engine: Engine, metadata: MetaData) -> list[str]:
    """Re-create a named index whose columns changed since an earlier version made the embedded database (e.g.
    the assist requests' open-request index, per person then, per person and requester now), and create one a
    later version added over columns already there (wechat_notices (kind, sent_at), 0018). Returns their names."""
    rebuilt: list[str] = []
    insp = inspect(engine)
    for table in metadata.sorted_tables:
        named = [i for i in insp.get_indexes(table.name) if i.get("name")]
        present = {str(i["name"]): [str(c) for c in i["column_names"]] for i in named}
        for index in table.indexes:
            wanted = [c.name for c in index.columns]
            if index.name is None or present.get(str(index.name)) == wanted:
                continue
            with engine.begin() as conn:
                if index.name in present:
                    conn.exec_driver_sql(f"DROP INDEX {index.name}")
                index.create(conn)
            rebuilt.append(str(index.name))
    if rebuilt:
        log.info("embedded database brought up to the models: rebuilt indexes %s", ", ".join(rebuilt))
    return rebuilt


def add_missing_columns(engine: Engine, metadata: MetaData) -> list[str]:
    """Bring an embedded database made by an earlier version up to the models, additively.

    ``create_all`` creates missing tables but never alters existing ones, so a var/ database from before a new
    column (the roster ``household``, a job's ``worker_process``) would fail every query that reads it. New
    columns are nullable or have a default, so ``ALTER TABLE ADD COLUMN`` brings them in, with their indexes.
    Scale-out deployments run the Alembic migrations instead. Returns ``table.column`` of what was added."""
    added: list[str] = []
    insp = inspect(engine)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in insp.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in present]
        if not missing:
            continue
        with engine.begin() as conn:
            for col in missing:
                if not col.nullable and col.server_default is None and col.default is None:
                    from service.infra.db.migrate import MIGRATE_COMMAND, SchemaNotMigratedError  # lazy: Alembic

                    why = f"{table.name}.{col.name} is new and required: migrate this database, {MIGRATE_COMMAND}"
                    raise SchemaNotMigratedError(why)
                ddl = f"ALTER TABLE {table.name} ADD COLUMN {col.name} {col.type.compile(engine.dialect)}"
                if col.server_default is not None:
                    ddl += f" DEFAULT {col.server_default.arg}"  # type: ignore[attr-defined]
                conn.exec_driver_sql(ddl)
                added.append(f"{table.name}.{col.name}")
            for index in table.indexes:
                if any(c.name in {m.name for m in missing} for c in index.columns):
                    index.create(conn, checkfirst=True)
    if added:
        log.info("embedded database brought up to the models: added %s", ", ".join(added))
    return added
