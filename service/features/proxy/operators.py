"""Operators: a relative's account tied to a channel identity, authenticated by a bearer token."""

from __future__ import annotations

import logging
import re
import uuid
import weakref
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit, refusal_entry
from service.certification.context import ServiceContext
from service.certification.errors import InvalidInputError, ServiceError
from service.certification.models import one_of_hashes, utcnow
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import ProxyOperator, ProxyOperatorIdentity
from service.infra import clock
from service.infra.security import Keyring, new_token, token_hash

log = logging.getLogger(__name__)
CHANNELS = ("wechat", "phone")
PROXY_ACCOUNT_ELSEWHERE = "PROXY_ACCOUNT_ELSEWHERE"
PROXY_ACCOUNT_IN_APP = "PROXY_ACCOUNT_IN_APP"  # the H5 pages' refusal: the account is an integrator's app's
# The same, where that app is withdrawn (`client_in_force`): the relative is told the ways left, not sent back to it.
PROXY_ACCOUNT_APP_WITHDRAWN = "PROXY_ACCOUNT_APP_WITHDRAWN"
LOGIN_REFUSED = "proxy.operator.login_refused"
CLIENT_MOVED = "proxy.operator.client_moved"
CLIENTS_MOVED = "proxy.operator.clients_moved"  # staff's move of a whole client (`move_client`), who and how
PROXY_CLIENT_UNKNOWN = "PROXY_CLIENT_UNKNOWN"
# The client name of the service's own H5 pages (a channel key's is `api:<8 hex>`): the accounts they make are theirs.
H5_CLIENT = "wechat-h5"


@dataclass(frozen=True)
class OperatorLogin:
    operator: ProxyOperator
    token: str
    created: bool


def actor(op: ProxyOperator) -> str:
    """The operator's identity in audit entries."""
    return f"operator:{op.id}"


def channel_hashes(ctx: ServiceContext, channel: str, channel_id: str) -> tuple[str, ...]:
    """The keyed hashes that identify the account of (channel, channel_id) (the raw openid / phone number is not
    stored), under every signing key in use, the current one first. The channel id is not stored, so
    `pension-cert rekey` cannot recompute an account's hash: `login` moves it to the current key when the
    relative next comes (docs/operations.md, "Rotating the signing key")."""
    return ctx.keyring.macs(f"proxy-operator:{channel}:{channel_id}")


def find(db: Session, ctx: ServiceContext, channel: str, channel_id: str) -> ProxyOperator | None:
    """The operator of (channel, channel_id), if there is one; no token is issued."""
    where = (
        ProxyOperator.channel == channel,
        one_of_hashes(ProxyOperator.channel_hash, channel_hashes(ctx, channel, channel_id)),
    )
    return db.scalar(select(ProxyOperator).where(*where))


def h5_account(db: Session, ctx: ServiceContext, openid: str) -> ProxyOperator | None:
    """The H5 pages' own relative's account of this WeChat login (made by their `login`, client `wechat-h5`), for a
    page that reads it by the login alone. A channel key's account for the openid is its app's, never the pages'
    (`_refuse`: the key's openid is not shown to be this WeChat user's)."""
    op = find(db, ctx, "wechat", openid)
    return op if op is not None and op.client == H5_CLIENT else None


