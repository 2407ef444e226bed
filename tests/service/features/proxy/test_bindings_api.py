"""Proxy API without models: relatives' accounts, the binding limits (5 active, 8 lifetime, 2 per elder),
the elder's consent, access control between relatives, locks, and the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from proxy_auth import ConsentMethod
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession, utcnow
from service.features.proxy import bindings
from service.features.proxy.models import ProxyBinding, ProxyClaim
from service.features.proxy.policy import proxy_policy
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import (
    REVIEW_WITH_A_CLEAR_FACE,
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
    son = verified_operator(client, ctx)
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
    # The same relative binding the elder again keeps the consent the elder gave them.
    assert client.delete(f"{P}/bindings/{pending['binding_id']}", headers=bearer(son["token"])).status_code == 200
    again = bind(client, son, number, name).json()
    assert again["status"] == "active" and again["consent"]["method"] == "staff_approval"
    s = client.post(f"{P}/bindings/{again['binding_id']}/sessions", headers=bearer(son["token"]))
    assert s.status_code == 201 and s.json()["challenge"]["actions"]


def test_a_reused_consent_keeps_its_time_and_is_recorded_for_the_new_binding(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The auditor's review, F4: the same relative unbinds and binds the elder again, reusing the elder's consent to
    them (docs/proxy.md). Before: the new binding said the consent was given at the re-bind's time, and no
    `proxy.consent` entry existed for it. Now it keeps the consent's own time, and a `proxy.consent` entry for the
    new binding names the binding it was given to."""
    external_id, number, name = new_elder(ctx)
    son = verified_operator(client, ctx)
    first = active_binding(client, son, number, name)  # staff approval
    assert client.delete(f"{P}/bindings/{first['binding_id']}", headers=bearer(son["token"])).status_code == 200
    with ctx.db() as db:  # the re-bind comes a day later
        row = db.get(ProxyBinding, first["binding_id"])
        assert row is not None and row.consent_at is not None
        given_at = row.consent_at - dt.timedelta(days=1)
        row.consent_at = given_at
    again = bind(client, son, number, name).json()
    assert again["status"] == "active"
    with ctx.db() as db:
        new = db.get(ProxyBinding, again["binding_id"])
        assert new is not None and new.consent_at == given_at
        consents = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.consent").order_by(AuditEntry.id))
        last = list(consents)[-1]
    assert last.target == external_id and last.detail["binding"] == again["binding_id"]
    assert last.detail["reused_from"] == first["binding_id"] and last.detail["given_at"] == given_at.isoformat() + "Z"
    assert again["consent"]["at"].startswith(given_at.isoformat()[:19])


def test_the_elder_consents_to_each_relative_not_to_everyone(client: TestClient, ctx: ServiceContext) -> None:
    # Before: the second relative's binding copied the first one's consent (an ended binding's too), so anyone
    # with the elder's name and number became an active proxy and read the family's history.
    _, number, name = new_elder(ctx)
    son, stranger = verified_operator(client, ctx), verified_operator(client, ctx)
    first = active_binding(client, son, number, name)
    assert client.delete(f"{P}/bindings/{first['binding_id']}", headers=bearer(son["token"])).status_code == 200
    theirs = bind(client, stranger, number, name, relationship="child").json()
    assert theirs["status"] == "pending_consent" and theirs["consent"] is None
    hs = bearer(stranger["token"])
    r = client.post(f"{P}/bindings/{theirs['binding_id']}/sessions", headers=hs)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_PENDING"
    # Nor does a binding the elder has not agreed to show who else certifies for them.
    r = client.get(f"{P}/history", params={"binding_id": theirs["binding_id"]}, headers=hs)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_PENDING"
    assert r.json()["error"]["message"] == "老人尚未同意绑定,请先完成老人同意确认"
    # The elder's own consent to this relative (here staff approval) makes it active.
    ok = staff_consent(client, theirs["binding_id"], "counter-5").json()
    assert ok["status"] == "active" and ok["consent"]["method"] == "staff_approval"
    assert client.get(f"{P}/history", params={"binding_id": theirs["binding_id"]}, headers=hs).status_code == 200


