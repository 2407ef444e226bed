"""HTTP API (FastAPI): routers per domain, dependencies in deps.py, error mapping in errors.py."""

from service.adapters.http.app import create_app

__all__ = ["create_app"]
