"""A certification revoked gives back to staff the requests for a home visit or a manual review it answered
(assist.reopen_on_revocation, from the console's revocation and, through ctx.hooks.revocations, the operator API's).
Before, Part DI's rule closed every open request of the person when they were certified, and a revocation left them
closed: a bedridden pensioner whose home visit was recorded on the wrong record (错误受理) was told by the revocation's
notice to certify again, her request read 已办结, and staff owed her nothing until she filed anew. SQLite and
PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import assist
from service.features.console.alt_cert import certify_alternative
from service.features.console.models import AssistRequest
from service.infra.clock import local_today
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import login, revoke_by_two, revoke_form

OWN, DAUGHTER = "openid-own", "openid-daughter"
NOTE = "上门认证记录在同名的另一人名下，本人未被上门核实"


def _visited(ctx: ServiceContext) -> tuple[int, list[int], int]:
    """A person whose own and whose daughter's home-visit requests a home visit answered (recorded on the person
    page: both closed as certified): (person id, request ids, certification id)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="孙桂兰")
        rids = []
        for openid in (OWN, DAUGHTER):
            req = assist.submit(db, b, "home_visit", "13800138000", "卧床", openid, f"wechat:{openid}")
            db.flush()
            rids.append(req.id)
        alt = certify_alternative(db, ctx, b, "home_visit", local_today(ctx.settings), None, {"note": "上门"})
        cid = db.scalars(select(Certification.id).where(Certification.session_id == alt.session_id)).one()
        rows = db.scalars(select(AssistRequest).where(AssistRequest.id.in_(rids))).all()
        assert {(r.status, r.outcome) for r in rows} == {("closed", "certified")}
        return b.id, rids, cid


def _states(ctx: ServiceContext, rids: list[int]) -> list[tuple[str, str | None]]:
    with ctx.db() as db:
        rows = db.scalars(select(AssistRequest).where(AssistRequest.id.in_(rids)).order_by(AssistRequest.id)).all()
        return [(r.status, r.outcome) for r in rows]


@pytest.mark.parametrize(("reason", "reopened"), [("wrong_accept", True), ("impersonation", False)])
def test_a_revocation_from_the_console_reopens_the_requests_it_answered(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], reason: str, reopened: bool
) -> None:
    """错误受理: both requests open again, each requester's H5 form shows it (`open_request`), audited
    `assist.reopen`. 冒领: they stay closed (the requester may be whoever collected; the bureau's investigation
    decides what the family hears)."""
    bid, rids, cid = _visited(ctx)
    csrf = login(app_client, "sup1")
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    assert revoke_by_two(app_client, action, revoke_form(csrf, reason=reason, note=NOTE)).status_code == 200
    with ctx.db() as db:
        assert db.scalars(select(Certification.revoked_at).where(Certification.id == cid)).one() is not None
        entries = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "assist.reopen")).all()
        shown = [assist.open_request(db, bid, openid) for openid in (OWN, DAUGHTER)]
    if not reopened:
        assert _states(ctx, rids) == [("closed", "certified")] * 2 and entries == [] and shown == [None, None]
        return
    assert _states(ctx, rids) == [("open", None)] * 2
    assert [r.id if r is not None else None for r in shown] == rids
    assert sorted((e.actor, e.detail["request"], e.detail["certification"]) for e in entries) == [
        ("staff:sup2", rids[0], cid),
        ("staff:sup2", rids[1], cid),
    ]
    page = app_client.get(f"/console/requests/{rids[0]}").text
    assert "已办结" not in page


def test_a_revocation_through_the_operator_api_reopens_them_but_not_one_filed_anew(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The same rule through the operator API's revocation (ctx.hooks.revocations). The person had filed a new
    request after the visit: that one stays her open request, her old one stays closed (one open request per
    person and requester); the daughter's is open again."""
    bid, rids, cid = _visited(ctx)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        anew = assist.submit(db, b, "home_visit", "13800138000", "仍卧床", OWN, f"wechat:{OWN}").id
    body = {"certification_id": cid, "reason": "other", "note": NOTE}
    r = app_client.post(
        "/api/v1/certifications/revoke", json=body, headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 200, r.text
    assert _states(ctx, [*rids, anew]) == [("closed", "certified"), ("open", None), ("open", None)]
    with ctx.db() as db:
        entries = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "assist.reopen")).all()
        assert [e.detail["request"] for e in entries] == [rids[1]]
