"""A new operator's configuration mistakes (docs/security.md, Part AI): each one ends in one line naming the setting
and what it expects, the settings exit code (4), no traceback, and never the value of a secret (a database or
broker URL carries its password). Run as the operator runs them: `pension-cert` in a subprocess."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from service.adapters.cli.common import EXIT_CONFIG, EXIT_MODEL, EXIT_UNAVAILABLE
from service.infra.db.engine import create_all
from service.infra.db.migrate import upgrade
from service.schema import metadata
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.test_cli_contract import assert_clean
from tests.service.live import migrated_database, schema_drift, table_columns

SECRET = "s3cretpw"
HEADER = "pension-cert: CONFIG_INVALID: invalid settings:"


def refused(proc_stderr: str, variable: str) -> str:
    """The one settings line naming `variable` (after the header), checked clean and free of the secret."""
    assert_clean(proc_stderr)
    assert SECRET not in proc_stderr, proc_stderr
    lines = proc_stderr.splitlines()
    assert lines[0] == HEADER, proc_stderr
    named = [line.strip() for line in lines[1:] if line.strip().startswith(variable + ":")]
    assert len(named) == 1, proc_stderr
    return named[0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # Heroku's and libpq's spelling: SQLAlchemy knows only postgresql://.
        (f"postgres://user:pa {SECRET}@db.example/pension", "unknown database kind 'postgres'"),
        ("sqlite:/relative.db", "not a database URL"),
        (f"postgresq://user:{SECRET}@db.example/pension", "unknown database kind 'postgresq'"),
        (f"mysql://user:{SECRET}@db.example/pension", "unknown database kind 'mysql'"),
        (f"postgresql+asyncpg://user:{SECRET}@db.example/pension", "its driver asyncpg is not installed"),
        ("sqlite:////no/such/folder/pension.db", "the folder /no/such/folder does not exist"),
        # SQLAlchemy's make_url raised a ValueError (int() of the port) where only ArgumentError was caught.
        (f"postgresql+psycopg://u:{SECRET}@127.0.0.1:5432x/db", "its port is not a number"),
        (f"postgresql+psycopg://u:{SECRET}@[::1/db", "malformed address"),
    ],
)
def test_a_database_url_that_cannot_be_used_is_one_settings_line(
    cli: CliRunner, tmp_path: Path, url: str, says: str
) -> None:
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    proc = cli("cycle-run", env=env, timeout=60)
    assert proc.returncode == EXIT_CONFIG and proc.stdout == "", proc.stderr
    line = refused(proc.stderr, "PENSION_CERT_DATABASE_URL")
    assert says in line and "postgresql+psycopg://" in line, line  # what is expected, by example


def test_serve_worker_and_console_refuse_a_bad_database_url_the_same_way(cli: CliRunner, tmp_path: Path) -> None:
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": f"postgresq://u:{SECRET}@h/db"}
    for command in (("serve", "--port", "0"), ("worker", "--once"), ("console", "verify-audit")):
        proc = cli(*command, env=env, timeout=60)
        assert proc.returncode == EXIT_CONFIG, (command, proc.stderr)
        assert "unknown database kind 'postgresq'" in refused(proc.stderr, "PENSION_CERT_DATABASE_URL")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"redis://:{SECRET}@127.0.0.1:notaport/0", "its port is not a number"),
        (f"reddis://:{SECRET}@localhost:6379/0", "not a Redis URL"),
        (f"redis//{SECRET}@localhost", "not a Redis URL"),
        (f"redis://:{SECRET}@localhost:6379/zero", "its database number is not a number"),
        (f"redis://:{SECRET}@[::1/0", "malformed address"),  # urlsplit: ValueError("Invalid IPv6 URL")
    ],
)
def test_a_broker_url_celery_cannot_use_is_one_settings_line(
    cli: CliRunner, tmp_path: Path, url: str, says: str
) -> None:
    """WORKER_MODE=celery: the broker (and with it the shared rate-limit counters and the WeChat token) is Redis.
    `serve` started and died later with a traceback (a bad port), or ran announcing nothing (a bad scheme)."""
    env = {
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": url,
    }
    for command in (("serve", "--port", "0"), ("worker", "--once")):
        proc = cli(*command, env=env, timeout=60)
        assert proc.returncode == EXIT_CONFIG, (command, proc.stderr)
        line = refused(proc.stderr, "PENSION_CERT_BROKER_URL")
        assert says in line and "redis://" in line, line


def test_a_rate_limit_redis_url_is_checked_where_it_is_used(cli: CliRunner, tmp_path: Path) -> None:
    env = {
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_RATE_LIMIT_BACKEND": "redis",
        "PENSION_CERT_RATE_LIMIT_REDIS_URL": f"http://:{SECRET}@cache.example:6379",
    }
    proc = cli("serve", "--port", "0", env=env, timeout=60)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "not a Redis URL" in refused(proc.stderr, "PENSION_CERT_RATE_LIMIT_REDIS_URL")
    # Not used (in-process counters, no Celery): not refused.
    unused = {**env, "PENSION_CERT_RATE_LIMIT_BACKEND": "memory"}
    assert cli("cycle-run", env=unused, timeout=120).returncode == 0


def _empty_postgres_database(scaleout_urls: dict[str, str]) -> str:
    url = scaleout_urls["database_url"]
    name = "empty_" + uuid.uuid4().hex[:10]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_an_empty_postgresql_database_is_refused_naming_the_migrations(
    cli: CliRunner, tmp_path: Path, scaleout_urls: dict[str, str]
) -> None:
    """The commands once made the tables themselves (create_all), without Alembic's version: the `alembic upgrade
    head` that docker-compose runs before `serve` then failed on every table, for ever."""
    url = _empty_postgres_database(scaleout_urls)
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    for command in (("cycle-run",), ("worker", "--once")):
        proc = cli(*command, env=env, timeout=120)
        assert proc.returncode == EXIT_CONFIG and proc.stdout == "", (command, proc.stderr)
        assert_clean(proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("pension-cert: SCHEMA_NOT_MIGRATED: PENSION_CERT_DATABASE_URL: "), lines[0]
        assert "has no tables" in lines[0] and "alembic upgrade head" in lines[0], lines[0]
    assert _tables(url) == set()  # nothing made behind the migrations' back


def test_a_postgresql_database_at_an_older_migration_is_refused(
    cli: CliRunner, tmp_path: Path, scaleout_urls: dict[str, str]
) -> None:
    url = migrated_database(scaleout_urls, tmp_path, "0012")
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    proc = cli("cycle-run", env=env, timeout=120)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert_clean(proc.stderr)
    line = proc.stderr.strip()
    assert "SCHEMA_NOT_MIGRATED" in line and "at migration 0012" in line and "alembic upgrade head" in line, line
    assert "assist_requests" in _tables(url) and "evidence_holds" not in _tables(url)  # left as it was


def test_models_fetch_never_prints_the_credentials_of_its_source(cli: CliRunner, tmp_path: Path) -> None:
    """A bureau mirror behind a password (`--from https://user:password@mirror/models`): the password was in the
    JSON line, the error line and, for some hosts, a traceback."""
    env = {"PENSION_CERT_MODELS_DIR": str(tmp_path / "models")}
    for source in (f"https://user:{SECRET}@127.0.0.1:1/models", f"https://user:{SECRET}@mirror.invalid/models"):
        proc = cli("models", "fetch", "--from", source, "yunet_2023mar", env=env, timeout=60)
        assert proc.returncode == EXIT_MODEL, proc.stderr
        assert SECRET not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert_clean(proc.stderr)
        assert "https://user:***@" in proc.stdout, proc.stdout  # which source it was, still


def _celery_worker(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`celery -A service.adapters.workers.tasks worker`, as docker-compose.yml starts it; killed after `timeout`."""
    command = [sys.executable, "-m", "celery", "-A", "service.adapters.workers.tasks", "worker", "--pool=solo"]
    try:
        return subprocess.run(
            command, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the worker ran on: {exc.stderr!r}") from None


def test_the_celery_worker_refuses_a_broker_url_it_cannot_use_in_one_line(tmp_path: Path) -> None:
    env = {
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:notaport/0",
    }
    proc = _celery_worker(env)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "its port is not a number" in refused(proc.stderr, "PENSION_CERT_BROKER_URL")


def test_the_celery_worker_refuses_an_unmigrated_database(tmp_path: Path, scaleout_urls: dict[str, str]) -> None:
    env = {
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": scaleout_urls["broker_url"],
        "PENSION_CERT_DATABASE_URL": _empty_postgres_database(scaleout_urls),
    }
    proc = _celery_worker(env)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert_clean(proc.stderr)
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("pension-cert: SCHEMA_NOT_MIGRATED: PENSION_CERT_DATABASE_URL: ") and "alembic" in line


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"PENSION_CERT_MEDIA_URL": "s3:/pension-media"}, "must look like s3://bucket/prefix"),
        ({"PENSION_CERT_MEDIA_URL": "s3://m", "PENSION_CERT_S3_ENDPOINT_URL": "minio:9000"}, "http://host:port"),
        ({"PENSION_CERT_MEDIA_DIR": "{file}"}, "is a file, not a folder"),
        ({"PENSION_CERT_MEDIA_DIR": "{file}/media"}, "is a file, not a folder"),
        ({"PENSION_CERT_VAR_DIR": "{file}"}, "is a file, not a folder"),
    ],
)
def test_a_media_store_that_cannot_be_used_is_one_settings_line(
    cli: CliRunner, tmp_path: Path, setting: dict[str, str], says: str
) -> None:
    """The bucket URL, its endpoint and the local folder: each was a traceback (ValueError, FileExistsError)."""
    (tmp_path / "notes.txt").write_text("a file where a folder was meant")
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var")}
    env.update({k: v.replace("{file}", str(tmp_path / "notes.txt")) for k, v in setting.items()})
    variable = next(iter(setting)) if len(setting) == 1 else "PENSION_CERT_S3_ENDPOINT_URL"
    for command in (("cycle-run",), ("serve", "--port", "0")):
        proc = cli(*command, env=env, timeout=60)
        assert proc.returncode == EXIT_CONFIG, (command, proc.stderr)
        assert says in refused(proc.stderr, variable), proc.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PENSION_CERT_CONSOLE_HOSTS", "https://console.example.gov.cn", "is not a host name"),
        ("PENSION_CERT_TRUSTED_PROXIES", '["10.0.0.0/33"]', "entry 1 is not an IP address or network"),
        ("PENSION_CERT_PUBLIC_BASE_URL", "pension.example.gov.cn", "expected https://host"),
    ],
)
def test_an_address_setting_of_the_wrong_shape_is_one_settings_line(
    cli: CliRunner, tmp_path: Path, variable: str, value: str, says: str
) -> None:
    """The console's hosts (its own settings class), a trusted proxy's network, the public base URL: a traceback
    from pydantic or ipaddress, or (the base URL) a service that started and sent links without a scheme."""
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), variable: value}
    proc = cli("serve", "--port", "0", env=env, timeout=60)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert says in refused(proc.stderr, variable), proc.stderr


