"""Who the current log line is about: the request id and the certification session, in context variables.

Context variables follow the request into FastAPI's thread pool (sync routes) and stay out of other
requests; a worker binds the session it is processing.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from service.infra.security import mask_text

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# The ASGI scope of the current request: the router fills in path_params (session_id) after we set it.
request_scope_var: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("request_scope", default=None)
session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("session_id", default=None)
# The method the client sent, where an outer layer has the inner ones go on with another: a HEAD is answered as
# its GET (service/adapters/http/edges.py), and is still a HEAD to whoever reads the metrics, logs and audit.
ASKED_METHOD = "pension_cert.asked_method"

# An incoming X-Request-ID is echoed only if it is short and plain: it ends up in logs and headers.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,64}$")


def new_request_id(incoming: str | None) -> str:
    # Nor when it shows an ID number (a client using the citizen's number as its trace id): every log line of
    # the request carries its id.
    if incoming and SANE_REQUEST_ID.match(incoming) and mask_text(incoming) == incoming:
        return incoming
    return uuid.uuid4().hex


def asked_method(scope: Mapping[str, Any]) -> str:
    """The request's method as sent (HEAD for a HEAD answered as its GET): what metrics, logs and audit name."""
    return str(scope.get(ASKED_METHOD) or scope.get("method", ""))


def current_request_id() -> str | None:
    return request_id_var.get()


def current_session_id() -> str | None:
    sid = session_id_var.get()
    if sid:
        return sid
    scope = request_scope_var.get()
    if scope is not None:
        value = (scope.get("path_params") or {}).get("session_id")
        return str(value) if value else None
    return None


@contextmanager
def bind_session(session_id: str) -> Iterator[None]:
    """Every log record inside carries this session id (workers processing a job)."""
    token = session_id_var.set(session_id)
    try:
        yield
    finally:
        session_id_var.reset(token)
