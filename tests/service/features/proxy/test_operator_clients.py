"""A relative's account answers the logins of the client that made it only: another channel key naming the same
phone number or openid is refused, and the relative's own token keeps working (docs/security.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry
from service.features.proxy import operators
from tests.service.conftest import API_KEY
from tests.service.features.proxy.helpers import P, bearer, bind, login, new_elder, staff_consent, verify_directly

BANK = {"X-API-Key": "bank-app-channel-key-0123456789abcdef"}  # another integrator's channel key


@pytest.fixture
def two_keys(ctx: ServiceContext) -> Iterator[TestClient]:
    """The test's channel key (the relative's channel, the client's default) and a bank app's."""
    ctx.settings.security.api_keys.append(BANK["X-API-Key"])

    with TestClient(create_app(ctx=ctx)) as c:
        c.headers["X-API-Key"] = API_KEY
        yield c


@pytest.mark.parametrize("channel", ["phone", "wechat"])
def test_another_keys_login_is_refused_and_the_token_kept(
    two_keys: TestClient, ctx: ServiceContext, channel: str
) -> None:
    c = two_keys
    real = login(c, "13800138000", channel=channel)
    verify_directly(ctx, real["operator_id"])
    _, number, name = new_elder(ctx)
    binding = bind(c, real, number, name).json()["binding_id"]
    assert staff_consent(c, binding).status_code == 200

    r = c.post(f"{P}/operators", json={"channel": channel, "channel_id": "13800138000"}, headers=BANK)

    assert r.status_code == 403 and r.json()["error"]["code"] == "PROXY_ACCOUNT_ELSEWHERE", r.text
    assert "token" not in r.text and real["operator_id"] not in r.text
    me = c.get(f"{P}/operators/me", headers=bearer(real["token"]))
    assert me.status_code == 200 and [b["binding_id"] for b in me.json()["bindings"]] == [binding]
    with ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == operators.LOGIN_REFUSED)).all()
    assert [e.target for e in refused] == [real["operator_id"]]
    # The account's own key still logs in (one device at a time, within that client).
    assert login(c, "13800138000", channel=channel)["operator_id"] == real["operator_id"]


def test_the_h5_pages_account_is_not_reachable_by_a_channel_key(client: TestClient, ctx: ServiceContext) -> None:
    with ctx.db() as db:  # as POST /h5/api/operator logs in the WeChat user the cookie names
        h5 = operators.login(db, ctx, "wechat", "openid-h5-1", operators.H5_CLIENT)
        db.commit()
        h5_id, h5_token = h5.operator.id, h5.token

    r = client.post(f"{P}/operators", json={"channel": "wechat", "channel_id": "openid-h5-1"})

    assert r.status_code == 403 and r.json()["error"]["code"] == "PROXY_ACCOUNT_ELSEWHERE", r.text
    assert client.get(f"{P}/operators/me", headers=bearer(h5_token)).json()["operator_id"] == h5_id


def test_an_account_made_before_the_rule_is_claimed_by_its_next_login(client: TestClient, ctx: ServiceContext) -> None:
    first = login(client, "openid-legacy")
    with ctx.db() as db:  # as migration 0022 leaves an account no audit entry names
        op = operators.find(db, ctx, "wechat", "openid-legacy")
        assert op is not None and op.client is not None
        op.client = None
        db.commit()
    assert login(client, "openid-legacy")["operator_id"] == first["operator_id"]
    with ctx.db() as db:
        op = operators.find(db, ctx, "wechat", "openid-legacy")
        assert op is not None and op.client is not None and op.client.startswith("api:")