def login(
    db: Session, ctx: ServiceContext, channel: str, channel_id: str, client: str, aliases: tuple[str, ...] = ()
) -> OperatorLogin:
    """Find or create the operator of (channel, channel_id) and issue a fresh token (the previous one stops
    working: one device at a time). `client` is the caller's actor (`api:<8 hex>`, or `wechat-h5` for the H5
    pages), `aliases` its names under previous signing keys: only the client that made the account may log in to
    it; another's login is refused (PROXY_ACCOUNT_ELSEWHERE), audited, and the account's token left working."""
    if channel not in CHANNELS:
        raise InvalidInputError("UNAUTHORIZED", f"unknown channel {channel!r}")
    hashes = channel_hashes(ctx, channel, channel_id)
    query = select(ProxyOperator).where(
        ProxyOperator.channel == channel, one_of_hashes(ProxyOperator.channel_hash, hashes)
    )
    found = sorted(db.scalars(query.order_by(ProxyOperator.id).with_for_update()), key=lambda o: _key_rank(o, hashes))
    op = found[0] if found else None
    if op is not None and op.client is not None and op.client not in (client, *aliases):
        _refuse(db, op, channel, client, withdrawn=not client_in_force(ctx, op.client))
    created = op is None
    token = _new_token()
    if op is None:
        op = ProxyOperator(
            id=str(uuid.uuid4()), channel=channel, channel_hash=hashes[0], token_hash=token_hash(token), client=client
        )
        db.add(op)
    else:
        op.token_hash = token_hash(token)
        op.channel_hash = hashes[0]  # re-hashed on sight: a previous signing key's moves to the current one
        _move(db, op, client, client)  # the same: an alias moves to the current name; one before 0022 is claimed
    if len(found) > 1:
        # An account under each key (one made while the previous key was left out): the current key's is used,
        # the other keeps its hash (moving it would collide: uq_proxy_operator_channel) for staff to merge.
        others = [o.id for o in found[1:]]
        audit(db, client, "proxy.operator.duplicate_channel", op.id, {"channel": channel, "other": others})
        log.warning("proxy operator %s: another account for the same channel id under a previous key", op.id)
    db.flush()
    audit(db, client, "proxy.operator.login", op.id, {"channel": channel, "created": created})
    return OperatorLogin(op, token, created)


def _refuse(db: Session, op: ProxyOperator, channel: str, client: str, withdrawn: bool) -> NoReturn:
    """Another client's login to an account: refused, in a unit of its own (the request's is rolled back), so the
    bureau can find a channel key naming other integrators' relatives. Nothing of the account is changed or
    answered: a channel key is not trusted with another integrator's data (docs/security.md, Part A). Nor are the
    H5 pages with a channel key's account for their openid: the key's openid is only what its app said, not shown
    to be this WeChat user's, and the account holds its app user's identity and elders; they are told so, or, where
    the app is `withdrawn` (no key in force names it), told the ways left (the relative cannot go back to it)."""
    reason = "its client is withdrawn" if withdrawn else "another client's account"
    target, detail = op.id, {"channel": channel, "reason": reason}
    db.rollback()  # the row lock taken above
    with refusal_entry(client, LOGIN_REFUSED, target, detail):
        audit(db, client, LOGIN_REFUSED, target, detail)
        db.commit()
    if client != H5_CLIENT:
        code = PROXY_ACCOUNT_ELSEWHERE
    else:
        code = PROXY_ACCOUNT_APP_WITHDRAWN if withdrawn else PROXY_ACCOUNT_IN_APP
    raise ProxyServiceError(code, "this channel identity's account belongs to another client")


def client_in_force(ctx: ServiceContext, client: str) -> bool:
    """Whether the client that made an account still logs in to it: the H5 pages, or a key in `API_KEYS` or
    `ADMIN_API_KEYS` (its name under any signing key in use), or one `API_KEYS_REPLACED` makes one client with a key
    in either. An integrator's app withdrawn (its key removed from `API_KEYS`, docs/operations.md) is none of
    these: its accounts serve nobody. (So is a key replaced without the pair whose accounts await `move-relatives`:
    the same refusal, only worded for the relative, see `_refuse`.)"""
    return client == H5_CLIENT or client in _clients_in_force(ctx)


# `_clients_in_force` per keyring (a context's; a test may put another in), with the key settings it was computed
# from: every proxy token check asks, and each name is an HMAC per key, replaced key and signing key.
_IN_FORCE: weakref.WeakKeyDictionary[Keyring, tuple[tuple[object, ...], frozenset[str]]] = weakref.WeakKeyDictionary()