def test_a_relatives_read_of_the_elders_history_is_audited(client: TestClient, ctx: ServiceContext) -> None:
    """The auditor's review, F2: the history names who certified the elder (the other relatives' names and masked
    numbers, each decision). Before: a channel key's read was `proxy.history.read`, a relative's left no entry. Now
    both routes read through history.read_history: one entry naming the relative, the elder and the binding."""
    external_id, number, name = new_elder(ctx)
    son, daughter = verified_operator(client, ctx), verified_operator(client, ctx)
    active_binding(client, son, number, name)
    hers = active_binding(client, daughter, number, name)
    r = client.get(f"{P}/history", params={"binding_id": hers["binding_id"]}, headers=bearer(daughter["token"]))
    assert r.status_code == 200, r.text
    with ctx.db() as db:
        reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.history.read")).all()
        got = [(e.actor, e.target, e.detail) for e in reads]
    n = len(r.json()["entries"])
    assert got == [(f"operator:{daughter['operator_id']}", external_id, {"entries": n, "binding": hers["binding_id"]})]


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
    _, number2, name2 = new_elder(ctx)
    dead = active_binding(client, op, number2, name2)
    with ctx.db() as db:  # reported dead after the family bound them
        elder_row = db.scalar(select(Beneficiary).where(Beneficiary.id_hash == ctx.keyring.id_hash(number2)))
        assert elder_row is not None
        elder_row.status = "deceased"
    r = client.post(f"{P}/bindings/{dead['binding_id']}/sessions", headers=bearer(op["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED"
    mine = {x["binding_id"]: x for x in client.get(f"{P}/bindings", headers=bearer(op["token"])).json()}
    assert mine[dead["binding_id"]]["elder_deceased"] is True  # the consented relative is told why


def test_a_stranger_binding_learns_nothing_of_a_death(client: TestClient, ctx: ServiceContext) -> None:
    """Binding a deceased person by name and number answers as for an unknown one (the real reason audited);
    a binding still waiting for consent when its elder is reported dead does not show the death."""
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx, status="deceased")
    dead = bind(client, op, number, name)
    wrong = bind(client, op, number, name + "某")
    assert dead.status_code == wrong.status_code == 404
    assert dead.json()["error"] == wrong.json()["error"]
    refused = [e for e in _all(ctx) if e.action == "proxy.bind.refused"]
    assert [e.detail["reason"] for e in refused] == ["deceased", "name_mismatch"]
    _, number2, name2 = new_elder(ctx)
    pending = bind(client, op, number2, name2).json()
    assert pending["status"] == "pending_consent"
    with ctx.db() as db:
        elder_row = db.scalar(select(Beneficiary).where(Beneficiary.id_hash == ctx.keyring.id_hash(number2)))
        assert elder_row is not None
        elder_row.status = "deceased"
    [view] = [x for x in client.get(f"{P}/bindings", headers=bearer(op["token"])).json() if x["status"] != "ended"]
    assert view["binding_id"] == pending["binding_id"] and view["elder_deceased"] is False


def test_a_locked_binding_cannot_be_unbound_until_staff_unlock_it(client: TestClient, ctx: ServiceContext) -> None:
    # Before: DELETE then POST /bindings gave an active, unlocked binding with no failures.
    op = verified_operator(client, ctx)
    ext, number, name = new_elder(ctx)
    b = active_binding(client, op, number, name)
    factories.update(ctx, ProxyBinding, b["binding_id"], locked=True, failures=3)  # as three rejected sessions leave it
    h = bearer(op["token"])
    r = client.delete(f"{P}/bindings/{b['binding_id']}", headers=h)
    assert r.status_code == 423 and r.json()["error"]["code"] == "PROXY_BINDING_LOCKED"
    assert r.json()["error"]["message"] == "多次认证未通过,该绑定已锁定,请联系经办机构人工审核"
    [mine] = client.get(f"{P}/bindings", headers=h).json()
    assert (mine["status"], mine["locked"], mine["failures"]) == ("active", True, 3)
    assert bind(client, op, number, name).status_code == 409  # still bound: no second binding beside it
    refused = [e for e in _all(ctx) if e.action == "proxy.unbind.refused"]
    assert [(e.actor, e.target, e.detail["reason"]) for e in refused] == [
        (f"operator:{op['operator_id']}", ext, "PROXY_BINDING_LOCKED")
    ]
    # After staff have looked (unlock resets the failures) the relative may unbind, and bind again.
    assert (
        client.post(f"{P}/bindings/{b['binding_id']}/unlock", json={"staff_id": "s9"}, headers=ADMIN).status_code == 200
    )
    assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=h).json()["status"] == "ended"
    again = bind(client, op, number, name).json()
    assert (again["status"], again["locked"], again["flagged"], again["failures"]) == ("active", False, False, 0)


def test_binding_again_keeps_the_pairs_flag_failures_and_lock(client: TestClient, ctx: ServiceContext) -> None:
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    h = bearer(op["token"])
    # Failures short of the lock survive an unbind: churning bindings does not buy new tries.
    b = active_binding(client, op, number, name)
    factories.update(ctx, ProxyBinding, b["binding_id"], failures=2)
    assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=h).status_code == 200
    b = bind(client, op, number, name).json()
    assert (b["status"], b["failures"], b["locked"]) == ("active", 2, False)
    # The relative filmed themselves (flagged, locked); staff unlock it, the flag stays on record.
    factories.update(ctx, ProxyBinding, b["binding_id"], flagged=True, locked=True)
    client.post(f"{P}/bindings/{b['binding_id']}/unlock", json={"staff_id": "s9"}, headers=ADMIN)
    assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=h).status_code == 200
    # Binding again starts flagged, and the elder's earlier consent no longer covers this relative.
    again = bind(client, op, number, name).json()
    assert (again["status"], again["flagged"], again["consent"]) == ("pending_consent", True, None)
    entry = [e for e in _all(ctx) if e.action == "proxy.bind" and e.detail["binding"] == again["binding_id"]]
    assert entry[0].detail["carried"] == {"failures": 0, "locked": False, "flagged": True}
    # A binding ended while locked (e.g. before unbinding was refused) passes its lock on.
    assert staff_consent(client, again["binding_id"]).json()["status"] == "active"
    factories.update(ctx, ProxyBinding, again["binding_id"], locked=True, status="ended", ended_at=utcnow())
    last = bind(client, op, number, name).json()
    assert (last["locked"], last["flagged"]) == (True, True)
    r = client.post(f"{P}/bindings/{last['binding_id']}/sessions", headers=h)
    assert r.status_code == 423 and r.json()["error"]["code"] == "PROXY_BINDING_LOCKED"


