"""A relative's operator token answers only while the key that issued it is in force, and for OPERATOR_TOKEN_TTL_S
after its issue (docs/proxy.md; docs/operations.md, "Replacing a channel key"). Before, a channel key withdrawn from
API_KEYS kept acting through every token it had minted, and a token never ended."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import CertSession
from service.features.proxy import operators
from service.features.proxy.models import ProxyOperator
from service.infra import clock
from service.infra.security import token_hash
from tests.service.conftest import API_KEY
from tests.service.features.proxy.helpers import P, active_binding, bearer, login, new_elder, verify_directly

APP_KEY = "city-app-channel-key-0123456789abcdef"  # an integrator's app the bureau will withdraw
NEW_KEY = "city-app-new-channel-key-0123456789abcd"  # the key that replaces it


@pytest.fixture
def app_client(ctx: ServiceContext) -> Iterator[TestClient]:
    """A client whose channel key is the integrator's APP_KEY."""
    ctx.settings.security.api_keys.append(APP_KEY)
    with TestClient(create_app(ctx=ctx)) as c:
        c.headers["X-API-Key"] = APP_KEY
        yield c


def _bound_relative(c: TestClient, ctx: ServiceContext) -> tuple[dict[str, Any], str]:
    """A verified relative the app logged in, with an elder bound and consented: (login answer, binding id)."""
    op = login(c, "13800138001", channel="phone")
    verify_directly(ctx, op["operator_id"])
    _, number, name = new_elder(ctx)
    return op, active_binding(c, op, number, name)["binding_id"]


def _sessions(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        return db.scalar(select(func.count()).select_from(CertSession)) or 0


def _refused(r: Any) -> bool:
    return bool(r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED")


def test_a_withdrawn_keys_relatives_tokens_answer_nothing(app_client: TestClient, ctx: ServiceContext) -> None:
    op, binding = _bound_relative(app_client, ctx)
    auth = bearer(op["token"])
    assert app_client.get(f"{P}/operators/me", headers=auth).status_code == 200
    before = _sessions(ctx)

    ctx.settings.security.api_keys.remove(APP_KEY)  # the leaked-key step: the app's key withdrawn

    assert _refused(app_client.get(f"{P}/operators/me", headers=auth))
    assert _refused(app_client.get(f"{P}/bindings", headers=auth))
    assert _refused(app_client.post(f"{P}/bindings/{binding}/sessions", headers=auth))
    assert _refused(app_client.get(f"{P}/history", params={"binding_id": binding}, headers=auth))
    assert _refused(app_client.get(f"{P}/bindings/{binding}/certificate", headers=auth))
    assert _refused(app_client.delete(f"{P}/bindings/{binding}", headers=auth))
    assert _sessions(ctx) == before  # nothing opened


def test_a_replaced_keys_relatives_tokens_still_answer(app_client: TestClient, ctx: ServiceContext) -> None:
    """API_KEYS_REPLACED makes the old and the new key one client: the old key's accounts are the new key's, so
    the tokens it issued stay good after it leaves API_KEYS (Part BV's rotation)."""
    op, binding = _bound_relative(app_client, ctx)
    security = ctx.settings.security
    security.api_keys.append(NEW_KEY)
    security.api_keys_replaced = {APP_KEY: NEW_KEY}
    security.api_keys.remove(APP_KEY)

    me = app_client.get(f"{P}/operators/me", headers=bearer(op["token"]))
    assert me.status_code == 200 and me.json()["operator_id"] == op["operator_id"], me.text
    created = app_client.post(f"{P}/bindings/{binding}/sessions", headers=bearer(op["token"]))
    assert created.status_code == 201, created.text


def test_a_withdrawn_keys_accounts_moved_by_staff_keep_no_old_token(
    app_client: TestClient, ctx: ServiceContext
) -> None:
    """`move-relatives` gives a withdrawn key's accounts to a key in force: the tokens the old key issued (a leaked
    key's, whoever holds them) must not come back to life with the move."""
    op, _ = _bound_relative(app_client, ctx)
    old = ctx.keyring.key_names("api:", APP_KEY)[0]
    ctx.settings.security.api_keys.remove(APP_KEY)
    with ctx.db() as db:
        moved = operators.move_client(db, ctx, old, ctx.keyring.key_names("api:", API_KEY)[0], "cli:staff", {})
        db.commit()
    assert moved == 1
    assert _refused(app_client.get(f"{P}/operators/me", headers=bearer(op["token"])))
    asked = {"channel": "phone", "channel_id": "13800138001"}
    fresh = app_client.post(f"{P}/operators", json=asked, headers={"X-API-Key": API_KEY})  # the key in force logs in
    assert fresh.status_code == 200 and fresh.json()["operator_id"] == op["operator_id"], fresh.text
    assert app_client.get(f"{P}/operators/me", headers=bearer(fresh.json()["token"])).status_code == 200


def test_an_operator_token_ends_after_its_lifetime(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = clock.now_utc()
    monkeypatch.setattr(clock, "now_utc", lambda: issued)
    op = login(client, "13800138002", channel="phone")
    ttl = dt.timedelta(seconds=ctx.settings.security.operator_token_ttl_s)

    monkeypatch.setattr(clock, "now_utc", lambda: issued + ttl - dt.timedelta(minutes=1))
    assert client.get(f"{P}/operators/me", headers=bearer(op["token"])).status_code == 200
    monkeypatch.setattr(clock, "now_utc", lambda: issued + ttl + dt.timedelta(minutes=1))
    assert _refused(client.get(f"{P}/operators/me", headers=bearer(op["token"])))
    again = login(client, "13800138002", channel="phone")  # the app logs the relative in again
    assert client.get(f"{P}/operators/me", headers=bearer(again["token"])).status_code == 200


def test_a_token_without_an_issue_time_is_refused(client: TestClient, ctx: ServiceContext) -> None:
    """A token issued before tokens carried their issue time has no end: refused; the app logs in again."""
    op = login(client, "13800138003", channel="phone")
    with ctx.db() as db:
        row = db.get(ProxyOperator, op["operator_id"])
        assert row is not None
        row.token_hash = token_hash("an-old-token-without-a-time")
        db.commit()
    assert _refused(client.get(f"{P}/operators/me", headers=bearer("an-old-token-without-a-time")))