def _clients_in_force(ctx: ServiceContext) -> frozenset[str]:
    """The names of every key in force (`client_in_force`), computed again whenever the keyring or the key settings
    it read differ (settings changed in place, as tests do, are not answered from before)."""
    sec, keyring = ctx.settings.security, ctx.keyring
    read = (tuple(sec.api_keys), tuple(sec.admin_api_keys), tuple(sec.api_keys_replaced.items()))
    cached = _IN_FORCE.get(keyring)
    if cached is not None and cached[0] == read:
        return cached[1]
    names = keyring.key_names
    channel = {name for key in sec.api_keys for k in (key, *sec.same_client(key)) for name in names("api:", k)}
    operator = {name for key in sec.admin_api_keys for k in (key, *sec.same_client(key)) for name in names("admin:", k)}
    found = frozenset(channel | operator)
    _IN_FORCE[keyring] = (read, found)
    return found


def _move(db: Session, op: ProxyOperator, to: str, by: str) -> None:
    """Record the account as `to`'s: a move from another name (the same key's under a previous signing key, a
    replaced channel key's, or staff's `move_client`) is audited with both names; an account before 0022 (no
    client) is claimed, its login entry says by whom."""
    if op.client is not None and op.client != to:
        audit(db, by, CLIENT_MOVED, op.id, {"from": op.client, "to": to})
    op.client = to


def move_client(db: Session, ctx: ServiceContext, old: str, new: str, by: str, via: dict[str, str]) -> int:
    """Every account of client `old` made `new`'s (a channel key replaced before API_KEYS_REPLACED named it, or
    whose old key is lost), audited per account and once with `via` (how it was asked): how many. `new` must name
    a channel key in force (`key_in_force`: under any signing key in use; the accounts get its current name). The
    H5 pages' accounts are never moved to a key, nor a key's to the H5 pages (a channel key's openid is not shown
    to be the WeChat user's: docs/security.md Part BS); a name no account holds is refused as unknown."""
    if old == H5_CLIENT:
        raise InvalidInputError(PROXY_CLIENT_UNKNOWN, f"the accounts of {H5_CLIENT} are never moved to a key")
    new = key_in_force(ctx, new)
    accounts = db.scalars(
        select(ProxyOperator).where(ProxyOperator.client == old).order_by(ProxyOperator.id).with_for_update()
    ).all()
    if old == new or not accounts:
        raise InvalidInputError(PROXY_CLIENT_UNKNOWN, f"no relative's account to move is recorded under {_shown(old)}")
    for op in accounts:
        _move(db, op, new, by)
        # Its token was issued to `old`, a key no longer in force (authenticate refuses it): moved, it must not
        # answer again (a leaked key's, docs/operations.md). The new key's app logs the relative in afresh.
        op.token_hash = token_hash(_new_token())
    audit(db, by, CLIENTS_MOVED, new, {"from": old, "to": new, "moved": len(accounts), **via})
    db.flush()
    return len(accounts)


# A client name as audit entries and accounts hold it: a key's (`api:`/`admin:` + 8 hex of its HMAC) or the H5 pages'.
_CLIENT_NAME = re.compile(r"(?:api|admin):[0-9a-f]{8}|" + re.escape(H5_CLIENT))
NAMES_ONLY = "api:<8 hex>, as the audit entries name the key; never the key itself"


def key_in_force(ctx: ServiceContext, name: str) -> str:
    """The current name of the channel key in `API_KEYS` that `name` names, under the current or a previous signing
    key (an audit entry made before a signing key's rotation names it so): what `move_client` moves accounts to.
    Refused (PROXY_CLIENT_UNKNOWN) with what is taken: the H5 pages never take a key's accounts (Part BS), an
    operator key's (`admin:`) move with `API_KEYS_REPLACED` only, and a value that is no name is not repeated (an
    operator who pasted the key itself would find it in the cron mail)."""
    for key in ctx.settings.security.api_keys:
        names = ctx.keyring.key_names("api:", key) if key else ()
        if name in names:
            return names[0]
    if name == H5_CLIENT:
        why = f"a channel key's accounts are never given to the H5 pages ({H5_CLIENT})"
    elif name.startswith("admin:"):
        why = f"{_shown(name)} is an operator key's name: its accounts move with API_KEYS_REPLACED only"
    else:
        why = f"{_shown(name)} is not the name of a channel key in API_KEYS"
    raise InvalidInputError(PROXY_CLIENT_UNKNOWN, f"{why}; give the key to move to by its name ({NAMES_ONLY})")


