"""A request refused for the caller's own reason still gets its 4xx when the database is down (docs/security.md,
Part BM): the refusal's audit entry cannot be written then, and its loss is said at ERROR (ids masked) and
counted (`pension_cert_refusal_audits_lost_total`), not turned into a 503 that hides the reason."""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.certification.context import ServiceContext
from service.infra.db.engine import make_engine
from tests.service import factories
from tests.service.conftest import ADMIN, API_KEY, make_settings


def closed_port() -> int:
    """A local port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lost() -> float:
    return REGISTRY.get_sample_value("pension_cert_refusal_audits_lost_total") or 0.0


@pytest.fixture(params=["sqlite", "postgresql"])
def down_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The API over a database that cannot be reached: a SQLite file whose folder was removed, or a PostgreSQL
    URL at a closed port. No mock: the engine's own connect fails."""
    if request.param == "sqlite":
        folder = tmp_path / "db"
        folder.mkdir()
        url = f"sqlite:///{folder / 'cert.db'}"
        engine = make_engine(url)
        shutil.rmtree(folder)
    else:
        url = f"postgresql+psycopg://cert:cert@127.0.0.1:{closed_port()}/cert"
        engine = make_engine(url)
    settings = make_settings(tmp_path / "var", database_url=url)
    ctx = ServiceContext(settings, engine=engine, schema=None)
    from service.adapters.http.app import create_app  # lazy: as the shared client fixture

    with TestClient(create_app(ctx=ctx)) as c:
        c.headers["X-API-Key"] = API_KEY
        yield c


def test_a_refused_channel_key_gets_its_403_with_the_database_down(
    down_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A channel key asking for an operator's list: 403 ADMIN_KEY_REQUIRED and its Chinese message, as with the
    database up; before, the refusal's audit write made it a 503 DB_UNAVAILABLE."""
    number = factories.id_number(region="110105", seq=93)
    before = lost()
    with caplog.at_level(logging.ERROR, logger="service.certification.audit"):
        r = down_client.get(f"/api/v1/lists/{number}")
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "ADMIN_KEY_REQUIRED" and error["message"] and "Error" not in error["message"]
    assert lost() == before + 1
    said = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(said) == 1 and "access.denied" in said[0] and "audit entry lost" in said[0]
    assert number not in said[0] and f"{number[:4]}**********{number[-4:]}" in said[0]


def test_an_operators_own_request_with_the_database_down_is_still_a_503(down_client: TestClient) -> None:
    """Only refusals are answered without their entry: a request that needs the database still says so."""
    r = down_client.get("/api/v1/lists/overdue", headers=ADMIN)
    assert r.status_code == 503 and r.json()["error"]["code"] == "DB_UNAVAILABLE"
