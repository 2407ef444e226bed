"""A certification of the person answers their open requests for a home visit or a manual review, however it was
made (assist.close_on_certification, called by processing.accept_session through ctx.hooks.certified). Before, only
staff closing a request from its own page did: a bedridden pensioner certified at the counter on the person page
kept reading "申请已提交,正在办理" on the H5 form, and the request left open a year later refused the one she filed on
her last valid day (docs/security.md Part DC's shelter ignores a request filed before the last certification): she
was suspended. SQLite and PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import assist
from service.features.console.models import AssistRequest
from service.features.wechat.models import WeChatNotice, WeChatSessionLink
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import api_settle, login

OWN, DAUGHTER = "openid-own", "openid-daughter"


def _requests_of(ctx: ServiceContext, **person: object) -> tuple[int, list[int]]:
    """A person and two open home-visit requests for them from the H5 form (their own and their daughter's):
    (person id, request ids)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, **person)
        ids = []
        for openid in (OWN, DAUGHTER):
            req = assist.submit(db, b, "home_visit", "13800138000", "卧床", openid, f"wechat:{openid}")
            db.flush()
            ids.append(req.id)
        return b.id, ids


def _closed_by_certification(ctx: ServiceContext, bid: int, rids: list[int]) -> None:
    """Every request closed as certified by the service's rule, each requester told once, none open for the H5
    form to show."""
    with ctx.db() as db:
        rows = db.scalars(select(AssistRequest).where(AssistRequest.id.in_(rids)).order_by(AssistRequest.id)).all()
        assert [(r.status, r.outcome, r.closed_by) for r in rows] == [("closed", "certified", None)] * 2
        assert [assist.open_request(db, bid, openid) for openid in (OWN, DAUGHTER)] == [None, None]
        notices = db.execute(select(WeChatNotice.ref, WeChatNotice.openid).where(WeChatNotice.kind == "assist"))
        assert sorted((int(ref), openid) for ref, openid in notices) == [(rids[0], OWN), (rids[1], DAUGHTER)]
        closings = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "assist.close")).all()
        assert sorted((e.actor, e.detail["request"], e.detail["outcome"]) for e in closings) == [
            ("system", rids[0], "certified"),
            ("system", rids[1], "certified"),
        ]


def test_a_counter_certification_on_the_person_page_closes_the_open_requests(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, rids = _requests_of(ctx)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    stamp = re.search(r'name="identity_stamp" value="([^"]*)"', page)
    token = re.search(r'name="form_token" value="([^"]*)"', page)
    assert stamp is not None and token is not None
    form = {
        "csrf": csrf,
        "kind": "counter",
        "on_date": local_today(ctx.settings).isoformat(),
        "evidence": "女儿陪同到柜台，见到本人，核对身份证",
        "form_token": token.group(1),
        "identity_stamp": stamp.group(1),
    }
    assert app_client.post(f"/console/beneficiaries/{bid}/certify", data=form).status_code == 200
    _closed_by_certification(ctx, bid, rids)
    assert "已办结" in app_client.get(f"/console/requests/{rids[0]}").text


def test_a_video_accepted_closes_the_open_requests(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The same rule for a video: here a case the operator API's reviewer accepts (review.settle)."""
    bid, rids = _requests_of(ctx)
    with ctx.db() as db:
        s = factories.review_session(bid)
        db.add(s)
        db.flush()
        sid = s.id
    assert api_settle(app_client, sid, "accept") == (200, "")
    _closed_by_certification(ctx, bid, rids)


def test_a_request_answered_without_a_certification_stays_answered(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Only open requests are closed: one staff already answered keeps its outcome and its one message."""
    bid, rids = _requests_of(ctx)
    csrf = login(app_client, "rev1")
    answered = app_client.post(f"/console/requests/{rids[0]}/close", data={"csrf": csrf, "reply": "请到柜台办理"})
    assert answered.status_code == 200
    with ctx.db() as db:
        s = factories.review_session(bid)
        db.add(s)
        db.flush()
        sid = s.id
    assert api_settle(app_client, sid, "accept") == (200, "")
    with ctx.db() as db:
        rows = db.scalars(select(AssistRequest).where(AssistRequest.id.in_(rids)).order_by(AssistRequest.id)).all()
        assert [(r.outcome, r.outcome_note) for r in rows] == [("answered", "请到柜台办理"), ("certified", None)]
        notices = db.scalars(select(WeChatNotice.ref).where(WeChatNotice.kind == "assist")).all()
        assert sorted(int(ref) for ref in notices) == rids


def test_the_account_that_sent_the_accepted_video_is_told_once(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The person's own video, sent from their account (a review case the operator API accepts): their account is
    told by the decision's message alone (已通过, the new date), not a second time by the closing of their own
    request; the daughter's request, from her account, is closed with its message. Before: two messages to the
    person for the one certification."""
    bid, rids = _requests_of(ctx)
    with ctx.db() as db:
        s = factories.review_session(bid)
        db.add(s)
        db.flush()
        db.add(WeChatSessionLink(session_id=s.id, openid=OWN))
        sid = s.id
    assert api_settle(app_client, sid, "accept") == (200, "")
    with ctx.db() as db:
        rows = db.scalars(select(AssistRequest).where(AssistRequest.id.in_(rids)).order_by(AssistRequest.id)).all()
        assert [(r.status, r.outcome) for r in rows] == [("closed", "certified")] * 2
        notices = db.execute(select(WeChatNotice.kind, WeChatNotice.ref, WeChatNotice.openid)).all()
        assert sorted(tuple(n) for n in notices) == [("assist", str(rids[1]), DAUGHTER), ("review", sid, OWN)]
