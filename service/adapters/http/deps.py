"""Every dependency of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from service.certification.audit import DENIED, audit, refusal_entry
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.infra.config import DEV_ADMIN_API_KEY, Settings
from service.infra.observability.context import asked_method
from service.infra.security import mask_text


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def get_db(ctx: Ctx) -> Iterator[Session]:
    with ctx.db() as db:
        yield db


DB = Annotated[Session, Depends(get_db)]


@dataclass(frozen=True)
class Caller:
    """A machine client: its actor name for audit entries, and whether it holds an operator (admin) key."""

    actor: str
    admin: bool
    # The same key's actor name under each previous signing key still in use (a rotation, docs/operations.md):
    # what the audit entries made before the restart call it (a retried revocation is recognised by it). Also the
    # names of the keys it is one client with (API_KEYS_REPLACED: a key it replaced, or one that replaced it, a
    # channel key's or an operator key's), under every signing key: the relatives' accounts they made are its too,
    # and a request they made is its own when retried.
    aliases: tuple[str, ...] = ()


def _known(key: str, keys: list[str]) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str (a hostile header would be a 500, not a 401).
    # Every key is compared (no short cut): the time taken does not tell which list a key is in.
    return any([hmac.compare_digest(key.encode(), k.encode()) for k in keys if k])


def admin_keys(settings: Settings) -> list[str]:
    """The operator keys in force: the public development default only in development."""
    return [k for k in settings.security.admin_api_keys if settings.env == "development" or k != DEV_ADMIN_API_KEY]


def api_caller(ctx: Ctx, x_api_key: Annotated[str | None, Header()] = None) -> Caller:
    """Channel keys (``api_keys``: channel back-ends) and operator keys (``admin_api_keys``)."""
    if x_api_key:
        admin = _known(x_api_key, admin_keys(ctx.settings))
        if admin or _known(x_api_key, ctx.settings.security.api_keys):
            prefix = "admin:" if admin else "api:"
            names = ctx.keyring.key_names(prefix, x_api_key)
            same = ctx.settings.security.same_client(x_api_key)  # of the key's own kind (API_KEYS_REPLACED)
            others = tuple(name for key in same for name in ctx.keyring.key_names(prefix, key))
            return Caller(names[0], admin, names[1:] + others)
    raise ServiceError("UNAUTHORIZED", "missing or unknown X-API-Key")


def require_api_key(ctx: Ctx, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """Any machine client (the benefit system, channel back-ends, operators): the actor name for audit entries."""
    return api_caller(ctx, x_api_key).actor


def require_admin_key(ctx: Ctx, request: Request, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """`admin_caller`'s actor name."""
    return admin_caller(ctx, request, x_api_key).actor


def admin_caller(ctx: Ctx, request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Caller:
    """Operator actions (cycle run, roster import, staff review, the status lists and exports): a channel key is
    refused with 403, and the refusal audited (who, which route, a number in the path masked), in a unit of
    its own since the request's is rolled back: a channel key trying the operator's lists of people is an
    access attempt the bureau must be able to find."""
    caller = api_caller(ctx, x_api_key)
    if not caller.admin:
        path = mask_text(request.url.path)  # a path segment is the caller's text (`/lists/<anything>`)
        detail = {"method": asked_method(request.scope), "need": "operator key"}
        with refusal_entry(caller.actor, DENIED, path, detail), ctx.db() as db:  # the 403 even with it down
            audit(db, caller.actor, DENIED, path, detail)
        raise ServiceError("ADMIN_KEY_REQUIRED", "this operation needs an operator (admin) API key")
    return caller


ApiCaller = Annotated[Caller, Depends(api_caller)]


def _idempotency_key() -> Any:
    """An operator request's Idempotency-Key: its retry is answered as the first (request_replay.py)."""
    return Header(alias="Idempotency-Key", min_length=8, max_length=64)


RequestKey = Annotated[str, _idempotency_key()]
OptionalRequestKey = Annotated[str | None, _idempotency_key()]
ApiClient = Annotated[str, Depends(require_api_key)]
AdminClient = Annotated[str, Depends(require_admin_key)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]


def session_token(authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The citizen's session token (``Authorization: Bearer …``) returned when the session was created."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


SessionToken = Annotated[str | None, Depends(session_token)]

# PostgreSQL stores and compares no NUL character in a text column: a NUL in a session id, an external id or a
# reviewer's text made the query itself fail, a 500 (SQLite stored it). Such a value is invalid (422
# FIELD_INVALID), refused before any query. A pattern also refuses a lone surrogate ("\ud800" in JSON), which no
# driver can encode (a 500 on both databases): pydantic cannot read it as text.
NO_NUL = r"^[^\x00]*$"
SessionId = Annotated[str, Path(pattern=NO_NUL)]
ExternalId = Annotated[str, Path(pattern=NO_NUL)]

# A date in a JSON body or a query (`since`, `today`) is an ISO 8601 string (YYYY-MM-DD), nothing else: pydantic's
# lax mode read 86400 or "86400" as 2 January 1970 (seconds since 1970), 1704067200 as 1 January 2024 and
# "2024-01-01T00:00Z" as that day, so a request named a day the caller never wrote. Any other type or form is 422
# FIELD_INVALID naming the field (errors.validation_body); the date itself is then checked as before.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    if (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and _ISO_DATE.fullmatch(value)
    ):
        return value
    raise PydanticCustomError("date_type", "Input should be a date as a string, YYYY-MM-DD")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
