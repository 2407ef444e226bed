"""Engine and session factory for one database URL (SQLite embedded, PostgreSQL scale-out)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

CONNECT_TIMEOUT_S = 5


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
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


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
