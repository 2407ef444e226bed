"""A real app on its own SQLite database for the operations tests (headers, limits, metrics, readiness)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

import service.schema
from service.certification.context import ServiceContext
from service.infra.config import Settings
from tests.service.conftest import make_settings


def ops_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": f"sqlite:///{tmp / 'ops.db'}"}
    values.update(overrides)
    return make_settings(tmp / "var", **values)


def ops_app(tmp: Path, **overrides: Any) -> FastAPI:
    from service.adapters.http.app import create_app

    return create_app(ctx=ServiceContext(ops_settings(tmp, **overrides), schema=service.schema.metadata))
