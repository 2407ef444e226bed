"""service/infra/db/locks.py on both backends: a second transaction taking the same key waits for the first one's
end, then goes on; on PostgreSQL another key does not wait."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.infra.db.engine import make_engine, make_session_factory
from service.infra.db.locks import one_writer_at_a_time


def _engine(backend_urls: dict[str, str], tmp_path: Path) -> Engine:
    url = backend_urls["database_url"]
    return make_engine(f"sqlite:///{tmp_path / 'locks.db'}" if url.startswith("sqlite") else url)


def _second_taker(engine: Engine, key: int) -> tuple[threading.Thread, threading.Event]:
    """A thread that takes `key` in a transaction of its own; the event is set once it holds it."""
    held = threading.Event()

    def run() -> None:
        with make_session_factory(engine)() as db:
            one_writer_at_a_time(db, key)
            held.set()
            db.rollback()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, held


def test_a_second_taker_of_the_key_waits_for_the_first_to_end(backend_urls: dict[str, str], tmp_path: Path) -> None:
    engine = _engine(backend_urls, tmp_path)
    key = random.randrange(1, 2**31)  # the PostgreSQL server is shared by the test workers
    try:
        with Session(engine) as first:
            one_writer_at_a_time(first, key)
            second, held = _second_taker(engine, key)
            assert not held.wait(1.0), "the second transaction did not wait for the first"
            first.commit()
        assert held.wait(10), "the second transaction did not go on after the first ended"
        second.join(10)
    finally:
        engine.dispose()


def test_on_postgresql_another_key_does_not_wait(backend_urls: dict[str, str], tmp_path: Path) -> None:
    engine = _engine(backend_urls, tmp_path)
    if engine.dialect.name != "postgresql":
        engine.dispose()
        pytest.skip("SQLite has one write lock for the whole database: every key is the same lock there")
    key = random.randrange(1, 2**30)
    try:
        with Session(engine) as first:
            one_writer_at_a_time(first, key)
            second, held = _second_taker(engine, key + 2**30)
            assert held.wait(10), "a transaction taking another key waited"
            second.join(10)
            first.rollback()
    finally:
        engine.dispose()
