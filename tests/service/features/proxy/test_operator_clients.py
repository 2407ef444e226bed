"""A relative's account answers the logins of the client that made it only: another channel key naming the same
phone number or openid is refused, and the relative's own token keeps working (docs/security.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.adapters.http.app import create_app
from service.certification import catalog
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry
from service.features.proxy import operators
from service.features.proxy.models import ProxyOperator
from service.features.wechat.h5 import identity
from service.infra.config import settings_from_flat
from tests.service.conftest import ADMIN, API_KEY
from tests.service.features.proxy.helpers import P, bearer, bind, login, new_elder, staff_consent, verify_directly

BANK = {"X-API-Key": "bank-app-channel-key-0123456789abcdef"}  # another integrator's channel key
NEW_KEY = "the-same-integrators-new-key-0123456789"  # the key the bureau gives the test's integrator instead


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


def _moves(ctx: ServiceContext) -> list[tuple[str, object, object]]:
    with ctx.db() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.action == operators.CLIENT_MOVED).order_by(AuditEntry.id))
        return [(e.actor, e.detail["from"], e.detail["to"]) for e in rows]


def test_a_replaced_channel_keys_accounts_log_in_under_the_key_that_replaced_it(
    two_keys: TestClient, ctx: ServiceContext
) -> None:
    """Before: the integrator's new key was refused every account its old key made (PROXY_ACCOUNT_ELSEWHERE),
    and no setting could say the two keys were one client's."""
    c, new = two_keys, {"X-API-Key": NEW_KEY}
    real = login(c, "13800138000", channel="phone")
    old_name, new_name = (ctx.keyring.key_names("api:", key)[0] for key in (API_KEY, NEW_KEY))
    security = ctx.settings.security
    # The rotation (docs/operations.md): both keys in force while the integrator switches, the old one named.
    security.api_keys.append(NEW_KEY)
    security.api_keys_replaced = {API_KEY: NEW_KEY}
    asked = {"channel": "phone", "channel_id": "13800138000"}

    first = c.post(f"{P}/operators", json=asked, headers=new)
    assert first.status_code == 200 and first.json()["operator_id"] == real["operator_id"], first.text
    assert login(c, "13800138000", channel="phone")["operator_id"] == real["operator_id"]  # a server not switched
    security.api_keys.remove(API_KEY)  # the old key withdrawn: it authenticates nothing
    assert c.post(f"{P}/operators", json=asked).status_code == 401
    last = c.post(f"{P}/operators", json=asked, headers=new)
    assert last.status_code == 200 and last.json()["operator_id"] == real["operator_id"], last.text
    me = c.get(f"{P}/operators/me", headers=bearer(last.json()["token"]))
    assert me.status_code == 200 and me.json()["operator_id"] == real["operator_id"]

    # Another integrator is refused as before; every move is audited with both names.
    assert c.post(f"{P}/operators", json=asked, headers=BANK).status_code == 403
    moves = [(new_name, old_name, new_name), (old_name, new_name, old_name), (new_name, old_name, new_name)]
    assert _moves(ctx) == moves
    with ctx.db() as db:
        op = operators.find(db, ctx, "phone", "13800138000")
        assert op is not None and op.client == new_name


def test_the_replaced_channel_keys_setting() -> None:
    """One client: a key, the keys it replaced and those that replaced it, however many replacements apart. A
    slip is refused at start, naming the entry by its place, never a key."""
    old, mid, new, other, admin = ("k" + str(i) * 39 for i in range(5))
    chain = settings_from_flat(api_keys=[new, other], admin_api_keys=[admin], api_keys_replaced={old: mid, mid: new})
    assert chain.security.same_client(new) == (old, mid) and chain.security.same_client(old) == (mid, new)
    assert chain.security.same_client(other) == ()
    slips = {
        "entry 2: the key that replaced it is not in PENSION_CERT_API_KEYS": {mid: new, old: "typo"},
        "entry 1 names an operator key": {admin: new},
        "entry 1 has an empty key, or a key replaced by itself": {new: new},
    }
    for problem, pairs in slips.items():
        with pytest.raises(ValueError, match=problem) as refused:
            settings_from_flat(api_keys=[new], admin_api_keys=[admin], api_keys_replaced=pairs)
        assert old not in str(refused.value) and admin not in str(refused.value)


