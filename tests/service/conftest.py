"""Service test set-up: a real database, per-test transaction rollback, and an API client.

Every database test runs on both set-ups: ``sqlite`` (embedded default: SQLite, in-process worker thread)
and ``scaleout`` (PostgreSQL migrated with Alembic, Redis broker, a `celery worker` process), the latter on
throwaway servers started from the Debian binaries. PENSION_CERT_TEST_BACKENDS=sqlite limits a local run.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import service.schema
from service.certification.audit_anchor import STORE_INFO
from service.certification.context import ServiceContext
from service.features.install import install_features
from service.infra.config import Settings, settings_from_flat
from service.infra.db.engine import create_all, make_engine
from service.infra.observability.logs import install_log_masking
from tests.service import servers
from tests.service.certifiers import RememberingCertifier

BACKENDS = [b for b in os.environ.get("PENSION_CERT_TEST_BACKENDS", "sqlite,scaleout").split(",") if b]
API_KEY = "test-api-key-" + secrets.token_hex(4)  # a channel key
ADMIN_API_KEY = "test-admin-key-" + secrets.token_hex(4)  # an operator key: cycle run, roster import, review
ADMIN = {"X-API-Key": ADMIN_API_KEY}  # headers= of one request made as the operator


@pytest.fixture(scope="session", autouse=True)
def real_certifier() -> Iterator[RememberingCertifier]:
    """The real pipeline with the default policy, one per test process (its models load on first use): the
    in-process workers' (worker.shared_certifier, the process-wide one) and the tests' that run sessions
    through the default policy themselves. It reads each distinct card and analyses each distinct video once
    (tests/service/certifiers.py)."""
    from service.adapters.workers import worker

    certifier = RememberingCertifier()
    worker._CERTIFIER = certifier
    yield certifier
    worker._CERTIFIER = None


@pytest.fixture(scope="session")
def scaleout_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Throwaway PostgreSQL and Redis servers for the whole session."""
    if "scaleout" not in BACKENDS:
        pytest.skip("scale-out set-up excluded by PENSION_CERT_TEST_BACKENDS")
    root = tmp_path_factory.mktemp("scaleout")
    with servers.postgres_server(root / "pg") as db_url, servers.redis_server(root / "redis") as broker:
        yield {"database_url": db_url, "broker_url": broker, "worker_mode": "celery"}


@pytest.fixture(scope="session", params=BACKENDS)
def backend_urls(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Database (and broker) URLs of one backend."""
    if request.param == "scaleout":
        urls: dict[str, str] = request.getfixturevalue("scaleout_urls")
        return urls
    root = tmp_path_factory.mktemp("backend")
    return {"database_url": f"sqlite:///{root / 'test.db'}", "broker_url": "", "worker_mode": "thread"}


def make_settings(var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "var_dir": var_dir,
        "media_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "signing_key": secrets.token_hex(16),
        "api_keys": [API_KEY],
        "admin_api_keys": [ADMIN_API_KEY],
        "worker_mode": "none",
        # The real test video performs these actions; a deployment issues random ones.
        "challenge_actions": ["turn_left", "turn_right", "nod"],
    }
    values.update(overrides)
    return settings_from_flat(**values)


def migrate(url: str) -> None:
    if url.startswith("sqlite"):
        create_all(make_engine(url), service.schema.metadata)
    else:
        from service.infra.db.migrate import upgrade

        upgrade(url)


@pytest.fixture(scope="session")
def engine(backend_urls: dict[str, str]) -> Engine:
    url = backend_urls["database_url"]
    migrate(url)
    return make_engine(url)


@pytest.fixture
def settings(tmp_path: Path, backend_urls: dict[str, str]) -> Settings:
    return make_settings(tmp_path, database_url=backend_urls["database_url"])


@pytest.fixture
def ctx(settings: Settings, engine: Engine) -> Iterator[ServiceContext]:
    """A context whose units of work are savepoints in one transaction, rolled back after the test."""
    # Installed like every composition root's: tests that process a job directly get the features' hooks.
    context = install_features(ServiceContext(settings, engine=engine, schema=None))
    conn = engine.connect()
    outer = conn.begin()
    context.session_factory = sessionmaker(
        bind=conn,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        info={STORE_INFO: context.storage},  # as the context's own factory: audit heads go to the media store
    )
    try:
        yield context
    finally:
        outer.rollback()
        conn.close()


@pytest.fixture
def db(ctx: ServiceContext) -> Iterator[Session]:
    session = ctx.session_factory()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    from service.adapters.http.app import create_app

    with TestClient(create_app(ctx=ctx)) as c:
        c.headers["X-API-Key"] = API_KEY
        yield c


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The process's log output as configured by the service with PENSION_CERT_LOG_FORMAT=json."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    root = logging.getLogger()
    root.addHandler(handler)
    install_log_masking("json")
    try:
        yield buf
    finally:
        root.removeHandler(handler)
