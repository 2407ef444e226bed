"""Engine and session factory for one database URL (SQLite embedded, PostgreSQL scale-out)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
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


def create_all(engine: Engine) -> None:
    """Embedded default: create the schema directly (PostgreSQL deployments run Alembic migrations)."""
    from service.db import (  # noqa: F401 - registers the tables
        console_models,
        models,
        proxy_models,
        wechat_models,
    )

    Base.metadata.create_all(engine)