def test_a_replaced_operator_keys_accounts_log_in_under_the_key_that_replaced_it(
    client: TestClient, ctx: ServiceContext
) -> None:
    """An operator key logs relatives in too (the bureau's own app; `client_in_force`). Before: API_KEYS_REPLACED
    refused an operator key at start, so replacing one lost every account it made (PROXY_ACCOUNT_ELSEWHERE to the
    new key) and nothing could move them (`move-relatives` takes channel keys)."""
    old, new = ADMIN, {"X-API-Key": "the-bureaus-new-operator-key-0123456789"}
    asked = {"channel": "phone", "channel_id": "13800138009"}
    made = client.post(f"{P}/operators", json=asked, headers=old)
    assert made.status_code == 200, made.text
    security = ctx.settings.security
    security.admin_api_keys.append(new["X-API-Key"])
    refused = client.post(f"{P}/operators", json=asked, headers=new)  # without the pair: another client
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "PROXY_ACCOUNT_ELSEWHERE", refused.text
    security.api_keys_replaced = settings_from_flat(
        api_keys=security.api_keys,
        admin_api_keys=security.admin_api_keys,
        api_keys_replaced={old["X-API-Key"]: new["X-API-Key"]},
    ).security.api_keys_replaced  # the start accepts an operator key's pair
    security.admin_api_keys.remove(old["X-API-Key"])
    moved = client.post(f"{P}/operators", json=asked, headers=new)
    assert moved.status_code == 200 and moved.json()["operator_id"] == made.json()["operator_id"], moved.text
    old_name, new_name = (ctx.keyring.key_names("admin:", h["X-API-Key"])[0] for h in (old, new))
    assert _moves(ctx) == [(new_name, old_name, new_name)]
    # A family is of one kind: a channel key never gets what an operator key made, nor the other way round.
    operator_key = new["X-API-Key"]
    mixed_pair = r"entry 1 names an operator key \(ADMIN_API_KEYS\) and a channel key"
    with pytest.raises(ValueError, match=mixed_pair) as mixed:
        settings_from_flat(api_keys=[API_KEY], admin_api_keys=[operator_key], api_keys_replaced={operator_key: API_KEY})
    assert operator_key not in str(mixed.value) and API_KEY not in str(mixed.value)


def test_the_h5_pages_are_told_a_channel_keys_account_is_its_apps_and_take_nothing(
    client: TestClient, ctx: ServiceContext
) -> None:
    """A channel key's `wechat` account for the openid the H5 pages log in with stays the key's (the key's openid
    is only what its app said). Before: the page read "请回到原渠道登录", as if the relative had come from one."""
    made = login(client, "openid-shared")
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-shared"))

    r = client.post("/h5/api/operator", headers={"X-API-Key": ""})

    assert r.status_code == 403 and r.json()["error"]["code"] == operators.PROXY_ACCOUNT_IN_APP, r.text
    assert r.json()["error"]["message"] == catalog.message_zh(operators.PROXY_ACCOUNT_IN_APP)
    assert "token" not in r.text and made["operator_id"] not in r.text
    client.cookies.clear()
    me = client.get(f"{P}/operators/me", headers=bearer(made["token"]))
    assert me.status_code == 200 and me.json()["operator_id"] == made["operator_id"]
    with ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == operators.LOGIN_REFUSED)).all()
    assert [(e.actor, e.target) for e in refused] == [(operators.H5_CLIENT, made["operator_id"])]


def test_the_h5_pages_point_a_withdrawn_apps_relative_to_what_is_left_and_take_nothing(
    two_keys: TestClient, ctx: ServiceContext
) -> None:
    """The bank's app is withdrawn (its key out of API_KEYS, docs/operations.md): its account for the openid serves
    nobody any more. The H5 pages still take nothing of it (its openid is only what the app said), but no longer
    send the relative back to an app that is gone: they name the ways left. Before: 403 PROXY_ACCOUNT_IN_APP,
    "请在该应用中为家人办理", for good."""
    made = two_keys.post(f"{P}/operators", json={"channel": "wechat", "channel_id": "openid-bank"}, headers=BANK)
    assert made.status_code == 200, made.text
    two_keys.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-bank"))
    in_app = two_keys.post("/h5/api/operator", headers={"X-API-Key": ""})
    assert in_app.status_code == 403 and in_app.json()["error"]["code"] == operators.PROXY_ACCOUNT_IN_APP  # in force

    ctx.settings.security.api_keys.remove(BANK["X-API-Key"])  # the app withdrawn
    r = two_keys.post("/h5/api/operator", headers={"X-API-Key": ""})

    assert r.status_code == 403 and r.json()["error"]["code"] == operators.PROXY_ACCOUNT_APP_WITHDRAWN, r.text
    told = r.json()["error"]["message"]
    assert told == catalog.message_zh(operators.PROXY_ACCOUNT_APP_WITHDRAWN) and "已停止服务" in told
    assert "申请上门认证" in told and "经办窗口" in told and "请在该应用中" not in told
    assert "token" not in r.text and made.json()["operator_id"] not in r.text
    with ctx.db() as db:
        refused = db.scalars(
            select(AuditEntry).where(AuditEntry.action == operators.LOGIN_REFUSED).order_by(AuditEntry.id)
        ).all()
        assert [e.detail["reason"] for e in refused] == ["another client's account", "its client is withdrawn"]
        op = db.get(ProxyOperator, made.json()["operator_id"])
        assert op is not None and op.client != operators.H5_CLIENT  # still the app's: nothing moved
