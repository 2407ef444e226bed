"""The service never runs as a PostgreSQL superuser (service/infra/db/roles.py; docs/operations.md, Database
roles): found on the real server, refused at a production start (`serve`, `worker`, the Celery worker and beat),
nothing said otherwise."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML: installed with rapidocr-onnxruntime
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.adapters.cli import common
from service.adapters.cli.common import EXIT_CONFIG, CliError, check_database_role
from service.adapters.workers import tasks
from service.infra.db.engine import make_engine
from service.infra.db.roles import VARIABLE, role_problem, superuser_problem
from tests.service.conftest import make_settings, migrate


def test_only_a_superuser_is_a_problem() -> None:
    assert "superuser 'pension'" in superuser_problem("pension", True)
    assert superuser_problem("pension_app", False) == ""


def test_the_test_servers_superuser_is_found(scaleout_urls: dict[str, str]) -> None:
    engine = make_engine(scaleout_urls["database_url"])
    try:
        assert "superuser 'postgres'" in role_problem(engine)
    finally:
        engine.dispose()


def test_a_production_start_on_a_superuser_is_refused(scaleout_urls: dict[str, str], tmp_path: Path) -> None:
    url = scaleout_urls["database_url"]
    with pytest.raises(CliError) as refused:
        check_database_role(make_settings(tmp_path, env="production", database_url=url))
    assert refused.value.code == "CONFIG_INVALID" and refused.value.exit_code == EXIT_CONFIG
    assert "PENSION_CERT_DATABASE_URL: connects as the PostgreSQL superuser 'postgres'" in str(refused.value)
    check_database_role(make_settings(tmp_path, env="test", database_url=url))  # the tests' own server: let be


def test_a_production_celery_worker_or_beat_on_a_superuser_is_refused(
    scaleout_urls: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`celery -A service.adapters.workers.tasks worker|beat` builds its app through `checked_settings`: before,
    it checked the settings and the migrations but not the role, so a worker and beat on the superuser ran on."""
    url = scaleout_urls["database_url"]
    migrate(url)  # at this version's migrations: the check before the role's lets it through

    def start(env: str) -> None:
        settings = make_settings(tmp_path, env=env, database_url=url)
        monkeypatch.setattr(common, "settings_problems", lambda sends=False: (settings, []))  # the environment's
        monkeypatch.setattr(tasks, "get_settings", lambda: settings)
        tasks.checked_settings()

    with pytest.raises(SystemExit) as refused:
        start("production")
    assert refused.value.code == EXIT_CONFIG
    why = superuser_problem("postgres", True)  # one refusal, as `serve` says it
    assert capsys.readouterr().err == f"pension-cert: CONFIG_INVALID: invalid settings:\n  {VARIABLE}: {why}\n"
    start("test")  # the tests' own server: let be, and nothing said
    assert capsys.readouterr().err == ""


def test_a_role_with_data_rights_only_may_run_the_service(db: Session) -> None:
    """A role made in the test's own transaction (rolled back with it) and taken for the rest of it."""
    if db.get_bind().dialect.name != "postgresql":
        assert role_problem(db.connection()) == ""  # SQLite has no roles
        return
    role = f"pension_app_{uuid.uuid4().hex[:8]}"
    db.execute(text(f"CREATE ROLE {role} NOSUPERUSER"))
    db.execute(text(f"SET LOCAL ROLE {role}"))
    assert role_problem(db.connection()) == ""


def test_compose_runs_the_service_as_the_app_role_and_the_migrations_as_the_owner() -> None:
    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8"))["services"]

    def user(service: str) -> str:
        url = compose[service]["environment"]["PENSION_CERT_DATABASE_URL"]
        return str(url.split("://", 1)[1].split(":", 1)[0])

    assert {s: user(s) for s in ("api", "worker", "beat", "migrate")} == {
        "api": "pension_app",
        "worker": "pension_app",
        "beat": "pension_app",
        "migrate": "pension_owner",
    }
    assert compose["postgres"]["environment"]["POSTGRES_USER"] not in {"pension_app", "pension_owner"}
    assert "alembic" not in compose["api"]["command"] and compose["migrate"]["command"] == "alembic upgrade head"
    init = next(v for v in compose["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    assert (root / init.split(":")[0]).resolve() == root / "deploy" / "postgres" / "10-roles.sql"
