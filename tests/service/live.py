"""A running service for end-to-end tests: its own fresh database, the real app, and a real worker
(the in-process thread on SQLite; a `celery worker` process on PostgreSQL + Redis)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from service.infra.config import Settings, as_environment
from tests.service.conftest import API_KEY, make_settings, migrate

REPO = Path(__file__).resolve().parents[2]


def fresh_database(backend_urls: dict[str, str], tmp: Path) -> str:
    url = backend_urls["database_url"]
    if url.startswith("sqlite"):
        fresh = f"sqlite:///{tmp / ('e2e-' + uuid.uuid4().hex[:8] + '.db')}"
    else:
        name = "e2e_" + uuid.uuid4().hex[:10]
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        fresh = url.rsplit("/", 1)[0] + "/" + name
    migrate(fresh)
    return fresh


def migrated_database(backend_urls: dict[str, str], tmp: Path, revision: str = "head") -> str:
    """A new database built by the Alembic migrations up to ``revision`` (not by create_all, as a fresh SQLite
    one is): a new migrated file on SQLite; on PostgreSQL a fresh database stepped back from head."""
    # lazy: Alembic's command module is only needed by the migration tests
    from alembic import command
    from service.infra.db.migrate import alembic_config, upgrade

    url = fresh_database(backend_urls, tmp)
    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp / ('migrated-' + uuid.uuid4().hex[:8] + '.db')}"
        upgrade(url, revision)
    elif revision != "head":
        command.downgrade(alembic_config(url), revision)
    return url


def refused_downgrade(url: str, revision: str) -> str:
    """`alembic downgrade revision` on the database at `url`, which must refuse to lose what the service recorded
    (service/infra/db/lossy_downgrade.py): its message."""
    # lazy: as above
    from alembic import command
    from service.infra.db.lossy_downgrade import DowngradeRefusedError
    from service.infra.db.migrate import alembic_config

    try:
        command.downgrade(alembic_config(url), revision)
    except DowngradeRefusedError as exc:
        return str(exc)
    raise AssertionError(f"the downgrade to {revision} went through")


def alembic_version(url: str) -> str:
    """The migration the database at `url` is at (`alembic current`)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


def table_columns(url: str, table: str) -> set[str]:
    """The column names `table` has in the database at `url` now (a migration test's before and after)."""
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def insert_rows(url: str, statements: tuple[str, ...], false: object) -> None:
    """Rows as an older version stored them (a migration test's data), `:f` bound to the backend's false."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.execute(text(sql), {"f": false})
    finally:
        engine.dispose()


def schema_drift(url: str) -> list[Any]:
    """What Alembic's autogenerate finds between the database at `url` and the models (empty: no drift)."""
    # lazy: Alembic's autogenerate is only needed by the migration tests
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from service.schema import metadata

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            drift: list[Any] = compare_metadata(MigrationContext.configure(conn), metadata)
            return drift
    finally:
        engine.dispose()


def embedded_file(url: str) -> None:
    """Make the SQLite file at `url`, built by the migrations up to an older revision, the pilot's file an earlier
    version's create_all left: the same schema, no Alembic version (a file with one is Alembic's: create_all refuses
    it unless at head, service/infra/db/migrate.schema_state)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
    finally:
        engine.dispose()


def create_all_at(url: str) -> None:
    """What an embedded service does at start on the database at `url` (an older pilot file, see
    ``embedded_file``): create_all."""
    # lazy: as above
    from service.infra.db.engine import create_all
    from service.schema import metadata

    embedded_file(url)
    engine = create_engine(url)
    try:
        create_all(engine, metadata)
    finally:
        engine.dispose()


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables, for worker processes."""
    return {**os.environ, "PYTHONPATH": str(REPO), **as_environment(settings)}


@contextmanager
def celery_worker(
    settings: Settings, log: Path, beat: bool = False, pool: str = "solo"
) -> Iterator[subprocess.Popen[bytes]]:
    # With beat embedded (-B) the worker also runs the periodic sweep, its schedule file beside the log. The
    # prefork pool (pool="prefork", one child) is the one that enforces the task time limits.
    extra = ["-B", f"--schedule={log.with_suffix('.beat')}"] if beat else []
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "service.adapters.workers.tasks",
        "worker",
        f"--pool={pool}",
        "--concurrency=1",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=INFO",
        *extra,
    ]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=settings_env(settings), cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def live_service(
    backend_urls: dict[str, str], tmp: Path, start_worker: bool = True, **overrides: Any
) -> Iterator[tuple[TestClient, Settings]]:
    from service.adapters.http.app import create_app

    url = fresh_database(backend_urls, tmp)
    mode = overrides.pop("worker_mode", backend_urls["worker_mode"])
    settings = make_settings(
        tmp / "var",
        database_url=url,
        worker_mode=mode,
        broker_url=backend_urls["broker_url"] or "redis://127.0.0.1:1/0",
        signing_key=secrets.token_hex(16),
        poll_interval_s=0.2,
        **overrides,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["X-API-Key"] = API_KEY
        if mode == "celery" and start_worker:
            with celery_worker(settings, tmp / "celery.log"):
                yield client, settings
        else:
            yield client, settings


def wait_decided(client: TestClient, session: dict[str, Any], timeout: float = 180.0) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {session['token']}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/sessions/{session['session_id']}/result", headers=headers)
        body: dict[str, Any] = r.json()
        if body["state"] in ("decided", "failed"):
            return body
        time.sleep(0.3)
    raise TimeoutError(f"session {session['session_id']} not decided after {timeout}s")
