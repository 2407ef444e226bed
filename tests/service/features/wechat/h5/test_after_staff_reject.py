"""What the H5 pages offer once staff have rejected a certification (the review the citizen could ask for has just
happened): a home visit or the counter, never "申请人工审核" again; the pensioner's own page and a relative's
proxy page alike, and the form the link opens."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from service.certification import catalog, review
from service.certification.models import Beneficiary, CertSession, Channel, utcnow
from service.features.console.models import AssistRequest
from service.features.proxy.models import ProxySession
from service.features.wechat.models import WeChatSessionLink, WeChatUser
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App

TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')


def _decided(app: App, decision: str, proxy: bool) -> str:
    """A certification of the app's person linked to the logged-in openid (their own, or a relative's proxy
    certification), the machine sent to review and staff then decided `decision` (review.settle, the console's
    and the operator API's path); "review": still waiting for staff."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        s = factories.session_row(b.id, state="decided", decision="review", decided_at=utcnow())
        s.channel, s.reasons = (Channel.PROXY if proxy else Channel.SELF), ["FACE_MISMATCH"]
        s.video_key = f"sessions/{s.id}/video"  # a video to review (assist_video.reviewable)
        db.add(s)
        db.flush()
        if proxy:
            op, binding = factories.relative_binding(db, b.id)
            db.add(ProxySession(session_id=s.id, kind="certification", operator_id=op.id, binding_id=binding.id))
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        db.flush()
        if decision != "review":
            row = db.get(CertSession, s.id)
            assert row is not None
            review.settle(db, app.ctx, row, decision, "reviewer-1", "人像不符", "console:reviewer-1", case_checked=True)
        db.commit()
        return s.id


def _machine_rejected(app: App) -> str:
    """A self certification of the app's person, linked to the logged-in openid, the machine rejected (no staff
    decision) for a reason staff may overrule, its video stored (a manual review of it is offered:
    assist_video.reviewable)."""
    with app.ctx.db() as db:
        s = factories.session_row(app.beneficiary_id, state="decided", decision="reject", decided_at=utcnow())
        s.reasons, s.video_key = ["CHALLENGE_MISSING_ACTION"], f"sessions/{s.id}/video"
        db.add(s)
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        db.commit()
        return s.id


@pytest.mark.parametrize("proxy", [False, True], ids=["own", "relative"])
def test_a_staff_rejected_result_offers_a_home_visit_not_another_review(app: App, proxy: bool) -> None:
    """After a staff reject the result page's help block offered "申请人工审核或上门认证" (the review that had just
    happened); it now offers the counter and a home visit, and says why."""
    page = app.client.get(f"/h5/result/{_decided(app, 'reject', proxy)}")
    assert page.status_code == 200, page.text
    assert "经工作人员审核,本次认证未通过" in page.text
    assert "人工审核" not in page.text.replace("经工作人员审核", "")
    assert 'id="after-review"' in page.text and "社保经办窗口" in page.text
    assert ">申请上门认证</a>" in page.text


def test_a_machine_reject_still_offers_the_manual_review(app: App) -> None:
    """Before anyone reviewed it, a reject keeps the manual review on offer (the staff reject is what changes)."""
    sid = _machine_rejected(app)
    page = app.client.get(f"/h5/result/{sid}").text
    assert ">申请人工审核或上门认证</a>" in page and 'id="after-review"' not in page


@pytest.mark.parametrize("proxy", [False, True], ids=["own", "relative"])
def test_the_form_after_a_staff_reject_offers_only_the_home_visit(app: App, proxy: bool) -> None:
    """The form the link opens offered "人工审核:工作人员查看已录制的视频" for the video staff had just rejected."""
    sid = _decided(app, "reject", proxy)
    form = app.client.get(f"/h5/apply/{sid}")
    assert form.status_code == 200, form.text
    assert 'value="manual_review"' not in form.text and 'value="home_visit" checked' in form.text
    assert "<h1>申请上门认证</h1>" in form.text
    waiting = app.client.get(f"/h5/apply/{_decided(app, 'review', proxy)}").text
    assert 'value="manual_review"' in waiting


@pytest.mark.parametrize("proxy", [False, True], ids=["own", "relative"])
def test_a_crafted_manual_review_of_a_staff_rejected_session_is_refused(app: App, proxy: bool) -> None:
    """The form no longer offers 人工审核 after a staff reject, but a hand-made post asking for it for the same
    session was stored and re-queued the rejected video for review. It is refused now (409, said in Chinese), and
    nothing is stored; the home visit the form offers is still taken."""
    sid = _decided(app, "reject", proxy)
    token = TOKEN_RE.search(app.client.get(f"/h5/apply/{sid}").text)
    assert token is not None
    data = {"token": token.group(1), "session": sid, "kind": "manual_review", "phone": "13800138000"}
    r = app.client.post("/h5/apply", data=data)
    assert r.status_code == 409, r.text
    assert catalog.message_zh("ASSIST_REVIEWED") in r.text and "上门认证" in r.text
    with app.ctx.db() as db:
        assert db.scalars(select(AssistRequest)).all() == []
    r = app.client.post("/h5/apply", data={**data, "kind": "home_visit"})
    assert r.status_code == 200 and 'id="apply-done"' in r.text
    with app.ctx.db() as db:
        assert [(q.kind, q.session_id) for q in db.scalars(select(AssistRequest))] == [("home_visit", sid)]


@pytest.mark.parametrize("form", ["plain", "typed"])
def test_a_crafted_manual_review_that_names_no_session_is_refused_after_a_staff_reject(app: App, form: str) -> None:
    """The same hand-made post with the session field left out (the plain form: the person this WeChat user
    certifies, chosen on it; or the name and number typed) was stored as a manual review of the person, whose
    request page in the console lists the video staff had just rejected. The person's latest attempt is what a
    manual review would look at: rejected by staff, it is refused (409) and nothing is stored; the home visit is
    taken."""
    _decided(app, "reject", False)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        typed = {"name": b.name, "id_number": app.ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number")}
        if form == "plain":
            db.add(WeChatUser(openid=OPENID, beneficiary_id=b.id))
            db.commit()
    page = app.client.get("/h5/apply").text
    # Whom the plain form is for is not known until the user says (the person last certified is one choice).
    assert 'value="manual_review"' in page and 'name="id_number"' in page
    token = TOKEN_RE.search(page)
    assert token is not None
    data = {
        "token": token.group(1),
        "kind": "manual_review",
        "phone": "13800138000",
        **(typed if form == "typed" else {"who": "last"}),
    }
    r = app.client.post("/h5/apply", data=data)
    assert r.status_code == 409 and catalog.message_zh("ASSIST_REVIEWED") in r.text, r.text
    with app.ctx.db() as db:
        assert db.scalars(select(AssistRequest)).all() == []
    r = app.client.post("/h5/apply", data={**data, "kind": "home_visit"})
    assert r.status_code == 200 and 'id="apply-done"' in r.text, r.text
    with app.ctx.db() as db:
        assert [(q.kind, q.session_id) for q in db.scalars(select(AssistRequest))] == [("home_visit", None)]


def test_a_later_machine_reject_offers_the_manual_review_again(app: App) -> None:
    """Guard: the person tried again after the staff reject and the machine rejected that attempt: a manual review
    of it is still taken, from its own screen and from the plain form."""
    _decided(app, "reject", False)
    sid = _machine_rejected(app)
    page = app.client.get(f"/h5/apply/{sid}").text
    assert 'value="manual_review"' in page
    token = TOKEN_RE.search(page)
    assert token is not None
    data = {"token": token.group(1), "session": sid, "kind": "manual_review", "phone": "13800138000"}
    r = app.client.post("/h5/apply", data=data)
    assert r.status_code == 200 and 'id="apply-done"' in r.text, r.text


def test_a_manual_review_of_a_session_still_waiting_for_staff_is_taken(app: App) -> None:
    """Guard: only a staff reject closes the manual review; a case still waiting for staff may still ask for it."""
    sid = _decided(app, "review", False)
    token = TOKEN_RE.search(app.client.get(f"/h5/apply/{sid}").text)
    assert token is not None
    data = {"token": token.group(1), "session": sid, "kind": "manual_review", "phone": "13800138000"}
    r = app.client.post("/h5/apply", data=data)
    assert r.status_code == 200 and 'id="apply-done"' in r.text, r.text
