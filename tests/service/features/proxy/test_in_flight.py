"""Proxy sessions whose circumstances change while they are in flight (docs/proxy.md, *Sessions in flight*):

- a relative's verification sessions (no beneficiary) opened together: the upload that queues one counts the
  operator's other undecided verifications as failures, as the core does for a person's sessions;
- a binding's certifications opened together: its failures plus the undecided ones stay under the lock;
- the kinship rule after a roster change of the record's ID number: the previous person's relatives (revoked
  bindings, also those that had ended before the change) are not the new person's; ended ones of the same person
  still are;
- a proxy certification opened for the previous person and decided after the change certifies nobody;
- a consent video accepted after the consent window: refused, not accepted with nothing recorded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines.decision.result import Outcome
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, SessionState, utcnow
from service.features.proxy.history import elder_history
from service.features.proxy.models import BindingStatus, ProxyBinding
from service.features.proxy.relatives import relative_templates
from tests.service import factories
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import (
    STAFF_ACCEPT,
    P,
    active_binding,
    bearer,
    bind,
    count_certifications,
    decide_as,
    import_roster,
    login,
    new_elder,
    queue_untouched,
    roster_csv,
    set_for_review,
    staff_consent,
    verified_operator,
)
from tests.service.media import LIVE_VIDEO
from tests.service.test_relatives import MODEL, operator_bound_to

CARD = "idcard/synthetic/card_002.jpg"


def _media(data_dir: Path) -> tuple[bytes, bytes]:
    return (data_dir / CARD).read_bytes(), (data_dir / LIVE_VIDEO).read_bytes()


def _send(client: TestClient, s: dict[str, Any], card: bytes, video: bytes, i: int) -> Any:
    """Card then video (made unique: an exact re-upload is refused for what it is); the video's answer."""
    assert put_card(client, s, card).status_code == 200
    return put_video(client, s, video + bytes([i]) * 16, ctype="video/mp4", rid=f"video-{s['session_id']}")


