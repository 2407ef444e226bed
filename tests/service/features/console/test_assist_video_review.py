"""A request for a manual review (人工审核) settled from the request page by accepting the video the machine
rejected (视频审核通过, service/features/console/assist_video.py). Before, the H5 form promised
"工作人员查看已录制的视频并与您联系,不用再拍", but a machine reject could never be accepted: the case page refused it
(该案件已处理) and the request page took only a counter or home-visit record. Now staff accept it through the review
core (review.settle): a certification, no AltCertification row and no staff_certified alert, the request closed as
certified, the person's message queued; only for reasons a person may overrule, never for who the person is, and
only where one person may accept (review.accept_needs_second). SQLite and PostgreSQL (the `ctx` fixture's
backends)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import assist
from service.features.console.models import (
    AltCertification,
    AssistRequest,
    ConsoleAlert,
    ReviewDecision,
    StaffUser,
)
from service.features.wechat.models import WeChatNotice, WeChatSessionLink
from tests.service import factories
from tests.service.features.console.conftest import login

OPENID = "openid-stroke-patient"
NOTE = "视频中为本人，右侧偏瘫无法向左转头，其余动作完成"


def _rejected(ctx: ServiceContext, reasons: list[str], face_score: bool = True) -> tuple[int, str, int]:
    """A person (济南), their video rejected by the machine for `reasons` from their own WeChat, and their request for
    a manual review of it from the H5 form: (person id, session id, request id). `face_score`: the machine compared
    the face (the card matched) before the reject, as pipelines.decision.rules records it."""
    result = factories.review_result(decision="reject", reasons=reasons, scores={"card_similarity": 0.81})
    if not face_score:
        result = {"decision": "reject", "reasons": reasons, "scores": {}, "thresholds": {}}
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="王秀兰")
        s = factories.review_session(b.id, decision="reject", reasons=reasons, result=result)
        db.add(s)
        db.flush()
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        req = assist.submit(db, b, "manual_review", "13800138000", "中风后头不能左转", OPENID, "wechat:x", s.id)
        db.flush()
        return b.id, s.id, req.id


def _accept(client: TestClient, csrf: str, rid: int, sid: str, note: str = NOTE) -> str:
    r = client.post(f"/console/requests/{rid}/overrule", data={"csrf": csrf, "session": sid, "note": note})
    return f"{r.status_code} {r.text}"


def test_a_video_rejected_for_a_missing_action_is_accepted_from_the_request(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    csrf = login(app_client, "rev1")  # a reviewer, as for the review queue
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' in page and f'name="session" value="{sid}"' in page and "未完成指定动作" in page
    refused = _accept(app_client, csrf, rid, sid, note=" ")  # the note is required, as on the other closing forms
    assert refused.startswith("409") and "请填写审核意见" in refused
    assert _accept(app_client, csrf, rid, sid).startswith("200")
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        s = db.get(CertSession, sid)
        b = db.get(Beneficiary, bid)
        assert req is not None and s is not None and b is not None
        assert (req.status, req.outcome, req.closed_by) == ("closed", "certified", staff_users["rev1"])
        assert s.decision == "accept" and s.result is not None
        assert s.result["review"] == {
            "machine_decision": "reject",
            "decision": "accept",
            "reviewer": "rev1",
            "note": NOTE,
        }
        cert = db.scalars(select(Certification).where(Certification.session_id == sid)).one()
        assert b.valid_until == cert.valid_until and cert.code
        # As any reviewed case: no alternative certification and no second supervisor's check of one.
        assert db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == bid)).all() == []
        assert db.scalars(select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == bid)).all() == []
        [decision] = db.scalars(select(ReviewDecision).where(ReviewDecision.session_id == sid)).all()
        assert (decision.user_id, decision.stage, decision.decision) == (staff_users["rev1"], "final", "accept")
        [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "session.review")).all()
        assert entry.actor == "staff:rev1" and entry.detail["overrules"] == "reject"
        trail = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "case.decide.final")).all()
        assert [(e.target, e.detail["request"]) for e in trail] == [(sid, rid)]
        # One event, one message: the staff decision's (人工审核结果 已通过, the new date), not the request's
        # closing too (test_an_accept_from_the_request_page_tells_each_account_once).
        notices = db.execute(select(WeChatNotice.kind, WeChatNotice.ref, WeChatNotice.openid)).all()
        assert sorted(tuple(n) for n in notices) == [("review", sid, OPENID)]
    again = _accept(app_client, csrf, rid, sid)  # a second click: the request is closed, nothing done twice
    assert "该申请已办结" in again
    with ctx.db() as db:
        assert len(db.scalars(select(Certification).where(Certification.beneficiary_id == bid)).all()) == 1


def test_an_accept_from_the_request_page_tells_each_account_once(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: the person who filed the request from the WeChat account that sent the video got two messages for
    the one accept, the staff decision (人工审核结果：已通过，有效期至…) and the request's closing (人工审核申请已办结：
    已完成认证，有效期至…). Now that account reads the decision only; the daughter's own request for the same person,
    closed by the certification, still tells her (her account sent no video)."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        daughter = assist.submit(db, b, "home_visit", "13900139000", "母亲中风", "openid-daughter", "wechat:d")
        db.flush()
        other = daughter.id
    csrf = login(app_client, "rev1")
    assert _accept(app_client, csrf, rid, sid).startswith("200")
    with ctx.db() as db:
        notices = db.execute(select(WeChatNotice.kind, WeChatNotice.ref, WeChatNotice.openid)).all()
        assert sorted(tuple(n) for n in notices) == [("assist", str(other), "openid-daughter"), ("review", sid, OPENID)]
        closed = db.scalars(select(AssistRequest.status).where(AssistRequest.id.in_((rid, other)))).all()
        assert closed == ["closed", "closed"]


@pytest.mark.parametrize(
    ("reasons", "shown"),
    [
        (["BENEFICIARY_DECEASED"], "名册登记已死亡"),
        (["CHALLENGE_MISSING_ACTION", "FACE_MISMATCH"], "人脸与证件照/模板不一致"),
        (["CHALLENGE_MISSING_ACTION", "IDENTITY_CHANGED"], "视频录制后名册变更了该档案的身份证号"),
        (["SPOOF_RIGID_MOTION"], "疑似照片/屏幕翻拍"),
        (["ID_NUMBER_MISMATCH"], "证件号码与名册人员不符"),
    ],
)
def test_a_video_rejected_for_who_it_shows_is_refused(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], reasons: list[str], shown: str
) -> None:
    """Whose face, card or record it is stays the machine's (and the counter's): refused on the page and when
    posted anyway, with the reason in words; nothing certified, the request still open for a home visit."""
    bid, sid, rid = _rejected(ctx, reasons)
    csrf = login(app_client, "sup1")
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' not in page and "不能凭查看视频改判" in page
    answer = _accept(app_client, csrf, rid, sid)
    assert answer.startswith("409") and "视频审核未保存" in answer and "不能凭查看视频改判" in answer
    assert shown in re.sub(r"<[^>]+>", "", answer)
    _nothing_done(ctx, bid, sid, rid)


def test_an_accept_that_takes_two_people_is_refused(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A reject whose decision recorded no face comparison: one person's look would be the only face check
    (review.accept_needs_second), refused here as the core refuses it to any caller but the review queue."""
    bid, sid, rid = _rejected(ctx, ["CAPTURE_TOO_DARK"], face_score=False)
    csrf = login(app_client, "sup1")
    assert "须两人复核" in app_client.get(f"/console/requests/{rid}").text
    answer = _accept(app_client, csrf, rid, sid)
    assert answer.startswith("409") and "须两人复核" in answer and "未经机器人脸比对" in answer
    _nothing_done(ctx, bid, sid, rid)


