"""The elder ends a relative's binding (我的信息, `elder_bindings.end_by_elder`: PIPL art. 15, consent withdrawn), and
what the relative's accounts may do afterwards; the person's new account (a new phone) binding the elders again.

- a binding the elder ended is `withdrawn`: binding again needs the elder's consent again (before, the old consent
  was copied onto the new binding, active at once), and the relative is told the elder ended it;
- a proxy certification in flight when the elder ends the binding certifies nobody (worker and staff alike);
- an ended binding tells its relative nothing of the elder's death (the proxy API as the H5 pages);
- the person's new account binding an elder moves the person's live binding of that elder there (`moved`): the
  limits count the relationship once, so a relative with three elders can change phones and bind them all.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines.decision.result import Outcome
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary, CertSession, SessionState, utcnow
from service.certification.processing import _apply
from service.features.proxy.elder_bindings import end_by_elder
from service.features.proxy.models import BindingStatus, ProxyBinding
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import (
    STAFF_ACCEPT,
    P,
    active_binding,
    bearer,
    bind,
    count_certifications,
    decide_as,
    login,
    new_elder,
    queue_untouched,
    set_for_review,
    staff_consent,
    verified_operator,
    verify_directly,
)


def _elder_ends(ctx: ServiceContext, ext: str, binding_id: str) -> None:
    """The elder's own "解除这位家人的代办" (the H5 page's call)."""
    with ctx.db() as db:
        elder = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert elder is not None
        end_by_elder(db, elder, binding_id, "wechat:elder")
        db.commit()


def _listed(client: TestClient, op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["binding_id"]: b for b in client.get(f"{P}/bindings", headers=bearer(op["token"])).json()}


def test_a_binding_the_elder_ended_needs_the_elders_consent_again(client: TestClient, ctx: ServiceContext) -> None:
    """Before: the relative bound again and got 201 `active` at once (the withdrawn consent copied), and could open
    a proxy certification straight away."""
    ext, number, name = new_elder(ctx)
    daughter = verified_operator(client, ctx)
    first = active_binding(client, daughter, number, name)
    # Her own unbind and bind again keep the consent (the elder did not withdraw it): active at once.
    assert client.delete(f"{P}/bindings/{first['binding_id']}", headers=bearer(daughter["token"])).status_code == 200
    again = bind(client, daughter, number, name).json()
    assert again["status"] == "active" and again["consent"]["method"] == "staff_approval"

    _elder_ends(ctx, ext, again["binding_id"])
    seen = _listed(client, daughter)[again["binding_id"]]
    assert seen["status"] == "withdrawn" and seen["ended"] is True
    assert seen["status_zh"].startswith("老人本人已解除您的代办绑定")  # not "已解绑": she did not end it

    third = bind(client, daughter, number, name)
    assert third.status_code == 201, third.text
    body = third.json()
    assert body["status"] == "pending_consent" and body["consent"] is None  # neither earlier consent is reused
    r = client.post(f"{P}/bindings/{body['binding_id']}/sessions", headers=bearer(daughter["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_PENDING", r.text
    # The elder consents anew: that consent is hers to keep again after her own unbind.
    assert staff_consent(client, body["binding_id"]).json()["status"] == "active"
    assert client.delete(f"{P}/bindings/{body['binding_id']}", headers=bearer(daughter["token"])).status_code == 200
    assert bind(client, daughter, number, name).json()["status"] == "active"


def test_the_elders_end_holds_for_the_relatives_other_account(client: TestClient, ctx: ServiceContext) -> None:
    """The withdrawal is the person's: her phone account's own earlier consent (given before it) is not reused."""
    ext, number, name = new_elder(ctx)
    wechat = login(client)
    person = verify_directly(ctx, wechat["operator_id"])
    phone = login(client, channel="phone")
    verify_directly(ctx, phone["operator_id"], number=person)
    on_phone = active_binding(client, phone, number, name)
    assert client.delete(f"{P}/bindings/{on_phone['binding_id']}", headers=bearer(phone["token"])).status_code == 200
    on_wechat = active_binding(client, wechat, number, name)
    _elder_ends(ctx, ext, on_wechat["binding_id"])
    assert bind(client, phone, number, name).json()["status"] == "pending_consent"


def _proxy_sessions(client: TestClient, op: dict[str, Any], binding_id: str, n: int) -> list[dict[str, Any]]:
    out = [client.post(f"{P}/bindings/{binding_id}/sessions", headers=bearer(op["token"])) for _ in range(n)]
    assert all(r.status_code == 201 for r in out), [r.text for r in out]
    return [r.json() for r in out]


def test_a_certification_in_flight_when_the_elder_ends_the_binding_certifies_nobody(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Before: a certification queued (or in review) when the elder ended the binding was still accepted, by the
    worker or by staff: a year's certification made under a consent he had withdrawn."""
    ext, number, name = new_elder(ctx)
    daughter = verified_operator(client, ctx)
    b = active_binding(client, daughter, number, name)
    queued, racing, in_review = _proxy_sessions(client, daughter, b["binding_id"], 3)
    queue_untouched(ctx, queued)
    set_for_review(ctx, in_review["session_id"])
    factories.update(
        ctx, CertSession, racing["session_id"], state=SessionState.PROCESSING, worker_id="w-race", queued_at=utcnow()
    )
    _elder_ends(ctx, ext, b["binding_id"])

    # The worker whose policy read the binding before the elder ended it: held back when applied (holds.hold).
    machine: dict[str, object] = {"decision": "accept", "messages": []}
    assert _apply(ctx, racing["session_id"], "w-race", Outcome.ACCEPT, [], machine, None)
    with ctx.db() as db:
        raced = db.get(CertSession, racing["session_id"])
        assert raced is not None and raced.decision == "reject" and raced.reasons == ["PROXY_BINDING_WITHDRAWN"]
        assert raced.result is not None  # what she reads:
        assert raced.result["messages"] == ["老人本人已解除您的代办绑定,本次代办认证不能通过"]
    # The worker, from the start: rejected with the reason, whatever the video showed.
    s = decide_as(ctx, queued["session_id"], Outcome.ACCEPT)
    assert s.decision == "reject" and "PROXY_BINDING_WITHDRAWN" in s.reasons
    # Staff cannot accept the one in review; they are told why.
    r = client.post(f"/api/v1/sessions/{in_review['session_id']}/review", json=STAFF_ACCEPT, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_BINDING_WITHDRAWN", r.text
    assert r.json()["error"]["message"] == "老人本人已解除您的代办绑定,本次代办认证不能通过"
    assert count_certifications(ctx) == 0
    assert factories.update(ctx, ProxyBinding, b["binding_id"]).failures == 0  # no failure of hers


def test_a_relatives_own_unbind_does_not_stop_her_certification_in_flight(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Today's rule kept: a relative who unbinds herself does not undo her own certification already queued."""
    _, number, name = new_elder(ctx)
    daughter = verified_operator(client, ctx)
    b = active_binding(client, daughter, number, name)
    [racing] = _proxy_sessions(client, daughter, b["binding_id"], 1)
    factories.update(
        ctx, CertSession, racing["session_id"], state=SessionState.PROCESSING, worker_id="w-race", queued_at=utcnow()
    )
    assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=bearer(daughter["token"])).status_code == 200
    assert _apply(ctx, racing["session_id"], "w-race", Outcome.ACCEPT, [], {"decision": "accept"}, None)
    assert count_certifications(ctx) == 1


def test_an_ended_binding_tells_nothing_of_the_elders_death(client: TestClient, ctx: ServiceContext) -> None:
    """Before: the proxy API's list showed `elder_deceased: true` on any binding once consented, ended or not; the
    H5 pages tell an active binding only (`bindings.accepted`, now the one rule)."""
    ext, number, name = new_elder(ctx)
    withdrawn, unbound, active = (verified_operator(client, ctx) for _ in range(3))
    ended_by_elder = active_binding(client, withdrawn, number, name)
    _elder_ends(ctx, ext, ended_by_elder["binding_id"])
    own = active_binding(client, unbound, number, name)
    assert client.delete(f"{P}/bindings/{own['binding_id']}", headers=bearer(unbound["token"])).status_code == 200
    still = active_binding(client, active, number, name)
    with ctx.db() as db:
        elder = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert elder is not None
        elder.status = "deceased"
        db.commit()
    for op, b, told in ((withdrawn, ended_by_elder, False), (unbound, own, False), (active, still, True)):
        assert _listed(client, op)[b["binding_id"]]["elder_deceased"] is told
        me = client.get(f"{P}/operators/me", headers=bearer(op["token"])).json()
        assert [x["elder_deceased"] for x in me["bindings"]] == [told]


def test_a_new_phone_binds_the_persons_three_elders_and_the_old_bindings_move(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Before: the old phone's three live bindings counted against the active limit (5) and nobody could end them:
    the third elder was refused from the new phone; each phone change also used up three lifetime slots (8)."""
    elders = [new_elder(ctx)[1:] for _ in range(3)]
    old = login(client, channel="phone")
    person = verify_directly(ctx, old["operator_id"])
    olds = [active_binding(client, old, number, name) for number, name in elders]
    for _ in range(2):  # two phone changes: 9 bindings in all, the limits count 3 relationships
        new = login(client, channel="phone")
        verify_directly(ctx, new["operator_id"], number=person)
        news = [bind(client, new, number, name) for number, name in elders]
        assert [r.status_code for r in news] == [201, 201, 201], [r.text for r in news]
        assert {r.json()["status"] for r in news} == {"pending_consent"}  # the elder consents to the new account
        listed = _listed(client, old)
        assert [listed[b["binding_id"]]["status"] for b in olds] == ["moved"] * 3
        assert listed[olds[0]["binding_id"]]["status_zh"] == "您已用另一个账号绑定这位老人,请在新账号中办理"
        old, olds = new, [r.json() for r in news]
    with ctx.db() as db:
        moved = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.binding.moved")).all()
        assert len(moved) == 6 and all(e.actor.startswith("operator:") for e in moved)
    # The person's own unbind and bind again still counts (the lifetime limit's anti-churn rule is unchanged).
    for b in olds:
        assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=bearer(old["token"])).status_code == 200
    for number, name in elders:
        assert bind(client, old, number, name).status_code == 201
    assert {b["status"] for b in _listed(client, old).values()} == {"ended", "pending_consent"}


def test_a_moved_binding_is_the_persons_own_status_not_the_elders_withdrawal(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Binding from the old account again reuses its own consent (moving is no withdrawal), and moves back."""
    _, number, name = new_elder(ctx)
    old = login(client, channel="phone")
    person = verify_directly(ctx, old["operator_id"])
    first = active_binding(client, old, number, name)
    new = login(client, channel="phone")
    verify_directly(ctx, new["operator_id"], number=person)
    moved_to = bind(client, new, number, name).json()
    back = bind(client, old, number, name).json()
    assert back["status"] == "active" and back["consent"]["method"] == "staff_approval"
    assert _listed(client, new)[moved_to["binding_id"]]["status"] == BindingStatus.MOVED.value
    assert _listed(client, old)[first["binding_id"]]["status"] == BindingStatus.MOVED.value