def test_a_database_host_that_does_not_resolve_is_said_in_words(cli: CliRunner, tmp_path: Path) -> None:
    """An outage (exit 5), not a setting's shape: the resolver's words without its errno."""
    env = {
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_DATABASE_URL": f"postgresql+psycopg://u:{SECRET}@db.invalid/pension",
    }
    proc = cli("cycle-run", env=env, timeout=60)
    assert proc.returncode == EXIT_UNAVAILABLE, proc.stderr
    assert_clean(proc.stderr)
    assert SECRET not in proc.stderr and "db.invalid" in proc.stderr, proc.stderr


def test_a_damaged_model_file_is_named_in_words_with_the_fetch_command(
    cli: CliRunner, tmp_path: Path, models_dir: Path
) -> None:
    """A models folder copied half-way (one file cut short, one altered): the line said `is size_mismatch`."""
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    (folder / "face_detection_yunet_2023mar.onnx").write_bytes(b"cut short")
    data = bytearray((folder / "2.7_80x80_MiniFASNetV2.onnx").read_bytes())
    data[1000] ^= 0xFF
    (folder / "2.7_80x80_MiniFASNetV2.onnx").write_bytes(bytes(data))
    env = {"PENSION_CERT_MODELS_DIR": str(folder), "PENSION_CERT_VAR_DIR": str(tmp_path / "var")}
    proc = cli("serve", "--port", "0", env=env, timeout=120)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    assert_clean(proc.stderr)
    line = proc.stderr.strip()
    assert f"yunet_2023mar is damaged (its size is not the manifest's) ({folder}/face_detection_yunet" in line, line
    assert "minifasnet_v2 is damaged (its sha256 is not the manifest's)" in line, line
    assert "_mismatch" not in line and line.endswith("run `pension-cert models fetch --pack default`"), line


