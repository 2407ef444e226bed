"""Proxy API without models: relatives' accounts, the binding limits (5 active, 8 lifetime, 2 per elder),
the elder's consent, access control between relatives, locks, and the audit trail."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession, utcnow
from service.features.proxy.models import ProxyBinding
from service.features.proxy.policy import proxy_policy
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import (
    P,
    active_binding,
    bearer,
    bind,
    login,
    new_elder,
    staff_consent,
    verified_operator,
    verify_directly,
)


def test_operator_account_is_idempotent_per_channel_identity(client: TestClient) -> None:
    a = login(client, "openid-abc")
    again = login(client, "openid-abc")
    assert again["operator_id"] == a["operator_id"] and again["created"] is False and a["created"] is True
    # A new login rotates the token: the old phone session stops working.
    assert client.get(f"{P}/operators/me", headers=bearer(a["token"])).status_code == 401
    me = client.get(f"{P}/operators/me", headers=bearer(again["token"])).json()
    assert me == {**me, "verified": False, "bindings": [], "template_enrolled": False}
    assert login(client, "openid-abc", channel="phone")["operator_id"] != a["operator_id"]
    # Accounts are created by the channel back-end only.
    r = client.post(f"{P}/operators", json={"channel": "wechat", "channel_id": "x"}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401


def test_only_verified_relatives_bind_and_only_a_known_elder(client: TestClient, ctx: ServiceContext) -> None:
    _, number, name = new_elder(ctx)
    op = login(client)
    r = bind(client, op, number, name)
    assert r.status_code == 403 and r.json()["error"]["code"] == "PROXY_OPERATOR_UNVERIFIED"
    assert r.json()["error"]["message"] == "请先完成代办人本人实名认证"
    op = verified_operator(client, ctx)
    assert bind(client, op, number, "别人").status_code == 404  # the name must match the number
    assert bind(client, op, number, name, relationship="neighbour").status_code == 422
    r = bind(client, op, number, name, relationship="spouse")
    assert r.status_code == 201 and r.json()["status"] == "pending_consent"
    assert r.json()["elder_id_masked"] != number and number not in r.text


def test_at_most_five_active_bindings(client: TestClient, ctx: ServiceContext) -> None:
    op = verified_operator(client, ctx)
    elders = [new_elder(ctx) for _ in range(6)]
    ids = [active_binding(client, op, n, name)["binding_id"] for _, n, name in elders[:5]]
    r = bind(client, op, elders[5][1], elders[5][2])
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED"
    assert client.delete(f"{P}/bindings/{ids[0]}", headers=bearer(op["token"])).json()["status"] == "ended"
    assert bind(client, op, elders[5][1], elders[5][2]).status_code == 201


def test_at_most_eight_bindings_in_a_lifetime(client: TestClient, ctx: ServiceContext) -> None:
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    # Binding and unbinding the same elder in turns: every binding is recorded and counts.
    for _ in range(8):
        b = active_binding(client, op, number, name)
        assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=bearer(op["token"])).status_code == 200
    r = bind(client, op, number, name)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED"
    listed = client.get(f"{P}/bindings", headers=bearer(op["token"])).json()
    assert len(listed) == 8 and {b["status"] for b in listed} == {"ended"}
    assert all(b["ended_at"] for b in listed)


def test_at_most_two_relatives_per_elder(client: TestClient, ctx: ServiceContext) -> None:
    _, number, name = new_elder(ctx)
    son, daughter, nephew = (verified_operator(client, ctx) for _ in range(3))
    first = active_binding(client, son, number, name)
    active_binding(client, daughter, number, name)
    r = bind(client, nephew, number, name, relationship="other")
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED"
    client.delete(f"{P}/bindings/{first['binding_id']}", headers=bearer(son["token"]))
    assert bind(client, nephew, number, name, relationship="other").status_code == 201


def test_consent_at_the_first_binding(client: TestClient, ctx: ServiceContext) -> None:
    _, number, name = new_elder(ctx)
    son, daughter = verified_operator(client, ctx), verified_operator(client, ctx)
    pending = bind(client, son, number, name).json()
    assert pending["status"] == "pending_consent" and pending["consent"] is None
    # No proxy certification before the elder has consented.
    r = client.post(f"{P}/bindings/{pending['binding_id']}/sessions", headers=bearer(son["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_PENDING"
    # Staff approval needs the channel's API key and the staff member; the relative cannot approve it.
    url = f"{P}/bindings/{pending['binding_id']}/consent"
    r = client.post(url, json={"method": "staff_approval", "staff_id": "s1"}, headers=bearer(son["token"]))
    assert r.status_code == 401
    assert client.post(url, json={"method": "staff_approval"}, headers=ADMIN).status_code == 422
    # A channel back-end's key cannot consent for an elder either: staff approval is an operator action.
    r = client.post(url, json={"method": "staff_approval", "staff_id": "s1"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ADMIN_KEY_REQUIRED"
    # A live consent video is opened as a session of the elder (uploads through the session endpoints).
    live = client.post(url, json={"method": "live_video"}, headers=bearer(son["token"]))
    assert live.status_code == 200 and live.json()["challenge"]["nonce"] and live.json()["token"]
    approved = staff_consent(client, pending["binding_id"], "counter-3")
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    assert approved.json()["consent"]["method"] == "staff_approval"
    # The second relative's binding refers to the consent already given.
    second = bind(client, daughter, number, name, relationship="child_in_law").json()
    assert second["status"] == "active" and second["consent"]["method"] == "staff_approval"
    s = client.post(f"{P}/bindings/{second['binding_id']}/sessions", headers=bearer(daughter["token"]))
    assert s.status_code == 201 and s.json()["challenge"]["actions"]


def test_a_relative_sees_only_their_own_bindings(client: TestClient, ctx: ServiceContext) -> None:
    _, number, name = new_elder(ctx)
    a, b = verified_operator(client, ctx), verified_operator(client, ctx)
    mine = active_binding(client, a, number, name)["binding_id"]
    theirs = bind(client, b, *new_elder(ctx)[1:]).json()["binding_id"]
    hb = bearer(b["token"])
    for method, url in [
        ("delete", f"{P}/bindings/{mine}"),
        ("post", f"{P}/bindings/{mine}/sessions"),
        ("get", f"{P}/history?binding_id={mine}"),
    ]:
        r = client.request(method.upper(), url, headers=hb)
        assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND", (url, r.text)
    r = client.post(f"{P}/bindings/{mine}/consent", json={"method": "live_video"}, headers=hb)
    assert r.status_code == 404
    assert [x["binding_id"] for x in client.get(f"{P}/bindings", headers=hb).json()] == [theirs]
    assert [x["binding_id"] for x in client.get(f"{P}/operators/me", headers=hb).json()["bindings"]] == [theirs]
    # The binding was not touched by the other relative.
    assert client.get(f"{P}/bindings", headers=bearer(a["token"])).json()[0]["status"] == "active"
    # Without an operator token (even with the channel's API key) there is nothing to see.
    assert client.get(f"{P}/bindings").status_code == 401
    assert client.get(f"{P}/bindings", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_locked_and_deceased(client: TestClient, ctx: ServiceContext) -> None:
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    b = active_binding(client, op, number, name)
    with ctx.db() as db:
        row = db.get(ProxyBinding, b["binding_id"])
        assert row is not None
        row.locked = True
    r = client.post(f"{P}/bindings/{b['binding_id']}/sessions", headers=bearer(op["token"]))
    assert r.status_code == 423 and r.json()["error"]["code"] == "PROXY_BINDING_LOCKED"
    # Only staff lift a lock: the relative's own token cannot.
    unlock = f"{P}/bindings/{b['binding_id']}/unlock"
    assert client.post(unlock, json={"staff_id": "s9"}, headers=bearer(op["token"])).status_code == 401
    r = client.post(unlock, json={"staff_id": "s9"})  # a channel key: not an operator
    assert r.status_code == 403 and r.json()["error"]["code"] == "ADMIN_KEY_REQUIRED"
    assert client.post(unlock, json={"staff_id": "s9", "note": "家访核实"}, headers=ADMIN).json()["locked"] is False
    assert client.post(f"{P}/bindings/{b['binding_id']}/sessions", headers=bearer(op["token"])).status_code == 201
    _, number2, name2 = new_elder(ctx, status="deceased")
    dead = active_binding(client, op, number2, name2)
    r = client.post(f"{P}/bindings/{dead['binding_id']}/sessions", headers=bearer(op["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED"


def test_every_proxy_action_is_audited_with_the_operator(client: TestClient, ctx: ServiceContext) -> None:
    op = verified_operator(client, ctx)
    ext, number, name = new_elder(ctx)
    _, n2, nm2 = new_elder(ctx)
    b = active_binding(client, op, number, name)
    s = client.post(f"{P}/bindings/{b['binding_id']}/sessions", headers=bearer(op["token"])).json()
    client.delete(f"{P}/bindings/{b['binding_id']}", headers=bearer(op["token"]))
    for _ in range(5):
        active_binding(client, op, *new_elder(ctx)[1:])
    bind(client, op, n2, nm2)  # refused: 5 active
    with ctx.db() as db:
        entries = list(db.scalars(select(AuditEntry).where(AuditEntry.actor == f"operator:{op['operator_id']}")))
    actions = [e.action for e in entries]
    assert actions[:4] == ["proxy.bind", "session.create", "proxy.unbind", "proxy.bind"]
    assert actions[-1] == "proxy.bind.refused" and entries[-1].detail["reason"] == "PROXY_LIMIT_REACHED"
    assert entries[1].target == s["session_id"] and entries[0].target == ext
    consent = [e for e in _all(ctx) if e.action == "proxy.consent" and e.detail["binding"] == b["binding_id"]]
    assert consent and "staff-007" in consent[0].actor
    assert all(number not in str(e.detail) and number not in e.target for e in entries)


def _all(ctx: ServiceContext) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry)))


def test_nobody_is_their_own_proxy(client: TestClient, ctx: ServiceContext) -> None:
    _, number, name = new_elder(ctx)
    op = login(client)
    verify_directly(ctx, op["operator_id"], name=name, number=number)
    r = bind(client, op, number, name, relationship="other")
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED"


def test_limits_are_configurable(client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENSION_CERT_PROXY_MAX_RELATIVES_PER_ELDER", "1")
    assert proxy_policy().max_relatives_per_elder == 1 and proxy_policy().max_active_bindings_per_relative == 5
    _, number, name = new_elder(ctx)
    active_binding(client, verified_operator(client, ctx), number, name)
    r = bind(client, verified_operator(client, ctx), number, name)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED"


def _decided_for_review(ctx: ServiceContext, session_id: str) -> None:
    with ctx.db() as db:
        row = db.get(CertSession, session_id)
        assert row is not None
        row.state, row.decision, row.decided_at, row.result = "decided", "review", utcnow(), {"decision": "review"}


def test_staff_review_of_proxy_sessions(client: TestClient, ctx: ServiceContext) -> None:
    ext, number, name = new_elder(ctx)
    op = verified_operator(client, ctx)
    pending = bind(client, op, number, name).json()
    consent = client.post(
        f"{P}/bindings/{pending['binding_id']}/consent", json={"method": "live_video"}, headers=bearer(op["token"])
    ).json()
    _decided_for_review(ctx, consent["session_id"])
    settle = {"decision": "accept", "reviewer": "窗口1-周"}
    r = client.post(f"/api/v1/sessions/{consent['session_id']}/review", json=settle, headers=ADMIN)
    assert r.status_code == 200
    mine = client.get(f"{P}/bindings", headers=bearer(op["token"])).json()[0]
    assert mine["status"] == "active" and mine["consent"]["method"] == "live_video"
    # A consent video certifies nobody, even when staff accept it.
    assert client.get(f"/api/v1/beneficiaries/{ext}").json()["last_certified_on"] is None

    s = client.post(f"{P}/bindings/{pending['binding_id']}/sessions", headers=bearer(op["token"])).json()
    _decided_for_review(ctx, s["session_id"])
    with ctx.db() as db:
        elder = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert elder is not None
        elder.status = "deceased"  # reported dead while the case waited for review
    r = client.post(f"/api/v1/sessions/{s['session_id']}/review", json=settle, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED"
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(Certification)) == 0
