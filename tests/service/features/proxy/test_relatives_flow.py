"""The relatives' flow (docs/security.md Part T): a flag on one proxy certification and the binding's siblings
already queued, the elder's consent video against full relative slots, and a death told by the consent route.

The proxy policy (`hooks.apply_policy`) is stood in for where a test needs its verdict on a video (an accept: the
elder's face, not the relative's, not the first proxy certification; or the relative filming themselves): it runs
outside any transaction, so what it read may be stale by the time the decision is applied, which is what these
tests are about. Everything from the decision's transaction on is the real code (`processing._apply`, the proxy
hooks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pipelines.decision.result import Decision, Outcome
from pipelines.decision.runner import CertificationReport
from pipelines.reasons import ReasonCode
from proxy_auth import ConsentMethod
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession, SessionState, utcnow
from service.certification.processing import claim, process
from service.features.proxy import bindings, operators, sessions
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator
from tests.service import factories
from tests.service.certifiers import FixedCertifier
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import (
    P,
    active_binding,
    bearer,
    bind,
    new_elder,
    staff_consent,
    verified_operator,
)
from tests.service.test_lock_order import lock_waits, until
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)

OPERATOR_FACE = Decision(
    Outcome.REJECT, [ReasonCode.FACE_MISMATCH, ReasonCode.PROXY_OPERATOR_FACE], {"operator_match": 0.8}, {}, {}
)
ACCEPTED = Decision(Outcome.ACCEPT, [], {"card_similarity": 0.9, "operator_match": 0.05}, {}, {})


def _policy_says(ctx: ServiceContext, verdicts: dict[str, Decision]) -> None:
    """The proxy policy's verdict on each session's video (the sessions not named: accepted)."""

    def hook(_ctx: ServiceContext, session_id: str, _c: Certifier, _r: CertificationReport, /) -> Decision:
        return verdicts.get(session_id, ACCEPTED)

    ctx.hooks.decision["proxy.policy"] = hook


def _queued(ctx: ServiceContext, session_id: str) -> None:
    card, video = f"sessions/{session_id}/id_card", f"sessions/{session_id}/video"
    ctx.storage.put(card, b"card")
    ctx.storage.put(video, b"video")
    factories.update(
        ctx, CertSession, session_id, id_card_key=card, video_key=video, state=SessionState.QUEUED, queued_at=utcnow()
    )


def _decide(ctx: ServiceContext, session_id: str) -> CertSession:
    assert claim(ctx, session_id, "w1") == session_id
    assert process(ctx, cast(Certifier, FixedCertifier(Outcome.ACCEPT)), session_id, "w1")
    with ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.state == SessionState.DECIDED
        db.expunge(s)
        return s


def _certified(ctx: ServiceContext, session_id: str) -> int:
    with ctx.db() as db:
        return int(
            db.scalar(select(func.count()).select_from(Certification).where(Certification.session_id == session_id))
            or 0
        )


def _open(client: TestClient, op: dict[str, Any], binding_id: str, what: str = "sessions") -> str:
    return str(_opened(client, op, binding_id, what)["session_id"])


def _opened(client: TestClient, op: dict[str, Any], binding_id: str, what: str = "sessions") -> dict[str, Any]:
    r = client.post(f"{P}/bindings/{binding_id}/{what}", json={}, headers=bearer(op["token"]))
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


# --- 1. A flag on one proxy certification and its queued siblings ----------------------------------------------


def test_a_flag_sends_the_bindings_queued_siblings_to_staff(client: TestClient, ctx: ServiceContext) -> None:
    """Three certifications of one binding queued together; the first shows the relative's own face (flagged,
    binding locked). Before: the two others, their videos accepted by the policy, certified the elder all the
    same, the second even after staff had lifted the lock without knowing of it. Now each goes to staff
    (review, PROXY_BINDING_HELD) and certifies nobody; a certification opened after staff lifted the lock is
    decided as usual."""
    _, number, name = new_elder(ctx)
    op = verified_operator(client, ctx)
    b = active_binding(client, op, number, name)
    opened = [_opened(client, op, b["binding_id"]) for _ in range(3)]
    tokens = {x["session_id"]: x["token"] for x in opened}
    flagged, sibling, after_unlock = (x["session_id"] for x in opened)
    for sid in (flagged, sibling, after_unlock):
        _queued(ctx, sid)
    _policy_says(ctx, {flagged: OPERATOR_FACE})

    assert _decide(ctx, flagged).decision == "reject"
    row = factories.update(ctx, ProxyBinding, b["binding_id"])
    assert row.flagged and row.locked

    s = _decide(ctx, sibling)
    assert (s.decision, s.reasons) == ("review", ["PROXY_BINDING_HELD"])
    assert s.result is not None and s.result["decision"] == "review" and s.result["reasons"] == ["PROXY_BINDING_HELD"]
    assert _certified(ctx, sibling) == 0
    res = client.get(f"/api/v1/sessions/{sibling}/result", headers={"Authorization": f"Bearer {tokens[sibling]}"})
    assert res.json()["decision"] == "review" and res.json()["result"]["decision"] == "review"

    r = client.post(f"{P}/bindings/{b['binding_id']}/unlock", json={"staff_id": "s9"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    s = _decide(ctx, after_unlock)  # queued before the flag: staff lifting the lock did not look at it
    assert (s.decision, s.reasons) == ("review", ["PROXY_BINDING_HELD"]) and _certified(ctx, after_unlock) == 0

    fresh = _open(client, op, b["binding_id"])  # opened after staff looked: the flag is on record, not a hold
    _queued(ctx, fresh)
    assert _decide(ctx, fresh).decision == "accept" and _certified(ctx, fresh) == 1
    with ctx.db() as db:
        held = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.certification.held")).all()
        assert sorted(e.detail["session"] for e in held) == sorted([sibling, after_unlock])


def _pg_relative(ctx: ServiceContext, channel_id: str) -> ProxyOperator:
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", channel_id, "test").operator
        number = factories.id_number(region="110101")
        operators.mark_verified(op, ctx.keyring.id_hash(number), number[:4] + "**", "李建国")
        db.flush()
        db.expunge(op)
        return op


def _pg_elder(ctx: ServiceContext) -> tuple[Beneficiary, str]:
    with ctx.db() as db:
        number = factories.id_number(region="110101")
        elder = factories.beneficiary(db, ctx.keyring, id_number=number)
        db.expunge(elder)
        return elder, number


def _pg_binding(ctx: ServiceContext, op: ProxyOperator, elder: Beneficiary, number: str, consent: bool) -> str:
    with ctx.db() as db:
        me = db.get(ProxyOperator, op.id)
        assert me is not None
        row = bindings.bind(db, ctx, me, elder.name, number, "child")
        if consent:
            assert bindings.record_consent(db, row, ConsentMethod.STAFF_APPROVAL, "s0", "test") is None
        return row.id


def _pg_session(ctx: ServiceContext, op: ProxyOperator, binding_id: str, kind: str) -> str:
    with ctx.db() as db:
        me, row = db.get(ProxyOperator, op.id), db.get(ProxyBinding, binding_id)
        assert me is not None and row is not None
        opener = sessions.open_certification if kind == "certification" else sessions.open_consent
        return opener(db, ctx, me, row).session.id


@pytest.fixture
def pg(pg_ctx: ServiceContext) -> Iterator[ServiceContext]:  # noqa: F811
    yield pg_ctx


def test_a_sibling_decided_while_the_flag_commits_waits_and_is_held(pg: ServiceContext) -> None:
    """PostgreSQL: the flagging decision holds the relative's and the binding's rows, uncommitted, when the
    sibling's accept is applied. Before: the sibling waited, then certified the elder all the same. Now it waits,
    reads the flag and goes to staff."""
    ctx = pg
    elder, number = _pg_elder(ctx)
    op = _pg_relative(ctx, "son")
    binding_id = _pg_binding(ctx, op, elder, number, consent=True)
    sibling = _pg_session(ctx, op, binding_id, "certification")
    _queued(ctx, sibling)
    _policy_says(ctx, {})
    first = ctx.session_factory()
    try:  # as `hooks.on_decided` flags: the operator, then the binding
        first.get(ProxyOperator, op.id, with_for_update=True)
        row = first.get(ProxyBinding, binding_id, with_for_update=True)
        assert row is not None
        row.flagged = row.locked = True
        first.flush()
        t, out = started(lambda: _decide(ctx, sibling).decision)
        assert until(lambda: lock_waits(ctx) > 0)
        first.commit()
    finally:
        first.close()
    t.join(30)
    assert out == ["review"] and _certified(ctx, sibling) == 0


# --- 2. The elder's consent video against full relative slots ------------------------------------------------


def test_a_consent_video_is_not_opened_when_the_elders_relatives_are_full(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The elder had one relative when two more bound (waiting for consent); staff approved one of them. Before:
    the other's consent video was opened, filmed, and reported accepted while the binding stayed pending. Now the
    route says so before anyone films (409, the reason in Chinese)."""
    ext, number, name = new_elder(ctx)
    active_binding(client, verified_operator(client, ctx), number, name)
    op, other = verified_operator(client, ctx), verified_operator(client, ctx)
    pending, theirs = (bind(client, who, number, name).json() for who in (op, other))
    assert pending["status"] == theirs["status"] == "pending_consent"
    assert staff_consent(client, theirs["binding_id"]).json()["status"] == "active"
    r = client.post(f"{P}/bindings/{pending['binding_id']}/consent", json={}, headers=bearer(op["token"]))
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "PROXY_ELDER_SLOTS_FULL"
    assert r.json()["error"]["message"] == (
        "老人已同意的代办亲属人数已满,本次确认不能生效;请先由其中一位亲属解除绑定,再请老人录像确认"
    )
    with ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.consent.refused")).all()
        assert [(e.target, e.detail["reason"]) for e in refused] == [(ext, "PROXY_ELDER_SLOTS_FULL")]
        assert db.scalar(select(func.count()).select_from(CertSession).where(CertSession.channel == "proxy")) == 0
    assert factories.update(ctx, ProxyBinding, pending["binding_id"]).status == BindingStatus.PENDING_CONSENT


