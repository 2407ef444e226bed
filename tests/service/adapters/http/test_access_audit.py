"""Every access audited, through the API (docs/security.md, Part Y): a look-up that finds nobody, a channel key
refused an operator's route, the elder's certification history read by a client, and no clear ID number in the
entries themselves (typed by an API client as a reviewer's or a staff member's id, or in a path)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, CertSession, utcnow
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import P, bind, new_elder, staff_consent, verified_operator


def in_review(ctx: ServiceContext, sid: str) -> None:
    """The session as the worker leaves a borderline case: decided, `review`."""
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        row.state, row.decision, row.decided_at, row.result = "decided", "review", utcnow(), {"decision": "review"}


def entries(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def everything_audited(ctx: ServiceContext) -> str:
    with ctx.db() as db:
        return " ".join(f"{e.actor} {e.target} {e.detail}" for e in db.scalars(select(AuditEntry)))


def test_a_look_up_that_finds_nobody_is_audited_without_the_number(client: TestClient, ctx: ServiceContext) -> None:
    """A client asking "is this number a pensioner?" of many numbers left no trace: only hits were audited."""
    unknown = factories.id_number(region="110105", seq=91)
    assert client.post("/api/v1/beneficiaries/lookup", json={"id_number": unknown}).status_code == 404
    assert client.get("/api/v1/beneficiaries", params={"id_number": unknown}).status_code == 404  # deprecated GET
    assert client.get("/api/v1/beneficiaries/EXT-NOBODY").status_code == 404
    typo = unknown[:17]  # a number one digit short, asked as an external id: most of a number, masked
    assert client.get(f"/api/v1/beneficiaries/{typo}").status_code == 404

    misses = entries(ctx, "beneficiary.miss")
    assert [e.detail for e in misses] == [
        {"by": "id_number"},
        {"by": "id_number"},
        {"by": "external_id", "asked": "EXT-NOBODY"},
        {"by": "external_id", "asked": typo[:4] + "*********" + typo[-4:]},
    ]
    assert all(e.actor.startswith("api:") and e.target == "-" for e in misses)
    assert unknown not in everything_audited(ctx) and typo not in everything_audited(ctx)


def test_opening_a_session_for_nobody_or_for_the_dead_is_audited_as_a_miss(
    client: TestClient, ctx: ServiceContext
) -> None:
    """POST /api/v1/sessions answers "is this a pensioner?" (404 against 201) and "is this person recorded dead?"
    (409 BENEFICIARY_DECEASED): both left no entry, while the look-ups' same miss is audited."""
    unknown = factories.id_number(region="110105", seq=93)
    dead_number = factories.id_number(region="110105", seq=94)
    with ctx.db() as db:
        dead = factories.beneficiary(db, ctx.keyring, id_number=dead_number, status="deceased").external_id
        db.commit()

    r = client.post("/api/v1/sessions", json={"id_number": unknown})
    assert r.status_code == 404 and r.json()["error"]["code"] == "BENEFICIARY_UNKNOWN"
    assert client.post("/api/v1/sessions", json={"external_id": "EXT-NOBODY"}).status_code == 404
    r = client.post("/api/v1/sessions", json={"id_number": dead_number})
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED"

    misses = entries(ctx, "beneficiary.miss")
    assert [(e.target, e.detail) for e in misses] == [
        ("-", {"by": "id_number"}),
        ("-", {"by": "external_id", "asked": "EXT-NOBODY"}),
        (dead, {"by": "id_number", "refused": "BENEFICIARY_DECEASED"}),
    ]
    assert all(e.actor.startswith("api:") for e in misses)
    assert unknown not in everything_audited(ctx) and dead_number not in everything_audited(ctx)
    with ctx.db() as db:
        assert db.scalars(select(CertSession)).first() is None  # refused: no session opened


def test_a_channel_key_refused_an_operators_route_is_audited(client: TestClient, ctx: ServiceContext) -> None:
    """The lists of overdue and suspended people, the payment exports: a channel key's attempt was a bare 403."""
    for path in ("/api/v1/lists/overdue", "/api/v1/exports/suspensions.csv"):
        r = client.get(path)
        assert r.status_code == 403 and r.json()["error"]["code"] == "ADMIN_KEY_REQUIRED"
    number = factories.id_number(region="110105", seq=92)
    assert client.get(f"/api/v1/lists/{number}").status_code == 403  # the caller's text in the path
    denied = entries(ctx, "access.denied")
    assert [(e.target, e.detail) for e in denied] == [
        ("/api/v1/lists/overdue", {"method": "GET", "need": "operator key"}),
        ("/api/v1/exports/suspensions.csv", {"method": "GET", "need": "operator key"}),
        (f"/api/v1/lists/{number[:4]}**********{number[-4:]}", {"method": "GET", "need": "operator key"}),
    ]
    assert all(e.actor.startswith("api:") for e in denied)
    assert client.get("/api/v1/lists/overdue", headers=ADMIN).status_code == 200
    assert len(entries(ctx, "access.denied")) == 3  # the operator's own read is a read, not a refusal


def test_reading_an_elders_certification_history_is_audited(client: TestClient, ctx: ServiceContext) -> None:
    """Who certified the elder, the relatives' names and the decisions, to any API key: read without a trace."""
    external_id, _, _ = new_elder(ctx)
    r = client.get(f"{P}/elders/{external_id}/history")
    assert r.status_code == 200, r.text
    reads = entries(ctx, "proxy.history.read")
    assert [(e.target, e.detail) for e in reads] == [(external_id, {"entries": 0})]
    assert reads[0].actor.startswith("api:")
    assert client.get(f"{P}/elders/EXT-NOBODY/history").status_code == 404
    assert [e.detail for e in entries(ctx, "beneficiary.miss")] == [{"by": "external_id", "asked": "EXT-NOBODY"}]


def test_a_number_typed_as_a_reviewer_or_staff_id_is_masked_in_the_audit(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Bureaus identify staff by their ID number: the API's review `reviewer` and a staff consent's `staff_id` went
    into the audit trail (details and actor) in clear."""
    staff_number = factories.id_number(region="420106", seq=93)
    masked = staff_number[:4] + "**********" + staff_number[-4:]
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number(region="110105", seq=94)))
    in_review(ctx, s["session_id"])
    settle = {"decision": "reject", "reviewer": staff_number}
    assert client.post(f"/api/v1/sessions/{s['session_id']}/review", json=settle, headers=ADMIN).status_code == 200
    assert [e.detail for e in entries(ctx, "session.review")] == [{"decision": "reject", "reviewer": masked}]

    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    r = bind(client, op, number, name)
    assert r.status_code == 201, r.text
    assert staff_consent(client, r.json()["binding_id"], staff_id=staff_number).status_code == 200
    consent = entries(ctx, "proxy.consent")
    assert len(consent) == 1 and consent[0].actor.endswith(":staff:" + masked)
    assert consent[0].detail["ref"] == masked
    assert staff_number not in everything_audited(ctx)