def test_a_database_a_newer_version_migrated_is_refused_naming_the_downgrade(
    cli: CliRunner, tmp_path: Path, scaleout_urls: dict[str, str]
) -> None:
    """A rollback of the code onto a database a newer version migrated: it was only logged, and the commands'
    create_all then changed the newer schema behind Alembic's back (a column the newer version dropped came back),
    and this older code ignored the newer version's safety tables (0017's evidence holds: held media purged).
    Refused in one line naming the downgrade, or the newer code; nothing changed."""
    url = migrated_database(scaleout_urls, tmp_path)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE beneficiaries DROP COLUMN household"))  # the newer version dropped it
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    for command in (("cycle-run",), ("worker", "--once")):
        proc = cli(*command, env=env, timeout=120)
        assert proc.returncode == EXIT_CONFIG and proc.stdout == "", (command, proc.stderr)
        assert_clean(proc.stderr)
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("pension-cert: SCHEMA_NOT_MIGRATED: PENSION_CERT_DATABASE_URL: "), line
        assert "at migration 9999" in line and "alembic downgrade " in line, line
    assert "household" not in table_columns(url, "beneficiaries")  # left as the newer version made it


def test_create_all_leaves_a_migrated_postgresql_database_to_alembic(
    tmp_path: Path, scaleout_urls: dict[str, str]
) -> None:
    """At this version's head, the migrations own the schema: create_all added back a column and rebuilt an index
    that the migrations had (or a later one will have) changed, behind alembic_version's back."""
    url = migrated_database(scaleout_urls, tmp_path)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE beneficiaries DROP COLUMN household"))
        create_all(engine, metadata)
    finally:
        engine.dispose()
    assert "household" not in table_columns(url, "beneficiaries")