def test_a_verified_relative_cannot_verify_again_as_someone_else(client: TestClient, ctx: ServiceContext) -> None:
    # Before: 201, and an accepted session replaced the operator's identity and face template.
    op = login(client)
    mine = verify_directly(ctx, op["operator_id"], name="李建国")
    other = factories.id_number(region="110101", birth=dt.date(1980, 1, 2))
    h = bearer(op["token"])
    for number in (other, mine):
        body = {"id_number": number, "name": "李建国", "template_consent": True}
        r = client.post(f"{P}/operators/me/verification", json=body, headers=h)
        assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_OPERATOR_VERIFIED", r.text
        assert r.json()["error"]["message"] == "您已完成实名认证,如需变更身份信息请到经办机构办理"
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(ProxyClaim)) == 0
        assert db.scalar(select(func.count()).select_from(CertSession)) == 0
    refused = [e for e in _all(ctx) if e.action == "proxy.verification.refused"]
    assert [e.actor for e in refused] == [f"operator:{op['operator_id']}"] * 2
    me = client.get(f"{P}/operators/me", headers=h).json()
    assert me["verified"] is True and me["id_masked"] == mine[:4] + "**"


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
        mine = select(AuditEntry).where(AuditEntry.actor == f"operator:{op['operator_id']}")
        entries = list(db.scalars(mine.order_by(AuditEntry.id)))  # written in this order; PostgreSQL returns any
    actions = [e.action for e in entries]
    assert actions[:4] == ["proxy.bind", "session.create", "proxy.unbind", "proxy.bind"]
    assert actions[-1] == "proxy.bind.refused" and entries[-1].detail["reason"] == "PROXY_LIMIT_REACHED"
    assert entries[1].target == s["session_id"] and entries[0].target == ext
    consent = [e for e in _all(ctx) if e.action == "proxy.consent" and e.detail["binding"] == b["binding_id"]]
    assert consent and "staff-007" in consent[0].actor
    assert all(number not in str(e.detail) and number not in e.target for e in entries)


