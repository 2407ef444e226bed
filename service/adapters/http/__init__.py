"""HTTP API (FastAPI): routers per domain, dependencies in deps.py, error mapping in errors.py.

`create_app` is looked up on first use (PEP 562), not imported here: the features import this package's HTTP kit
(deps, errors, upload), and a package that imported the app at its import ran every feature's routes from inside
the first of them, half-initialised ("partially initialized module ... has no attribute 'router'")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.adapters.http.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.adapters.http.app import create_app  # lazy: the app's routes import this package's kit

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
