"""Whether the places the settings name can be used at all: the database URL (SQLAlchemy), the Redis URLs (the
Celery broker, the shared rate-limit counters), the media store (a bucket URL and its endpoint, or a local folder),
and, for `serve` alone (``api_location_problems``), a folder the bureau fills (the H5 pages' recorded prompts).
Checked at start by the CLI and the Celery worker (service/adapters/cli/common.py, ``settings_problems``), so that
a typo is one settings line naming the variable, not a traceback from a driver or from ``mkdir``, nor a folder left
out in silence. Nothing connects here: a server
down at start is an outage (exit 5), not a setting.

The URLs carry passwords (config.SECRET_SETTINGS): no message here repeats a URL or any part of one that could hold
a secret; they name the part that is wrong and show the expected shape by example."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from service.infra.config import Settings
from service.infra.ratelimit import counter_redis_url

DATABASE_EXAMPLE = (
    "postgresql+psycopg://user:password@host:5432/pension_cert or sqlite:////absolute/path/pension_cert.db"
)
REDIS_EXAMPLE = "redis://[:password@]host:6379/0 (rediss:// with TLS)"
ENDPOINT_EXAMPLE = "http://host:port of an S3-compatible server (MinIO: http://minio:9000), or empty for AWS"
# The database kinds the service runs on (docs/operations.md): the embedded SQLite file, PostgreSQL for scale-out.
DATABASE_KINDS = ("postgresql", "sqlite")
# The module of a driver named in the URL (postgresql+psycopg://) where it is not the driver's own name.
DRIVER_MODULES = {"pysqlite": "sqlite3", "psycopg_async": "psycopg"}


def database_url_problem(url: str) -> str:
    """Why SQLAlchemy cannot use `url` ('' when it can), with the expected shape."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"not a database URL; expected {DATABASE_EXAMPLE}"
    except ValueError:  # int() of what follows the host's last colon: a port with a letter, an unclosed [::1
        return f"its port is not a number, or a malformed address (IPv6: [::1]:5432); expected {DATABASE_EXAMPLE}"
    kind = parsed.get_backend_name()
    if kind not in DATABASE_KINDS:
        return f"unknown database kind {kind!r}; expected {DATABASE_EXAMPLE}"
    driver = parsed.drivername.partition("+")[2]  # none given: SQLAlchemy's default for the kind (installed)
    if driver and not _driver_installed(driver):
        return f"its driver {driver} is not installed; expected {DATABASE_EXAMPLE}"
    if kind == "sqlite" and parsed.database not in (None, "", ":memory:") and not parsed.database.startswith("file:"):
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            return f"the folder {folder} does not exist; expected {DATABASE_EXAMPLE}"
    return ""


def _driver_installed(driver: str) -> bool:
    module = DRIVER_MODULES.get(driver, driver)  # most drivers are the module of their name (pg8000)
    return module.isidentifier() and importlib.util.find_spec(module) is not None


def redis_url_problem(url: str) -> str:
    """Why the Redis client cannot use `url` ('' when it can), with the expected shape. The same parts the client
    reads (redis.connection.parse_url), without connecting: a Redis down at start is an outage, not a setting."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": a [ without its ]
        return f"a malformed address (IPv6: [::1]:6379); expected {REDIS_EXAMPLE}"
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.netloc or parts.path):
        return f"not a Redis URL; expected {REDIS_EXAMPLE}"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number (or out of range)
    except ValueError:
        return f"its port is not a number (0-65535); expected {REDIS_EXAMPLE}"
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        return f"its database number is not a number; expected {REDIS_EXAMPLE}"
    return ""


def location_problems(settings: Settings) -> list[tuple[str, str]]:
    """(variable, problem) for each place these settings will use and cannot: the database always; the broker in
    Celery mode (Redis: the readiness check, the shared counters and the WeChat token use it too); the shared
    counters' Redis where the rate limits use one (service/infra/ratelimit.py decides); the media store."""
    problems = storage_problems(settings)
    if settings.database_url:
        problem = database_url_problem(settings.database_url)
        if problem:
            problems.append(("PENSION_CERT_DATABASE_URL", problem))
    if settings.workers.worker_mode == "celery":
        problem = redis_url_problem(settings.workers.broker_url)
        if problem:
            problems.append(("PENSION_CERT_BROKER_URL", problem))
    counters = counter_redis_url(settings)
    variable = "PENSION_CERT_RATE_LIMIT_REDIS_URL" if settings.rate_limit.redis_url else "PENSION_CERT_BROKER_URL"
    if counters is not None and variable not in {v for v, _ in problems}:
        problem = redis_url_problem(counters)
        if problem:
            problems.append((variable, problem))
    return problems


def api_location_problems(settings: Settings) -> list[tuple[str, str]]:
    """(variable, problem) for the places only the API reads, checked by `serve` alone: the bureau's recorded
    prompts (/h5/audio). Never among location_problems: a folder not mounted on a host that runs only the nightly
    `console verify-audit` (its non-zero exit is the tampering alarm), a rekey or a worker stopped them all."""
    if settings.h5.audio_dir is None:
        return []
    problem = given_folder_problem(settings.h5.audio_dir)
    if not problem:
        return []
    return [("PENSION_CERT_H5_AUDIO_DIR", f"{problem} (the bureau's recordings of the spoken prompts)")]


def storage_problems(settings: Settings) -> list[tuple[str, str]]:
    """The media store's settings: the bucket URL (its own parser's word) and endpoint, or the local folders."""
    storage = settings.storage
    if not storage.media_url:
        var_dir = folder_problem(settings.var_dir)
        if var_dir:
            return [("PENSION_CERT_VAR_DIR", var_dir)]
        media_dir = folder_problem(settings.effective_media_dir)
        return [("PENSION_CERT_MEDIA_DIR", media_dir)] if media_dir else []
    from service.infra.storage_s3 import S3Location  # lazy: boto3, only where a bucket is configured

    try:
        S3Location.parse(storage.media_url)
    except ValueError as exc:
        return [("PENSION_CERT_MEDIA_URL", str(exc))]
    try:
        endpoint = urlsplit(storage.s3_endpoint_url)
    except ValueError:  # "Invalid IPv6 URL"
        endpoint = urlsplit("")
    if storage.s3_endpoint_url and (endpoint.scheme not in ("http", "https") or not endpoint.hostname):
        return [("PENSION_CERT_S3_ENDPOINT_URL", f"not a URL; expected {ENDPOINT_EXAMPLE}")]
    return []


def folder_problem(folder: Path) -> str:
    """Why the service cannot make or use `folder` ('' when it can): it, or a folder above it, is a file."""
    for path in (folder, *folder.parents):
        if path.exists():
            return "" if path.is_dir() else f"{path} is a file, not a folder"
    return ""


def given_folder_problem(folder: Path) -> str:
    """Why a folder the service only reads (one the bureau fills: nothing makes it) cannot be used ('' when it can):
    it does not exist, or it is a file. Taken in silence, a typo there leaves out all that the folder holds."""
    if not folder.exists():
        return f"the folder {folder} does not exist"
    return "" if folder.is_dir() else f"{folder} is a file, not a folder"