def _all(ctx: ServiceContext) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).order_by(AuditEntry.id)))


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
        row.state, row.decision, row.decided_at = "decided", "review", utcnow()
        row.result = dict(REVIEW_WITH_A_CLEAR_FACE)


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


def test_strangers_waiting_for_consent_do_not_keep_a_child_out(client: TestClient, ctx: ServiceContext) -> None:
    """Before: a pending binding took one of the elder's two relative slots, so two strangers who knew the name
    and number could keep the family out. Now only consented relatives count, at binding and again at consent."""
    _, number, name = new_elder(ctx)
    daughter = verified_operator(client, ctx)
    active_binding(client, daughter, number, name)
    strangers = [verified_operator(client, ctx) for _ in range(2)]
    waiting = [bind(client, s, number, name, "other").json() for s in strangers]
    assert [w["status"] for w in waiting] == ["pending_consent", "pending_consent"]
    son = verified_operator(client, ctx)
    mine = bind(client, son, number, name)
    assert mine.status_code == 201 and mine.json()["status"] == "pending_consent"
    assert staff_consent(client, mine.json()["binding_id"]).json()["status"] == "active"  # daughter + son
    # The elder now has two relatives: a stranger's binding cannot be consented to, nor a new one made.
    refused = staff_consent(client, waiting[0]["binding_id"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "PROXY_LIMIT_REACHED"
    with ctx.db() as db:
        row = db.get(ProxyBinding, waiting[0]["binding_id"])
        assert row is not None and row.status == "pending_consent" and row.consent_at is None
        audited = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.consent.refused")).all()
        assert any(a.detail["binding"] == waiting[0]["binding_id"] for a in audited)
    late = bind(client, verified_operator(client, ctx), number, name)
    assert late.status_code == 409 and late.json()["error"]["code"] == "PROXY_LIMIT_REACHED"


def test_a_relative_reads_about_their_binding_not_about_a_session(client: TestClient, ctx: ServiceContext) -> None:
    """Asking the elder's consent again once given, or unbinding (or asking consent for) a binding that has
    ended, answered SESSION_STATE, "认证会话状态不允许该操作": a certification session the relative never opened.
    Now what happened to their binding: consent already given (409), not bound (404, as for any ended binding)."""
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    b = active_binding(client, op, number, name)
    h = bearer(op["token"])
    url = f"{P}/bindings/{b['binding_id']}"
    r = client.post(f"{url}/consent", json={"method": "live_video"}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_GIVEN", r.text
    assert r.json()["error"]["message"] == "老人已同意该绑定,无需再次确认"
    assert client.delete(url, headers=h).status_code == 200
    for r in (client.delete(url, headers=h), client.post(f"{url}/consent", json={"method": "live_video"}, headers=h)):
        assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND", r.text
        assert r.json()["error"]["message"] == "尚未绑定该亲属,请先绑定"


def test_a_relative_trying_names_and_numbers_is_on_record(client: TestClient, ctx: ServiceContext) -> None:
    """Every refused binding is audited with the relative's identity (a wrong name, an unknown number, as a limit
    or a death always were): before, a verified account trying names and numbers against the roster left no
    trace, and staff could not see who probed whom. The entries hold no ID number, as every proxy entry."""
    ext, number, name = new_elder(ctx)
    op = verified_operator(client, ctx)
    unknown = factories.id_number(birth=dt.date(1940, 1, 1))
    assert bind(client, op, number, "别人").status_code == 404
    assert bind(client, op, unknown, name).status_code == 404
    refused = [e for e in _all(ctx) if e.action == "proxy.bind.refused"]
    assert [(e.actor, e.target, e.detail["reason"]) for e in refused] == [
        (f"operator:{op['operator_id']}", ext, "name_mismatch"),
        (f"operator:{op['operator_id']}", "-", "unknown"),
    ]
    assert all(n not in str(e.detail) + e.target for e in refused for n in (number, unknown))


def test_a_retried_bind_names_the_binding_not_the_limit(client: TestClient, ctx: ServiceContext) -> None:
    """The app timed out after the binding was made and sent the bind again: the retry was 409
    PROXY_LIMIT_REACHED "绑定数量已达上限", the binding limits' code, and no binding id (outside review 2026-12-06,
    finding 6a)."""
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    first = bind(client, op, number, name)
    assert first.status_code == 201, first.text

    again = bind(client, op, number, name)

    assert again.status_code == 409 and again.json()["error"]["code"] == "PROXY_ALREADY_BOUND", again.text
    assert again.json()["error"]["binding_id"] == first.json()["binding_id"]
    assert len(client.get(f"{P}/bindings", headers=bearer(op["token"])).json()) == 1


def test_a_second_staff_approval_leaves_the_recorded_consent(client: TestClient, ctx: ServiceContext) -> None:
    """A retried or second staff approval answered 200 again and rewrote the binding's consent (finding 6b)."""
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    bid = bind(client, op, number, name).json()["binding_id"]
    assert staff_consent(client, bid, "staff-A").status_code == 200
    with ctx.db() as db:
        before = db.get(ProxyBinding, bid)
        assert before is not None
        recorded = (before.consent_method, before.consent_ref, before.consent_at)

    r = staff_consent(client, bid, "staff-B")

    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_GIVEN", r.text
    with ctx.db() as db:
        row = db.get(ProxyBinding, bid)
        assert row is not None and (row.consent_method, row.consent_ref, row.consent_at) == recorded
    consents = [e.detail["ref"] for e in _all(ctx) if e.action == "proxy.consent" and e.detail["binding"] == bid]
    assert consents == ["staff-A"]


def test_a_staff_approval_keeps_the_elders_own_consent_video(client: TestClient, ctx: ServiceContext) -> None:
    """A staff approval after the elder's own consent video replaced its method and link (the consent session) with
    staff_approval and a staff id: the binding misstated how the elder consented (finding 6b)."""
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    bid = bind(client, op, number, name).json()["binding_id"]
    with ctx.db() as db:  # the elder's consent video accepted (what the proxy hooks record)
        row = db.get(ProxyBinding, bid)
        assert row is not None
        assert bindings.record_consent(db, row, ConsentMethod.LIVE_VIDEO, "consent-session-1234", "system") is None

    r = staff_consent(client, bid, "staff-007")

    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_GIVEN", r.text
    with ctx.db() as db:
        row = db.get(ProxyBinding, bid)
        assert row is not None and (row.consent_method, row.consent_ref) == ("live_video", "consent-session-1234")


def test_a_staff_approval_without_its_staff_member_is_a_missing_field(client: TestClient, ctx: ServiceContext) -> None:
    """It was 422 with UNAUTHORIZED, a 401's code ("authenticate again") (finding 6c)."""
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    bid = bind(client, op, number, name).json()["binding_id"]
    r = client.post(f"{P}/bindings/{bid}/consent", json={"method": "staff_approval"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "FIELD_MISSING", r.text
    assert r.json()["error"]["fields"][0]["field"] == "staff_id", r.text