def _refused_unstored(ctx: ServiceContext, r: Any, session_id: str, code: str, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    with ctx.db() as db:
        row = db.get(CertSession, session_id)
        assert row is not None and row.state == "open" and row.video_key is None and row.nonce_used_at is None
    assert not ctx.storage.exists(f"sessions/{session_id}/video")


def test_verifications_opened_together_give_no_more_tries_than_the_daily_limit(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    """Each verification passed the check when it opened (nothing decided yet), and a verification has no
    beneficiary, so the core's count of undecided sessions skipped it: four opened together were four tries at
    matching a face to the card. Now the fourth upload is refused until one of the three is decided."""
    card, video = _media(data_dir)
    op = login(client)
    body = {"id_number": factories.id_number(region="110101"), "name": "李建国", "template_consent": True}
    opened = []
    for _ in range(4):
        r = client.post(f"{P}/operators/me/verification", json=body, headers=bearer(op["token"]))
        assert r.status_code == 201, r.text
        opened.append(r.json())
    for i, s in enumerate(opened[:3]):
        r = _send(client, s, card, video, i)
        assert r.status_code == 200 and r.json()["state"] == "queued", r.text
    last = opened[3]
    r = _send(client, last, card, video, 3)
    _refused_unstored(ctx, r, last["session_id"], "ATTEMPTS_EXCEEDED", 429)
    assert r.json()["error"]["staff_review"] is True
    # Another relative's account is not held back by this one's sessions in flight.
    other = login(client)
    s = client.post(f"{P}/operators/me/verification", json=body, headers=bearer(other["token"])).json()
    assert _send(client, s, card, video, 9).status_code == 200
    # One of the three is decided without a failure (sent to staff): the fourth may go now.
    factories.update(
        ctx, CertSession, opened[0]["session_id"], state=SessionState.DECIDED, decision="review", decided_at=utcnow()
    )
    r = put_video(client, last, video + b"\x03" * 16, ctype="video/mp4", rid=f"video-{last['session_id']}")
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text


def test_a_bindings_certifications_in_flight_stay_under_its_lock(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    """Two failures recorded, the lock at three: two sessions opened together both passed the lock check, and
    both videos were tries (the daily limit, per day, does not see yesterday's failures). Now the second
    upload waits for the first decision; a lock or a revocation that came meanwhile stops it as well."""
    card, video = _media(data_dir)
    _, number, name = new_elder(ctx)
    op = verified_operator(client, ctx)
    b = active_binding(client, op, number, name)
    factories.update(ctx, ProxyBinding, b["binding_id"], failures=2)
    first, second = (
        client.post(f"{P}/bindings/{b['binding_id']}/sessions", headers=bearer(op["token"])).json() for _ in range(2)
    )
    r = _send(client, first, card, video, 0)
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text
    refused = _send(client, second, card, video, 1)
    _refused_unstored(ctx, refused, second["session_id"], "PROXY_DECISION_PENDING", 409)
    assert refused.json()["error"]["message"] == "上一次代办认证正在处理,请等结果出来后再试"

    # The first is rejected: the binding is locked (as hooks.on_decided does), so the second stays refused.
    factories.update(
        ctx, CertSession, first["session_id"], state=SessionState.DECIDED, decision="reject", decided_at=utcnow()
    )
    factories.update(ctx, ProxyBinding, b["binding_id"], failures=3, locked=True)
    r = put_video(client, second, video + b"\x01" * 16, ctype="video/mp4", rid=f"video-{second['session_id']}")
    _refused_unstored(ctx, r, second["session_id"], "PROXY_BINDING_LOCKED", 423)
    # Revoked (the roster changed the record's number) after the session was opened: no try for the new person.
    factories.update(
        ctx, ProxyBinding, b["binding_id"], failures=0, locked=False, status=BindingStatus.REVOKED, ended_at=utcnow()
    )
    r = put_video(client, second, video + b"\x01" * 16, ctype="video/mp4", rid=f"video-{second['session_id']}")
    _refused_unstored(ctx, r, second["session_id"], "PROXY_NOT_BOUND", 404)


def _relatives(client: TestClient, ctx: ServiceContext, ext: str) -> set[str]:
    s = open_session(client, ext)
    with ctx.db() as db:
        return {label for label, _ in relative_templates(db, ctx, s["session_id"], MODEL)}


def test_the_previous_persons_relatives_are_not_the_new_persons(client: TestClient, ctx: ServiceContext) -> None:
    """A roster change of the record's ID number revoked the live bindings, but the kinship rule still took every
    operator ever bound to the record for the new person's relative (a false 'closer to a relative' review), and
    a binding that had ended before the change stayed `ended`: also the old person's, yet counted and its consent
    reused. Ended bindings of the same person still count: unbinding must not take a relative out of the rule."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        live = operator_bound_to(db, ctx, b, BindingStatus.ACTIVE, MODEL)
        unbound = operator_bound_to(db, ctx, b, BindingStatus.ENDED, MODEL)  # ended before the change
        ext = b.external_id
    assert _relatives(client, ctx, ext) == {f"proxy_operator:{live}", f"proxy_operator:{unbound}"}

    other = factories.id_number(birth=dt.date(1941, 2, 3))
    assert import_roster(client, roster_csv(ext, other, "李秀珍"))["identity_changed"] == 1
    with ctx.db() as db:
        rows = db.scalars(select(ProxyBinding).where(ProxyBinding.operator_id.in_([live, unbound]))).all()
        assert {r.status for r in rows} == {BindingStatus.REVOKED}
        new_person = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert new_person is not None
        # The new person's own relative, who later unbinds: still a relative for the rule.
        theirs = operator_bound_to(db, ctx, new_person, BindingStatus.ENDED, MODEL)
    assert _relatives(client, ctx, ext) == {f"proxy_operator:{theirs}"}


def test_an_unbound_relatives_consent_is_not_reused_for_the_records_new_person(
    client: TestClient, ctx: ServiceContext
) -> None:
    ext, number, name = new_elder(ctx)
    op = verified_operator(client, ctx)
    b = active_binding(client, op, number, name)  # the old person consented to this relative
    assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=bearer(op["token"])).json()["status"] == "ended"
    other, new_name = factories.id_number(birth=dt.date(1941, 2, 3)), "李秀珍"
    assert import_roster(client, roster_csv(ext, other, new_name))["identity_changed"] == 1
    listed = client.get(f"{P}/bindings", headers=bearer(op["token"])).json()
    assert [x["status"] for x in listed] == ["revoked"]
    again = bind(client, op, other, new_name)
    assert again.status_code == 201 and again.json()["status"] == "pending_consent"  # the new person consents


def test_a_proxy_session_of_the_previous_person_certifies_nobody(client: TestClient, ctx: ServiceContext) -> None:
    """Opened for the record's previous person, decided after the roster gave the record another number: it went
    on as if bound (first proxy → review) and staff could accept it, certifying the new person on the strength
    of the old person's relative. Now the machine rejects it (PROXY_NOT_BOUND) and staff cannot accept it."""
    ext, number, name = new_elder(ctx)
    op = verified_operator(client, ctx)
    b = active_binding(client, op, number, name)
    queued, in_review = (
        client.post(f"{P}/bindings/{b['binding_id']}/sessions", headers=bearer(op["token"])).json() for _ in range(2)
    )
    queue_untouched(ctx, queued)
    set_for_review(ctx, in_review["session_id"])
    changed = roster_csv(ext, factories.id_number(birth=dt.date(1941, 2, 3)), name)
    assert import_roster(client, changed)["identity_changed"]

    r = client.post(f"/api/v1/sessions/{in_review['session_id']}/review", json=STAFF_ACCEPT, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_BINDING_REVOKED", r.text
    assert r.json()["error"]["message"] == "名册中该老人的身份证号已变更,原亲属绑定已终止,本次代办认证不能通过"
    with ctx.db() as db:
        row = db.get(CertSession, in_review["session_id"])
        assert row is not None and row.decision == "review"  # still staff's to reject
    assert count_certifications(ctx) == 0
    r = client.post(
        f"/api/v1/sessions/{in_review['session_id']}/review",
        json={"decision": "reject", "reviewer": "窗口1-周"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text

    s = decide_as(ctx, queued["session_id"], Outcome.ACCEPT)
    assert s.decision == "reject" and "PROXY_NOT_BOUND" in s.reasons
    assert (
        factories.update(ctx, ProxyBinding, b["binding_id"]).failures == 0
    )  # not the relative's failure: nothing carries over
    assert count_certifications(ctx) == 0
    with ctx.db() as db:  # the new person's family history shows nothing of the previous person's relative
        record = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert record is not None and elder_history(db, record.id) == []


def test_a_consent_video_accepted_after_the_window_is_refused(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff accepting the elder's consent video after the window answered 200 and recorded nothing (the
    binding expired underneath): an acceptance that did not happen. Now 409 PROXY_CONSENT_EXPIRED, the case stays
    open for a rejection; the machine rejects such a video (PROXY_NOT_BOUND) rather than accepting it for nothing."""
    monkeypatch.setenv("PENSION_CERT_PROXY_PENDING_CONSENT_DAYS", "3")
    _, number, name = new_elder(ctx)
    staff_case, machine_case = verified_operator(client, ctx), verified_operator(client, ctx)
    sessions = {}
    for op in (staff_case, machine_case):
        pending = bind(client, op, number, name).json()
        r = client.post(f"{P}/bindings/{pending['binding_id']}/consent", json={}, headers=bearer(op["token"]))
        assert r.status_code == 200, r.text
        sessions[op["operator_id"]] = (pending["binding_id"], r.json())
        factories.update(ctx, ProxyBinding, pending["binding_id"], created_at=utcnow() - dt.timedelta(days=3.5))

    binding_id, consent = sessions[staff_case["operator_id"]]
    set_for_review(ctx, consent["session_id"])
    r = client.post(f"/api/v1/sessions/{consent['session_id']}/review", json=STAFF_ACCEPT, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_CONSENT_EXPIRED", r.text
    with ctx.db() as db:
        row = db.get(CertSession, consent["session_id"])
        assert row is not None and row.decision == "review"
    assert factories.update(ctx, ProxyBinding, binding_id).consent_at is None
    assert staff_consent(client, binding_id).json()["error"]["code"] == "PROXY_CONSENT_EXPIRED"

    binding_id, consent = sessions[machine_case["operator_id"]]
    queue_untouched(ctx, consent)
    s = decide_as(ctx, consent["session_id"], Outcome.ACCEPT)
    assert s.decision == "reject" and "PROXY_NOT_BOUND" in s.reasons
    late = factories.update(ctx, ProxyBinding, binding_id)
    assert late.consent_at is None and late.status != BindingStatus.ACTIVE and late.failures == 0


def test_a_consent_video_decided_after_its_relative_unbound_consents_nobody(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The relative unbound while the elder's consent video waited: the machine's acceptance recorded nothing and
    the video read as accepted. Now it is rejected as not bound."""
    _, number, name = new_elder(ctx)
    op = verified_operator(client, ctx)
    pending = bind(client, op, number, name).json()
    consent = client.post(f"{P}/bindings/{pending['binding_id']}/consent", json={}, headers=bearer(op["token"]))
    assert consent.status_code == 200, consent.text
    queue_untouched(ctx, consent.json())
    r = client.delete(f"{P}/bindings/{pending['binding_id']}", headers=bearer(op["token"]))
    assert r.status_code == 200, r.text
    s = decide_as(ctx, consent.json()["session_id"], Outcome.ACCEPT)
    assert s.decision == "reject" and "PROXY_NOT_BOUND" in s.reasons
    assert factories.update(ctx, ProxyBinding, pending["binding_id"]).consent_at is None