def test_out_of_scope_or_without_the_pages_form_nothing_is_accepted(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The request page's rules: a reviewer scoped to another region reads the request as missing (audited), a
    post without the page's CSRF token or without a login is refused; and a video other than the one the page
    showed (a newer attempt since) is not accepted."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_WRONG_ORDER"])
    factories.update(ctx, StaffUser, staff_users["rev2"], scope=["4201"])  # 武汉市: the person is in 济南
    outsider = TestClient(app_client.app)
    csrf = login(outsider, "rev2")
    assert outsider.get(f"/console/requests/{rid}").status_code == 404
    r = outsider.post(f"/console/requests/{rid}/overrule", data={"csrf": csrf, "session": sid, "note": NOTE})
    assert r.status_code == 200 and r.url.path == "/console/requests"
    with ctx.db() as db:
        denied = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "scope.denied")).all()
        assert {e.actor for e in denied} == {"staff:rev2"}
    anonymous = TestClient(app_client.app)
    r = anonymous.post(f"/console/requests/{rid}/overrule", data={"csrf": "x", "session": sid, "note": NOTE})
    assert r.status_code == 401 and 'name="password"' in r.text  # the login form, nothing saved
    csrf = login(app_client, "rev1")
    assert _accept(app_client, "stale-token", rid, sid).startswith("403")
    answer = _accept(app_client, csrf, rid, "another-session-id")
    assert answer.startswith("409") and "已有变化" in answer
    _nothing_done(ctx, bid, sid, rid)
    assert _accept(app_client, csrf, rid, sid).startswith("200")  # in scope, the form as shown: accepted


def _nothing_done(ctx: ServiceContext, bid: int, sid: str, rid: int) -> None:
    with ctx.db() as db:
        req, s = db.get(AssistRequest, rid), db.get(CertSession, sid)
        assert req is not None and s is not None
        assert req.status == "open" and s.decision == "reject" and "review" not in (s.result or {})
        assert db.scalars(select(Certification).where(Certification.beneficiary_id == bid)).all() == []
        assert db.scalars(select(ReviewDecision).where(ReviewDecision.session_id == sid)).all() == []
