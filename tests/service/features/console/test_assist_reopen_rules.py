"""Which requests a revoked certification gives back to staff, and how their next closing is told
(assist.reopen_on_revocation, notice_queue.assist_ref; docs/security.md Part DM). Before: a reopened request's
second closing recorded no message (its notice's ref, the request id, was taken by the first); a later revocation
of another certification reopened the request a 冒领 certification had closed, and the impostor's request kept the
person from the daily run's suspension; a relative whose proxy certification was revoked as 错误受理 (binding
locked, told nothing) had their own request reopened; revoking a certification of the record's previous ID-number
holder reopened that holder's request on the new person's record. SQLite and PostgreSQL (the `ctx` fixture's
backends)."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, utcnow
from service.certification.processing import accept_session
from service.features.console import assist
from service.features.console.alt_cert import certify_alternative
from service.features.console.models import AssistRequest
from service.features.proxy.models import ProxyBinding, ProxySession, ProxySessionKind
from service.features.wechat.models import WeChatNotice, WeChatSessionLink
from service.features.wechat.notice_message import compose
from service.infra.clock import local_today
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import api_settle, csrf_of, login, revoke_by_two, revoke_form

OWN, DAUGHTER, NEPHEW, SON = "openid-own", "openid-daughter", "openid-nephew", "openid-son"
OLD_HOLDER = "openid-previous-holder"


def _revoke(client: TestClient, cid: int, reason: str, note: str = "认证记录在同名的另一人名下") -> dict[str, object]:
    """The operator API's revocation (the hooks reopen the requests): its answer."""
    body = {"certification_id": cid, "reason": reason, "note": note}
    r = client.post("/api/v1/certifications/revoke", json=body, headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()
    return answer


def _certified(ctx: ServiceContext, bid: int, kind: str = "home_visit") -> int:
    """A counter or home-visit certification recorded on the person page today (it closes the open requests): its
    certification id."""
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        alt = certify_alternative(db, ctx, b, kind, local_today(ctx.settings), None, {"note": "核实本人"})
        return db.scalars(select(Certification.id).where(Certification.session_id == alt.session_id)).one()


def _requests(ctx: ServiceContext, rids: list[int]) -> list[tuple[str, str | None]]:
    with ctx.db() as db:
        rows = db.scalars(select(AssistRequest).where(AssistRequest.id.in_(rids)).order_by(AssistRequest.id)).all()
        return [(r.status, r.outcome) for r in rows]


def _visited_daughter(ctx: ServiceContext) -> tuple[int, int, int]:
    """A daughter's home-visit request for her mother, closed by a home visit recorded on the person page:
    (person id, request id, certification id)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="孙桂兰")
        req = assist.submit(db, b, "home_visit", "13800138000", "卧床", DAUGHTER, f"wechat:{DAUGHTER}")
        db.flush()
        bid, rid = b.id, req.id
    return bid, rid, _certified(ctx, bid)


def _assist_notices(ctx: ServiceContext, today: dt.date) -> list[tuple[str, str, str | None]]:
    """Each `assist` notice (ref, openid) with what it would say now (its status field; None: cancelled)."""
    with ctx.db() as db:
        rows = db.scalars(select(WeChatNotice).where(WeChatNotice.kind == "assist").order_by(WeChatNotice.id)).all()
        out = []
        for n in rows:
            message = compose(db, ctx, n, today)
            out.append((n.ref, n.openid, str(message.fields["status"]) if message is not None else None))
        return out


def test_a_reopened_request_answered_again_tells_the_requester(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The visit recorded on the wrong record is revoked (错误受理), the daughter's request reopens and staff answer
    it: she gets a second `assist` notice (its own ref), with the reply, the first one having been sent."""
    today = local_today(ctx.settings)
    _, rid, cid = _visited_daughter(ctx)
    with ctx.db() as db:
        first = db.scalars(select(WeChatNotice).where(WeChatNotice.kind == "assist")).one()
        first.sent_at = utcnow()
    _revoke(app_client, cid, "wrong_accept")
    assert _requests(ctx, [rid]) == [("open", None)]
    login(app_client, "rev1")
    page = app_client.get(f"/console/requests/{rid}").text
    r = app_client.post(f"/console/requests/{rid}/close", data={"csrf": csrf_of(page), "reply": "本周三下午再次上门"})
    assert r.status_code == 200
    assert _requests(ctx, [rid]) == [("closed", "answered")]
    told = _assist_notices(ctx, today)
    assert [(ref, openid) for ref, openid, _ in told] == [(str(rid), DAUGHTER), (f"{rid}:2", DAUGHTER)]
    assert told[1][2] == "已处理"
    with ctx.db() as db:
        second = db.scalars(select(WeChatNotice).where(WeChatNotice.ref == f"{rid}:2")).one()
        message = compose(db, ctx, second, today)
        assert message is not None and "本周三下午再次上门" in str(message.fields["next_step"])


def test_a_reopened_request_certified_again_tells_the_requester_once(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The same request certified again from its page (the real home visit): a second notice, 已完成认证; the first
    closing's notice, still waiting (quiet hours), is no longer sent (it would tell the same closing twice)."""
    today = local_today(ctx.settings)
    _, rid, cid = _visited_daughter(ctx)
    _revoke(app_client, cid, "other")
    login(app_client, "rev1")
    page = app_client.get(f"/console/requests/{rid}").text
    stamp = re.search(r'name="identity_stamp" value="([^"]*)"', page)
    assert stamp is not None
    form = {
        "csrf": csrf_of(page),
        "kind": "home_visit",
        "on_date": today.isoformat(),
        "evidence": "二次上门，见到本人，核对身份证",
        "identity_stamp": stamp.group(1),
    }
    assert app_client.post(f"/console/requests/{rid}/certify", data=form).status_code == 200
    assert _requests(ctx, [rid]) == [("closed", "certified")]
    assert _assist_notices(ctx, today) == [(str(rid), DAUGHTER, None), (f"{rid}:2", DAUGHTER, "已完成认证")]


def _nephews_request_impersonated(client: TestClient, ctx: ServiceContext) -> tuple[int, int]:
    """A nephew's manual-review request for his uncle, filed in time (ten days ago, the validity lapsed three days
    ago), closed by his video's accept, which is then revoked as 冒领: (person id, request id)."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        b = factories.beneficiary(
            db,
            ctx.keyring,
            name="王德明",
            valid_until=today - dt.timedelta(days=3),
            last_certified_on=today - dt.timedelta(days=368),
        )
        req = assist.submit(db, b, "manual_review", "13800138000", "老人动作做不了", NEPHEW, f"wechat:{NEPHEW}")
        db.flush()
        req.created_at = utcnow() - dt.timedelta(days=10)
        s = factories.review_session(b.id)
        db.add(s)
        db.flush()
        db.add(WeChatSessionLink(session_id=s.id, openid=NEPHEW))
        bid, rid, sid = b.id, req.id, s.id
    assert api_settle(client, sid, "accept") == (200, "")
    with ctx.db() as db:
        cid = db.scalars(select(Certification.id).where(Certification.session_id == sid)).one()
    _revoke(client, cid, "impersonation", "侄子持老人照片认证，老人已卧床不起")
    assert _requests(ctx, [rid]) == [("closed", "certified")]
    return bid, rid


def test_a_later_revocation_leaves_the_request_a_certification_revoked_as_impersonation_closed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A counter certification recorded on the same record in error, revoked later (错误受理): the nephew's request
    stays closed, and the daily run suspends the person, as without that second revocation."""
    bid, rid = _nephews_request_impersonated(app_client, ctx)
    _revoke(app_client, _certified(ctx, bid, "counter"), "wrong_accept")
    assert _requests(ctx, [rid]) == [("closed", "certified")]
    with ctx.db() as db:
        assert assist.open_request(db, bid, NEPHEW) is None
    r = app_client.post("/api/v1/cycle/run", headers=ADMIN, params={"force": "true"})
    assert r.status_code == 200, r.text
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None and b.status == "suspended"


def test_a_revocation_reopens_only_the_requests_its_own_certification_closed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A home visit closes the daughter's request; a counter certification is recorded after it. Revoking the visit
    leaves the request closed (the counter's answers it); revoking the counter's later leaves it closed too: the
    counter's certification closed no request."""
    bid, rid, visit = _visited_daughter(ctx)
    counter = _certified(ctx, bid, "counter")
    _revoke(app_client, visit, "wrong_accept")
    assert _requests(ctx, [rid]) == [("closed", "certified")]
    _revoke(app_client, counter, "other")
    assert _requests(ctx, [rid]) == [("closed", "certified")]


def test_a_relatives_revoked_proxy_certification_reopens_the_others_request_not_theirs(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A son's proxy video closed his request and the elder's own; revoked as 错误受理 by two supervisors, his binding
    is locked and he is told nothing (relatives_told.py): his request stays closed, the elder's is open again."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring, name="李淑珍")
        op, binding = factories.relative_binding(db, elder.id)
        rids = []
        for openid, by_relative in ((OWN, False), (SON, True)):
            actor = f"wechat:{openid}"
            req = assist.submit(
                db, elder, "manual_review", "13800138000", "转不了头", openid, actor, by_relative=by_relative
            )
            db.flush()
            rids.append(req.id)
        s = factories.session_row(elder.id, channel="proxy", state="decided", decision="accept", decided_at=utcnow())
        db.add(s)
        db.flush()
        kind = ProxySessionKind.CERTIFICATION.value
        db.add(ProxySession(session_id=s.id, kind=kind, operator_id=op.id, binding_id=binding.id))
        db.add(WeChatSessionLink(session_id=s.id, openid=SON))
        db.flush()
        accept_session(db, ctx, s, elder, today, None)
        cid = db.scalars(select(Certification.id).where(Certification.session_id == s.id)).one()
        bid, binding_id = elder.id, binding.id
    assert _requests(ctx, rids) == [("closed", "certified")] * 2
    csrf = login(app_client, "sup1")
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    form = revoke_form(csrf, reason="wrong_accept", note="视频中的人不是本人，复核时发现")
    assert revoke_by_two(app_client, action, form).status_code == 200
    with ctx.db() as db:
        locked = db.get(ProxyBinding, binding_id)
        assert locked is not None and locked.locked
        assert assist.open_request(db, bid, SON) is None
    assert _requests(ctx, rids) == [("open", None), ("closed", "certified")]


def test_revoking_the_previous_id_holders_certification_reopens_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The previous holder's request was closed by their own video's accept; the roster then gave the record
    another person's number and name. Revoking that certification (it counted for nobody) reopens nothing."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="赵建国")
        req = assist.submit(db, b, "manual_review", "13800138000", "动作识别不了", OLD_HOLDER, f"wechat:{OLD_HOLDER}")
        db.flush()
        req.created_at = utcnow() - dt.timedelta(days=41)
        s = factories.review_session(b.id, created_at=utcnow() - dt.timedelta(days=40))
        db.add(s)
        db.flush()
        db.add(WeChatSessionLink(session_id=s.id, openid=OLD_HOLDER))
        bid, sid, rid = b.id, s.id, req.id
    assert api_settle(app_client, sid, "accept") == (200, "")
    with ctx.db() as db:
        cid = db.scalars(select(Certification.id).where(Certification.session_id == sid)).one()
        changed = db.get(Beneficiary, bid)
        assert changed is not None
        changed.identity_since, changed.name = utcnow(), "钱新华"
    assert _revoke(app_client, cid, "other", "记录更正")["counted"] is False
    assert _requests(ctx, [rid]) == [("closed", "certified")]


def test_a_revocation_reopens_the_present_persons_request_not_the_previous_holders(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The previous holder's request left open when the roster gave the record another person's number; the new
    person files their own; a home visit of the new person closes both. Revoked (it counted): the new person's
    request is open again, the previous holder's stays closed."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="赵建国")
        old = assist.submit(db, b, "home_visit", "13800138000", "卧床", OLD_HOLDER, f"wechat:{OLD_HOLDER}")
        db.flush()
        old.created_at = utcnow() - dt.timedelta(days=41)
        b.identity_since, b.name = utcnow() - dt.timedelta(days=1), "钱新华"
        new = assist.submit(db, b, "home_visit", "13900139000", "行动不便", OWN, f"wechat:{OWN}")
        db.flush()
        bid, rids = b.id, [old.id, new.id]
    cid = _certified(ctx, bid)
    assert _requests(ctx, rids) == [("closed", "certified")] * 2
    assert _revoke(app_client, cid, "wrong_accept")["counted"] is True
    assert _requests(ctx, rids) == [("closed", "certified"), ("open", None)]


def _closed_on_its_page(client: TestClient, ctx: ServiceContext, how: str) -> tuple[int, int]:
    """A daughter's request closed from its page: by accepting her mother's video the machine rejected (视频审核通过,
    the video sent from the mother's own account) or by recording a home visit (记录认证并办结): (request id, the
    certification's id)."""
    reasons = ["CHALLENGE_MISSING_ACTION"]
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="王秀兰")
        result = factories.review_result(decision="reject", reasons=reasons, scores={"card_similarity": 0.81})
        s = factories.review_session(b.id, decision="reject", reasons=reasons, result=result)
        db.add(s)
        db.flush()
        db.add(WeChatSessionLink(session_id=s.id, openid=OWN))
        kind = "manual_review" if how == "video" else "home_visit"
        actor = f"wechat:{DAUGHTER}"
        req = assist.submit(db, b, kind, "13800138000", "母亲中风", DAUGHTER, actor, session_id=s.id, by_relative=True)
        db.flush()
        rid, sid = req.id, s.id
    csrf = login(client, "rev1")
    page = client.get(f"/console/requests/{rid}").text
    if how == "video":
        form = {"csrf": csrf, "session": sid, "note": "视频中为本人，右侧偏瘫无法向左转头"}
        assert client.post(f"/console/requests/{rid}/overrule", data=form).status_code == 200
    else:
        stamp = re.search(r'name="identity_stamp" value="([^"]*)"', page)
        assert stamp is not None
        form = {"csrf": csrf, "kind": "home_visit", "on_date": local_today(ctx.settings).isoformat()}
        form |= {"evidence": "上门见到本人", "identity_stamp": stamp.group(1)}
        assert client.post(f"/console/requests/{rid}/certify", data=form).status_code == 200
    with ctx.db() as db:
        certified = select(Certification.id).join(Beneficiary).where(Beneficiary.name == "王秀兰")
        return rid, db.scalars(certified).one()


@pytest.mark.parametrize("how", ["video", "visit"])
def test_a_request_closed_on_its_page_is_reopened_when_that_certification_is_revoked(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], how: str
) -> None:
    """Both closings on the request page record which certification closed the request (`assist.closed_by`: the
    video's `case.decide.final` entry, the home visit's evidence): its revocation reopens it."""
    rid, cid = _closed_on_its_page(app_client, ctx, how)
    assert _requests(ctx, [rid]) == [("closed", "certified")]
    _revoke(app_client, cid, "wrong_accept")
    assert _requests(ctx, [rid]) == [("open", None)]