def _catalogue(url: str) -> list[tuple[str, ...]]:
    """Everything SQLite's catalogue holds of the file at `url` (tables with their columns, indexes), and its Alembic
    version: what `alembic upgrade head` starts from."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        rows = [tuple(r) for r in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")]
        return rows + [tuple(r) for r in conn.execute("SELECT version_num FROM alembic_version")]
    finally:
        conn.close()


def _one_schema_line(proc: subprocess.CompletedProcess[str], *says: str) -> None:
    assert proc.returncode == EXIT_CONFIG and proc.stdout == "", proc.stderr
    assert_clean(proc.stderr)
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("pension-cert: SCHEMA_NOT_MIGRATED: PENSION_CERT_DATABASE_URL: "), line
    assert all(part in line for part in says), line


def test_a_sqlite_file_alembic_migrated_to_an_older_revision_is_refused_and_left_as_it_was(
    cli: CliRunner, tmp_path: Path
) -> None:
    """An embedded file the operator migrated with Alembic (move-database's remedy), at 0022: the code rolled back
    and forward again, or the new code started before `alembic upgrade head`. The commands' create_all added 0023's
    column and 0024/0025's indexes behind alembic_version's back (SQLite had no start-up check), so `alembic upgrade
    head` then failed on a duplicate column and move-database refused the file for good. Refused now, as on
    PostgreSQL, by the commands and the Celery worker, changing nothing; the upgrade then works."""
    url = f"sqlite:///{tmp_path / 'pilot.db'}"
    upgrade(url, "0022")
    before = _catalogue(url)
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    for command in (("console", "verify-audit"), ("cycle-run",)):
        _one_schema_line(cli(*command, env=env, timeout=120), "at migration 0022", "alembic upgrade head")
    celery = {**env, "PENSION_CERT_WORKER_MODE": "celery", "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0"}
    code = "from service.adapters.workers.tasks import checked_settings; checked_settings()"
    worker = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **celery}, capture_output=True, text=True, timeout=60
    )
    _one_schema_line(worker, "at migration 0022", "alembic upgrade head")
    assert _catalogue(url) == before
    upgrade(url)  # the remedy the line names applies
    assert schema_drift(url) == []


def test_a_sqlite_file_a_newer_version_migrated_is_refused_naming_the_downgrade(cli: CliRunner, tmp_path: Path) -> None:
    """The code rolled back onto an embedded file a newer version migrated: it ran on it (the older code ignoring
    the newer version's safety tables, 0017's evidence holds for one) and brought it up to its own models."""
    url = f"sqlite:///{tmp_path / 'pilot.db'}"
    upgrade(url)
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
        conn.execute("DROP INDEX ix_beneficiaries_household")  # as if the newer version had dropped it
    conn.close()
    before = _catalogue(url)
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    _one_schema_line(cli("cycle-run", env=env, timeout=120), "at migration 9999", "alembic downgrade ")
    assert _catalogue(url) == before


def test_a_database_port_that_is_not_a_number_is_one_line_for_every_command(cli: CliRunner, tmp_path: Path) -> None:
    """`serve`, `worker` and the Celery worker (checked_settings) each ended in make_url's ValueError traceback."""
    url = f"postgresql+psycopg://u:{SECRET}@127.0.0.1:5432x/db"
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    for command in (("serve", "--port", "0"), ("worker", "--once")):
        proc = cli(*command, env=env, timeout=60)
        assert proc.returncode == EXIT_CONFIG, (command, proc.stderr)
        assert "its port is not a number" in refused(proc.stderr, "PENSION_CERT_DATABASE_URL")
    celery = {**env, "PENSION_CERT_WORKER_MODE": "celery", "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0"}
    proc = _celery_worker(celery)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "its port is not a number" in refused(proc.stderr, "PENSION_CERT_DATABASE_URL")


@pytest.mark.parametrize(
    "source",
    [
        # A password holding `/`: urlsplit ends the host at it, so http.client took `s3cretpw` for the port
        # (InvalidURL, an HTTPException, not a ValueError): a traceback quoting the password, exit 1.
        f"https://bureau:{SECRET}/x@mirror.invalid/models",
        # The same with a numeric "port": the URL was shown whole, password and all, as the "hidden" source.
        f"https://bureau:80/{SECRET}@mirror.invalid/models",
    ],
)
def test_a_source_url_whose_password_breaks_its_host_is_refused_without_it(
    cli: CliRunner, tmp_path: Path, source: str
) -> None:
    env = {"PENSION_CERT_MODELS_DIR": str(tmp_path / "models")}
    proc = cli("models", "fetch", "--from", source, "yunet_2023mar", env=env, timeout=60)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert_clean(proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "percent-encode" in proc.stderr and "%2F" in proc.stderr, proc.stderr


def test_the_celery_worker_on_the_embedded_database_starts_without_alembic(tmp_path: Path) -> None:
    """WORKER_MODE=celery with the default SQLite file in an empty var dir: checked_settings ran the migrations
    check that create_all skips for SQLite, made an empty database file and exited 4 asking for Alembic."""
    (tmp_path / "var").mkdir()
    env = {
        **os.environ,
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0",
    }
    env.pop("PENSION_CERT_DATABASE_URL", None)
    code = "from service.adapters.workers.tasks import checked_settings; checked_settings(); print('checked')"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "checked", proc.stderr
    assert "alembic" not in proc.stderr and "migrations" not in proc.stderr, proc.stderr


def test_a_postgresql_database_holding_only_an_unrelated_table_is_refused(
    cli: CliRunner, tmp_path: Path, scaleout_urls: dict[str, str]
) -> None:
    """A database with PostGIS's spatial_ref_sys (or any table not the service's) counted as "made by create_all
    before": the commands built the tables without Alembic's version."""
    url = _empty_postgres_database(scaleout_urls)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE spatial_ref_sys (srid integer PRIMARY KEY)"))
    engine.dispose()
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_DATABASE_URL": url}
    proc = cli("cycle-run", env=env, timeout=120)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert_clean(proc.stderr)
    assert "SCHEMA_NOT_MIGRATED" in proc.stderr and "alembic upgrade head" in proc.stderr, proc.stderr
    assert _tables(url) == {"spatial_ref_sys"}  # nothing made behind the migrations' back


def test_the_celery_worker_and_beat_refuse_a_template_mapping_the_api_refuses(cli: CliRunner, tmp_path: Path) -> None:
    """WECHAT_TEMPLATES naming a field a key's type cannot carry: the API refused to start (runtime.wechat_config),
    but the Celery worker and beat started and failed every WeChat tick with a traceback. Now the same check refuses
    them at start, one settings line; `serve` and `worker` alike, and a valid mapping starts. The commands that never
    send run on: the check was first put among every command's settings checks, and the nightly `cycle-run`
    (suspensions, the purge, the audit anchor), `revoke`, `rekey` and `console record-restore` refused alike."""
    bad = '{"due_soon": {"id": "cat-due", "keys": {"thing1": "name", "phrase2": "status", "thing3": "next_step"}}}'
    env = {
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0",
        "PENSION_CERT_WECHAT_APP_ID": "wx-test-app",
        "PENSION_CERT_WECHAT_APP_SECRET": "test-secret",
        "PENSION_CERT_WECHAT_TOKEN": "servertoken0123456789",
        "PENSION_CERT_WECHAT_TEMPLATES": bad,
    }
    said = "cannot be used (docs/wechat.md, “Template messages”): [due_soon] key phrase2: a phrase key cannot carry"
    schedule = str(tmp_path / "beat-schedule")
    beat = [sys.executable, "-m", "celery", "-A", "service.adapters.workers.tasks", "beat", "--schedule", schedule]
    for proc in (
        _celery_worker(env),
        subprocess.run(beat, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False),
        cli("serve", "--port", "0", env=env, timeout=60),
        cli("worker", "--once", env=env, timeout=60),
    ):
        assert proc.returncode == EXIT_CONFIG, proc.stderr
        assert said in refused(proc.stderr, "PENSION_CERT_WECHAT_TEMPLATES")
    nightly = cli("cycle-run", env=env, timeout=120)
    assert nightly.returncode == 0 and "suspended" in nightly.stdout, nightly.stderr
    good = bad.replace('"phrase2": "status"', '"date2": "due_date"')
    code = "from service.adapters.workers.tasks import checked_settings; checked_settings(); print('checked')"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env, "PENSION_CERT_WECHAT_TEMPLATES": good},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "checked", proc.stderr
