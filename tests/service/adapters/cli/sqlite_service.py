"""A SQLite service for `pension-cert` commands run in a subprocess: the environment they run with, and the same
settings in this process (a context to seed the database and read it back)."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import service.schema
from service.certification.context import ServiceContext
from tests.service.conftest import make_settings


def sqlite_service(var_dir: Path, database: Path) -> tuple[dict[str, str], ServiceContext]:
    """The command's environment (fresh keys, no workers) for the SQLite database at `database`, and a context
    on the same database and keys."""
    env = {
        "PENSION_CERT_ENV": "test",
        "PENSION_CERT_VAR_DIR": str(var_dir),
        "PENSION_CERT_DATABASE_URL": f"sqlite:///{database}",
        "PENSION_CERT_WORKER_MODE": "none",
        "PENSION_CERT_MEDIA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PENSION_CERT_SIGNING_KEY": secrets.token_hex(16),
        "PENSION_CERT_API_KEYS": json.dumps([secrets.token_hex(20)]),
        "PENSION_CERT_ADMIN_API_KEYS": json.dumps([secrets.token_hex(20)]),
    }
    settings = make_settings(
        var_dir,
        database_url=env["PENSION_CERT_DATABASE_URL"],
        media_key=env["PENSION_CERT_MEDIA_KEY"],
        signing_key=env["PENSION_CERT_SIGNING_KEY"],
    )
    return env, ServiceContext(settings, schema=service.schema.metadata)
