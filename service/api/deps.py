"""Every dependency of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from service.context import ServiceContext
from service.errors import ServiceError


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def get_db(ctx: Ctx) -> Iterator[Session]:
    with ctx.db() as db:
        yield db


DB = Annotated[Session, Depends(get_db)]


def require_api_key(ctx: Ctx, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """Machine clients (the benefit system, channel back-ends): returns the actor name for audit entries."""
    # Bytes, not str: compare_digest refuses non-ASCII str (a hostile header would be a 500, not a 401).
    if x_api_key and any(hmac.compare_digest(x_api_key.encode(), k.encode()) for k in ctx.settings.api_keys):
        return "api:" + ctx.keyring.mac("apikey:" + x_api_key)[:8]
    raise ServiceError("UNAUTHORIZED", "missing or unknown X-API-Key", status=401)


ApiClient = Annotated[str, Depends(require_api_key)]


def session_token(authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The citizen's session token (``Authorization: Bearer …``) returned when the session was created."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


SessionToken = Annotated[str | None, Depends(session_token)]