def _shown(name: str) -> str:
    """`name` for a refusal line: a client name as itself, anything else (it may be a key) not repeated."""
    return repr(name) if _CLIENT_NAME.fullmatch(name) else "the value given (not repeated: it is no client name)"


def _key_rank(op: ProxyOperator, hashes: tuple[str, ...]) -> int:
    """Which signing key made the account's hash: 0 the current one."""
    return hashes.index(op.channel_hash)


def _new_token() -> str:
    """A fresh operator token carrying its issue time (seconds since 1970, before the dot): the stored hash covers
    the whole token, so the time cannot be changed, and a lifetime needs no column of its own."""
    return f"{int(clock.now_utc().timestamp())}.{new_token()}"


def _issued_s(token: str) -> int | None:
    """The issue time a token carries; None for one without (issued before tokens had a lifetime)."""
    stamp, dot, _ = token.partition(".")
    return int(stamp) if dot and stamp.isascii() and stamp.isdigit() else None


def authenticate(db: Session, ctx: ServiceContext, token: str | None) -> ProxyOperator:
    """The account of an operator token, while the key that issued it (the account's client) is in force and for
    OPERATOR_TOKEN_TTL_S after its issue. A key withdrawn from API_KEYS stops its relatives' tokens with it: they
    were its app's reach into the relatives' data (docs/operations.md, "Replacing a channel key"). An account no
    client is recorded for (before migration 0022) answers no token: its next login claims it."""
    if not token:
        raise ServiceError("UNAUTHORIZED", "operator token missing")
    op = db.scalar(select(ProxyOperator).where(ProxyOperator.token_hash == token_hash(token)))
    if op is None:
        raise ServiceError("UNAUTHORIZED", "operator token unknown")
    if op.client is None or not client_in_force(ctx, op.client):
        raise ServiceError("UNAUTHORIZED", "the key that issued this operator token is no longer in force")
    issued = _issued_s(token)
    if issued is None or clock.now_utc().timestamp() - issued > ctx.settings.security.operator_token_ttl_s:
        raise ServiceError("UNAUTHORIZED", "operator token expired: log in again (POST /api/v1/proxy/operators)")
    return op


def _identity(op: ProxyOperator) -> ProxyOperatorIdentity:
    """The operator's identity row, created on first use (it is saved with the operator)."""
    if op.identity is None:
        op.identity = ProxyOperatorIdentity(operator_id=op.id, template_consent=False)
    return op.identity


def store_template(ctx: ServiceContext, op: ProxyOperator, embedding: np.ndarray, model: str) -> None:
    """Keep the operator's face template (encrypted), used to tell the elder apart from the operator."""
    who = _identity(op)
    who.template = ctx.keyring.encrypt_field(
        embedding.astype(np.float32).tobytes().hex(), "proxy_operator.template"
    ).encode()
    who.template_model = model
    who.template_consent = True


def load_template(ctx: ServiceContext, op: ProxyOperator) -> tuple[np.ndarray, str] | None:
    who = op.identity
    if who is None or who.template is None or who.template_model is None:
        return None
    raw = ctx.keyring.decrypt_field(who.template.decode(), "proxy_operator.template")
    return np.frombuffer(bytes.fromhex(raw), dtype=np.float32).copy(), who.template_model


def mark_verified(op: ProxyOperator, person_hash: str, id_masked: str, name: str) -> None:
    who = _identity(op)
    who.person_hash, who.id_masked, who.name, who.verified_at = person_hash, id_masked, name, utcnow()