def test_a_consent_video_decided_once_the_slots_filled_is_not_reported_accepted(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The third relative's consent video was opened while a slot was free; staff approved another relative
    before it was decided. Before: the video was `accept` and the binding stayed pending. Now it is rejected
    with the reason (no failure on the binding's record, the binding still waiting for a free slot)."""
    _, number, name = new_elder(ctx)
    active_binding(client, verified_operator(client, ctx), number, name)
    op, other = verified_operator(client, ctx), verified_operator(client, ctx)
    mine, theirs = (bind(client, who, number, name).json() for who in (op, other))
    sid = _open(client, op, mine["binding_id"], "consent")
    _queued(ctx, sid)
    assert staff_consent(client, theirs["binding_id"]).json()["status"] == "active"
    _policy_says(ctx, {})
    s = _decide(ctx, sid)
    assert (s.decision, s.reasons) == ("reject", ["PROXY_ELDER_SLOTS_FULL"])
    row = factories.update(ctx, ProxyBinding, mine["binding_id"])
    assert (row.status, row.consent_at, row.failures) == (BindingStatus.PENDING_CONSENT, None, 0)


def test_two_consent_videos_for_the_last_slot_at_once(pg: ServiceContext) -> None:
    """PostgreSQL: staff approve one relative (the elder's row held, uncommitted) while the other relative's
    consent video for the elder's last slot is applied. Before: the video waited, then read `accept` with nothing
    recorded. Now it waits and is rejected PROXY_ELDER_SLOTS_FULL."""
    ctx = pg
    elder, number = _pg_elder(ctx)
    _pg_binding(ctx, _pg_relative(ctx, "daughter"), elder, number, consent=True)
    op, other = _pg_relative(ctx, "son"), _pg_relative(ctx, "nephew")
    mine = _pg_binding(ctx, op, elder, number, consent=False)
    theirs = _pg_binding(ctx, other, elder, number, consent=False)
    sid = _pg_session(ctx, op, mine, "consent")
    _queued(ctx, sid)
    _policy_says(ctx, {})
    first = ctx.session_factory()
    try:
        row = bindings.staff_binding(first, theirs)
        assert bindings.record_consent(first, row, ConsentMethod.STAFF_APPROVAL, "s1", "test") is None
        first.flush()
        t, out = started(lambda: _decide(ctx, sid).reasons)
        assert until(lambda: lock_waits(ctx) > 0)
        first.commit()
    finally:
        first.close()
    t.join(30)
    assert out == [["PROXY_ELDER_SLOTS_FULL"]]
    assert factories.update(ctx, ProxyBinding, mine).status == BindingStatus.PENDING_CONSENT


# --- 3. A death told by the consent route ----------------------------------------------------------------------


def _dies(ctx: ServiceContext, number: str) -> None:
    with ctx.db() as db:
        row = db.scalar(select(Beneficiary).where(Beneficiary.id_hash == ctx.keyring.id_hash(number)))
        assert row is not None
        row.status = "deceased"


def test_the_consent_route_tells_a_stranger_nothing_of_a_death(client: TestClient, ctx: ServiceContext) -> None:
    """A stranger who bound an elder by name and number (nobody consented) asks for the consent video after the
    elder is recorded dead. Before: 409 BENEFICIARY_DECEASED "该人员已登记死亡". Now the answer of an unknown
    binding and of another relative's binding (404 PROXY_NOT_BOUND, the same body); the reason audited. A relative
    the elder accepted is told of the death (the binding's view, a certification refused 409)."""
    ext, number, name = new_elder(ctx)
    stranger, relative = verified_operator(client, ctx), verified_operator(client, ctx)
    pending = bind(client, stranger, number, name).json()
    accepted = active_binding(client, relative, number, name)
    _dies(ctx, number)

    h = bearer(stranger["token"])
    dead = client.post(f"{P}/bindings/{pending['binding_id']}/consent", json={}, headers=h)
    unknown = client.post(f"{P}/bindings/no-such-binding/consent", json={}, headers=h)
    not_mine = client.post(f"{P}/bindings/{accepted['binding_id']}/consent", json={}, headers=h)
    assert dead.status_code == unknown.status_code == not_mine.status_code == 404, dead.text
    assert dead.json() == unknown.json() == not_mine.json()
    assert dead.json()["error"]["code"] == "PROXY_NOT_BOUND"
    with ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.consent.refused")).all()
        assert [(e.target, e.detail["reason"]) for e in refused] == [(ext, "deceased")]

    mine = client.get(f"{P}/bindings", headers=bearer(relative["token"])).json()
    assert [x["elder_deceased"] for x in mine] == [True]
    r = client.post(f"{P}/bindings/{accepted['binding_id']}/sessions", headers=bearer(relative["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED"


def test_a_consent_video_whose_elder_died_meanwhile_tells_no_death(client: TestClient, ctx: ServiceContext) -> None:
    """The elder is recorded dead while the stranger's consent video waits. Before: its result said
    BENEFICIARY_DECEASED. Now it is rejected as not bound, like any consent that can give nothing."""
    _, number, name = new_elder(ctx)
    stranger = verified_operator(client, ctx)
    pending = bind(client, stranger, number, name).json()
    sid = _open(client, stranger, pending["binding_id"], "consent")
    _queued(ctx, sid)
    _dies(ctx, number)
    s = _decide(ctx, sid)  # the real proxy policy
    assert s.decision == "reject" and "BENEFICIARY_DECEASED" not in s.reasons and "PROXY_NOT_BOUND" in s.reasons
    assert s.result is not None and "BENEFICIARY_DECEASED" not in str(s.result)
    assert factories.update(ctx, ProxyBinding, pending["binding_id"]).failures == 0
