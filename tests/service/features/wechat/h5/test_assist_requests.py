"""Applying for a manual review or a home visit from the H5 pages, through the real app (SQLite file, the fake
WeChat server): the request is stored for the person the WeChat user certifies (never for a session of another
user), one open request per person, shown to staff in the console with the alternative-certification form
pre-filled, and closing it sends exactly one template message to whoever asked."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import service.schema
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import (
    AuditEntry,
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionState,
    utcnow,
)
from service.certification.retention import purge_media, storage_upkeep
from service.certification.sessions import create_session
from service.features.console.auth import Role, hash_password
from service.features.console.models import AltCertification, AssistRequest, ConsoleAlert, StaffUser
from service.features.proxy.models import BindingStatus, ProxyOperator, ProxySession, ProxySessionKind
from service.features.proxy.operators import H5_CLIENT, channel_hashes
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink, WeChatUser
from service.features.wechat.notify import run_notifications
from service.features.wechat.runtime import build_channel
from service.infra.clock import local_today
from service.infra.config import WeChatTemplate
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import values, zh

OPENID, OTHER = "openid-assist-1", "openid-assist-2"
NAME = "李秀英"
PASSWORD = "correct-horse-battery"
TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class World:
    client: TestClient
    ctx: ServiceContext
    fake: FakeWeChat
    beneficiary_id: int


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with FakeWeChat() as fake:
        settings = wechat_settings(fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'h5.db'}", failures_per_day=3)
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with TestClient(create_app(ctx=ctx)) as client:
            with ctx.db() as db:
                bid = factories.beneficiary(db, ctx.keyring, name=NAME, id_number=factories.id_number(seq=7)).id
                db.add(
                    StaffUser(
                        username="rev1",
                        display_name="审核员甲",
                        role=Role.REVIEWER.value,
                        password_hash=hash_password(PASSWORD),
                    )
                )
            client.cookies.set(identity.COOKIE, identity.mint(ctx, OPENID))
            yield World(client, ctx, fake, bid)


def failed_session(
    w: World, openid: str = OPENID, channel: Channel = Channel.SELF, reason: str = "CHALLENGE_MISSING_ACTION"
) -> str:
    """A rejected self session of the test's beneficiary, opened from `openid`'s WeChat: its video stored, rejected
    for `reason` (by default one staff may overrule: the form offers a manual review of it, assist.offered_kinds)."""
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        s = create_session(db, w.ctx, b, channel, False, "test").session
        s.state, s.decision, s.reasons, s.decided_at = SessionState.DECIDED, "reject", [reason], utcnow()
        s.video_key = f"sessions/{s.id}/video.mp4"
        db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        return s.id


def form(w: World, path: str) -> tuple[str, str]:
    page = w.client.get(path)
    assert page.status_code == 200, page.text
    m = TOKEN_RE.search(page.text)
    assert m is not None, page.text
    return page.text, m.group(1)


def apply(w: World, session: str = "", **fields: str) -> tuple[int, str]:
    _, token = form(w, f"/h5/apply/{session}" if session else "/h5/apply")
    data = {"token": token, "session": session, "kind": "home_visit", "phone": "138 0013 8000", "note": "上午在家"}
    data.update(fields)
    r = w.client.post("/h5/apply", data=data)
    return r.status_code, r.text


def open_requests(w: World) -> list[AssistRequest]:
    with w.ctx.db() as db:
        rows = list(db.scalars(select(AssistRequest).where(AssistRequest.status == "open")))
        db.expunge_all()
        return rows


def test_a_request_from_a_failed_result_is_stored_and_audited(w: World) -> None:
    sid = failed_session(w)
    page, _ = form(w, f"/h5/apply/{sid}")
    assert f"为{NAME}" in page and 'name="id_number"' not in page  # the person comes from the session
    status, text = apply(w, sid, kind="manual_review")
    assert status == 200 and 'id="apply-done"' in text and "已提交" in text and "13800138000" in text
    [req] = open_requests(w)
    assert (req.beneficiary_id, req.kind, req.phone, req.note, req.openid, req.session_id, req.by_relative) == (
        w.beneficiary_id,
        "manual_review",
        "13800138000",
        "上午在家",
        OPENID,
        sid,
        False,
    )
    with w.ctx.db() as db:
        [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "assist.request")).all()
        assert entry.detail == {"request": req.id, "kind": "manual_review", "by_relative": False}


def test_one_open_request_per_person_and_requester(w: World) -> None:
    """A second request from the same WeChat user is not stored; another user's request for the same person is
    (a stranger who knows the name and number must not hold the pensioner's one request), and neither sees the
    other's."""
    sid = failed_session(w)
    assert apply(w, sid)[0] == 200
    # Opening the form again shows the open request instead of the form, and posting again stores nothing.
    page = w.client.get(f"/h5/apply/{sid}").text
    assert "申请已提交,正在办理" in page and 'id="apply-form"' not in page
    _, token = form(w, "/h5/apply")  # a form of this user, posted again for the same person: nothing new
    again = w.client.post(
        "/h5/apply", data={"token": token, "session": sid, "kind": "home_visit", "phone": "13800138000"}
    )
    assert again.status_code == 200 and "正在办理" in again.text and len(open_requests(w)) == 1
    # Another user (their own session of the same person) gets the form, not the first applicant's request.
    other = failed_session(w, OTHER)
    w.client.cookies.set(identity.COOKIE, identity.mint(w.ctx, OTHER))
    page = w.client.get(f"/h5/apply/{other}").text
    assert 'id="apply-form"' in page and "13800138000" not in page
    _, token = form(w, f"/h5/apply/{other}")
    data = {"token": token, "session": other, "kind": "manual_review", "phone": "13900139000"}
    r = w.client.post("/h5/apply", data=data)
    assert r.status_code == 200 and 'id="apply-done"' in r.text
    assert "13900139000" in r.text and "13800138000" not in r.text  # their own request, not the other's
    requests = open_requests(w)
    assert sorted(r.phone for r in requests) == ["13800138000", "13900139000"]  # staff see both
    assert {r.beneficiary_id for r in requests} == {w.beneficiary_id}


def test_a_session_of_another_wechat_user_is_refused(w: World) -> None:
    theirs = failed_session(w, OTHER)
    assert w.client.get(f"/h5/apply/{theirs}").status_code == 404
    _, token = form(w, "/h5/apply")  # a valid form token of this user, posted with someone else's session
    data = {"token": token, "session": theirs, "kind": "home_visit", "phone": "13800138000"}
    r = w.client.post("/h5/apply", data=data)
    assert r.status_code == 404 and "未找到认证记录" in r.text
    assert w.client.get(f"/h5/apply/{uuid.uuid4()}").status_code == 404
    assert open_requests(w) == []


def test_a_forged_form_token_and_a_bad_phone_are_refused(w: World) -> None:
    sid = failed_session(w)
    forged = {"token": "x" * 32, "session": sid, "kind": "home_visit", "phone": "13800138000"}
    r = w.client.post("/h5/apply", data=forged)
    assert r.status_code == 403
    status, text = apply(w, sid, phone="12345")
    assert status == 422 and "请填写正确的联系电话" in text and "12345" in text  # the form keeps what was typed
    status, text = apply(w, sid, kind="teleport")
    assert status == 422 and "请选择申请人工审核还是上门认证" in text
    assert open_requests(w) == []


def test_the_daily_limit_without_a_session_asks_for_name_and_number(w: World) -> None:
    """A first-time user stopped at the limit: the form asks who, with the same check as opening a session."""
    page, _ = form(w, "/h5/apply")
    assert 'name="id_number"' in page
    number = factories.id_number(seq=7)
    status, text = apply(w, name="王五", id_number=number)
    assert status == 404 and "姓名与身份证号不一致" in text
    status, text = apply(w, name=NAME, id_number=number)
    assert status == 200 and "已提交" in text
    assert [r.beneficiary_id for r in open_requests(w)] == [w.beneficiary_id]


WHO_RE = re.compile(r'id="apply-whom".*?</fieldset>', re.S)


def test_the_person_this_user_certifies_is_one_choice_without_a_session(w: World) -> None:
    """The plain form offers the person this WeChat user last opened a certification for as one choice the user
    makes, beside the name and number; left unchosen, nobody is picked for them."""
    with w.ctx.db() as db:
        db.add(WeChatUser(openid=OPENID, beneficiary_id=w.beneficiary_id))
    page, _ = form(w, "/h5/apply")
    whom = WHO_RE.search(page)
    assert whom is not None and f"为{NAME}" in whom.group(0) and 'name="id_number"' in page
    assert 'id="apply-who"' not in page  # nobody named as the one the form is for
    status, text = apply(w)  # the choice left out, nothing typed
    assert status == 404 and "姓名与身份证号不一致" in text and open_requests(w) == []
    status, text = apply(w, who="last")
    assert status == 200 and f"{NAME}的上门认证申请已提交" in text
    assert [r.beneficiary_id for r in open_requests(w)] == [w.beneficiary_id]


def _shared_phone(w: World) -> tuple[str, str]:
    """A couple on one phone (this test's openid), both pensioners; the husband opens his certification from it
    through the real route (so this openid's last person is him). Their ID numbers."""
    husband, wife = factories.id_number(seq=11), factories.id_number(seq=12)
    with w.ctx.db() as db:
        factories.beneficiary(db, w.ctx.keyring, name="王建国", id_number=husband)
        factories.beneficiary(db, w.ctx.keyring, name="张秀英", id_number=wife)
    r = w.client.post("/h5/api/sessions", json={"name": "王建国", "id_number": husband, "consent": True})
    assert r.status_code == 200, r.text
    return husband, wife


def _requested(w: World) -> list[tuple[str, str, str]]:
    with w.ctx.db() as db:
        rows = db.scalars(select(AssistRequest)).all()
        return [(db.get(Beneficiary, r.beneficiary_id).name, r.kind, r.note) for r in rows]  # type: ignore[union-attr]


def test_on_a_shared_phone_the_plain_form_files_for_whom_the_user_names(w: World) -> None:
    """Before: the wife at her daily limit opened /h5/apply (no session), read 为王建国(…)申请 with no name fields,
    and her home visit was filed for her husband, the last person this account opened a session for. The form
    now asks who: he is one choice, her name and number file it for her."""
    _, wife = _shared_phone(w)
    page, _ = form(w, "/h5/apply")
    assert 'id="apply-who"' not in page and 'name="name"' in page and 'name="id_number"' in page
    whom = WHO_RE.search(page)
    assert whom is not None and "为王建国" in whom.group(0) and 'value="other"' in whom.group(0)
    status, text = apply(w, who="other", name="张秀英", id_number=wife, note="我行动不便")
    assert status == 200 and "张秀英的上门认证申请已提交" in text, text
    status, text = apply(w, name="张秀英", id_number=wife)  # no choice made (no script): what was typed counts
    assert status == 200 and "张秀英的上门认证申请已提交" in text
    assert _requested(w) == [("张秀英", "home_visit", "我行动不便")]


def test_a_record_given_another_id_number_since_is_not_offered(w: World) -> None:
    """The roster gave the husband's record another ID number after this account's session of it: the record
    names another person now, whose name is not this account's to read (current_person.py)."""
    _shared_phone(w)
    with w.ctx.db() as db:
        husband = db.scalar(select(Beneficiary).where(Beneficiary.name == "王建国"))
        assert husband is not None
        husband.identity_since = utcnow() + dt.timedelta(seconds=1)
    page, _ = form(w, "/h5/apply")
    assert "王建国" not in page and 'id="apply-whom"' not in page


def test_a_widow_is_never_offered_her_late_husband(w: World) -> None:
    """Before: on her late husband's phone the form named him, and her post was answered 姓名与身份证号不一致,或不在
    本地待遇人员名册中 before she was asked her name. A person recorded deceased is never offered; even a
    hand-made choice of him files nothing for him."""
    _, wife = _shared_phone(w)
    with w.ctx.db() as db:
        husband = db.scalar(select(Beneficiary).where(Beneficiary.name == "王建国"))
        assert husband is not None
        husband.status = BeneficiaryStatus.DECEASED
    page, _ = form(w, "/h5/apply")
    assert "王建国" not in page and 'id="apply-whom"' not in page and 'name="id_number"' in page
    assert apply(w, who="last")[0] == 404
    status, text = apply(w, name="张秀英", id_number=wife)
    assert status == 200 and "张秀英的上门认证申请已提交" in text
    assert [name for name, _, _ in _requested(w)] == ["张秀英"]


def relative_session(w: World, status: str = BindingStatus.ACTIVE, kind: str = "certification") -> str:
    with w.ctx.db() as db:
        op, binding = factories.relative_binding(db, w.beneficiary_id, status)
    sid = failed_session(w, OPENID, Channel.PROXY)
    with w.ctx.db() as db:
        db.add(ProxySession(session_id=sid, kind=kind, operator_id=op.id, binding_id=binding.id))
    return sid


def test_a_relative_applies_for_the_bound_elder(w: World) -> None:
    sid = relative_session(w)
    status, text = apply(w, sid)
    assert status == 200 and "返回家人列表" in text
    [req] = open_requests(w)
    assert req.by_relative and req.beneficiary_id == w.beneficiary_id


@pytest.mark.parametrize(
    ("status", "kind"),
    [(BindingStatus.ENDED, "certification"), (BindingStatus.ACTIVE, ProxySessionKind.VERIFICATION.value)],
)
def test_an_ended_binding_or_the_relatives_own_check_is_refused(w: World, status: str, kind: str) -> None:
    assert w.client.get(f"/h5/apply/{relative_session(w, status, kind)}").status_code == 404


def console_login(client: TestClient) -> str:
    page = client.get("/console/login")
    m = CSRF_RE.search(page.text)
    assert m is not None
    r = client.post("/console/login", data={"username": "rev1", "password": PASSWORD, "csrf": m.group(1)})
    m = CSRF_RE.search(r.text)
    assert r.status_code == 200 and m is not None
    return m.group(1)


def test_staff_certify_from_the_request_and_the_citizen_gets_one_message(w: World) -> None:
    sid = failed_session(w)
    assert apply(w, sid)[0] == 200
    [req] = open_requests(w)
    staff = TestClient(w.client.app)
    csrf = console_login(staff)
    listing = staff.get("/console/requests")
    assert 'id="nav-requests"' in listing.text and "13800138000" in listing.text and "上门认证" in listing.text
    page = staff.get(f"/console/requests/{req.id}")
    assert page.status_code == 200
    # Pre-filled from the request: a home visit, the request's number in the evidence (its phone shown, not copied).
    assert re.search(r'value="home_visit" checked', page.text)
    assert f"依据公众号申请 #{req.id}(上门认证)。</textarea>" in page.text
    assert f"/console/cases/{sid}" in page.text  # the failed attempt, to look at
    today = local_today(w.ctx.settings)
    r = staff.post(
        f"/console/requests/{req.id}/certify",
        data={"csrf": csrf, "kind": "home_visit", "on_date": today.isoformat(), "evidence": "上门见到本人,核对身份证"},
    )
    assert r.status_code == 200 and "已办结" in r.text
    with w.ctx.db() as db:
        closed = db.get(AssistRequest, req.id)
        b = db.get(Beneficiary, w.beneficiary_id)
        assert closed is not None and b is not None and b.valid_until is not None
        assert (closed.status, closed.outcome) == ("closed", "certified")
        alt = db.scalar(select(AltCertification).where(AltCertification.beneficiary_id == b.id))
        assert alt is not None and alt.kind == "home_visit" and alt.evidence["request"] == req.id
        until = b.valid_until
    # Closing twice is refused, nothing certified twice.
    again = staff.post(f"/console/requests/{req.id}/close", data={"csrf": csrf, "reply": "x"})
    assert "该申请已办结" in again.text
    channel = build_channel(w.ctx.settings)
    assert channel is not None
    assert run_notifications(w.ctx, channel.api).sent >= 1
    mine = [m for m in w.fake.state.sent_templates if m["touser"] == OPENID and "申请" in m["data"]["first"]["value"]]
    assert len(mine) == 1 and mine[0]["template_id"] == "tpl-result"
    assert values(mine[0]) == {
        "first": f"{NAME}的上门认证申请已办结",
        "keyword1": NAME,
        "keyword2": "已完成认证",
        "keyword3": zh(local_today(w.ctx.settings)),
        "remark": f"本次认证有效期至{zh(until)}。",
    }
    assert run_notifications(w.ctx, channel.api).sent == 0  # once only


def test_staff_answer_without_certifying_and_the_reply_is_sent(w: World) -> None:
    assert apply(w, failed_session(w), kind="manual_review")[0] == 200
    [req] = open_requests(w)
    staff = TestClient(w.client.app)
    csrf = console_login(staff)
    r = staff.post(f"/console/requests/{req.id}/close", data={"csrf": csrf, "reply": " "})
    assert "请填写给申请人的答复" in r.text and len(open_requests(w)) == 1
    staff.post(f"/console/requests/{req.id}/close", data={"csrf": csrf, "reply": "视频清晰,请明天再试一次"})
    assert open_requests(w) == []
    channel = build_channel(w.ctx.settings)
    assert channel is not None
    run_notifications(w.ctx, channel.api)
    [msg] = [m for m in w.fake.state.sent_templates if "申请" in m["data"]["first"]["value"]]
    assert values(msg)["keyword2"] == "已处理" and values(msg)["remark"] == "工作人员答复:视频清晰,请明天再试一次"
    # A new request is possible once the first is closed.
    assert apply(w, failed_session(w))[0] == 200 and len(open_requests(w)) == 1


def test_a_long_staff_reply_reaches_the_person_on_the_page_the_notice_opens(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply of 26 characters (the console takes 100): the notice's 20-character key shows a fixed wording and the
    link opens the full reply, for the WeChat user who asked only (before: failed, 模板字段…限20个字, nobody told)."""
    keys = {"name1": "name", "phrase2": "state", "thing3": "next_step"}
    templates = {**w.ctx.settings.wechat.templates, "assist": WeChatTemplate(id="cat-assist", keys=keys)}
    monkeypatch.setattr(w.ctx.settings.wechat, "templates", templates)
    w.fake.state.template_keys["cat-assist"] = set(keys)
    assert apply(w, failed_session(w), kind="manual_review")[0] == 200
    [req] = open_requests(w)
    staff = TestClient(w.client.app)
    csrf = console_login(staff)
    reply = "视频不够清晰,请在光线充足处重录,或到社保窗口办理。"
    assert len(reply) == 26
    staff.post(f"/console/requests/{req.id}/close", data={"csrf": csrf, "reply": reply})
    channel = build_channel(w.ctx.settings)
    assert channel is not None
    run = run_notifications(w.ctx, channel.api)
    assert run.failed == 0  # the failed session's own result notice is sent too
    [msg] = [m for m in w.fake.state.delivered if m["template_id"] == "cat-assist"]
    shown = {k: str(v["value"]) for k, v in msg["data"].items()}
    assert msg["touser"] == OPENID and shown == {
        "name1": NAME,
        "phrase2": "已办结",
        "thing3": "工作人员已回复,请点击查看",
    }
    path = urlsplit(msg["url"]).path
    assert path == f"/h5/reply/{req.id}"
    page = w.client.get(path)
    assert page.status_code == 200 and reply in html.unescape(page.text)
    other = TestClient(w.client.app)  # another WeChat user: not theirs to read
    other.cookies.set(identity.COOKIE, identity.mint(w.ctx, OTHER))
    assert other.get(path).status_code == 404 and reply not in html.unescape(other.get(path).text)
    assert w.client.get(f"/h5/reply/{2**40}").status_code == 422  # no integer column holds it: never a 500
    # A short reply is shown itself, in full where it fits.
    assert apply(w, failed_session(w), kind="manual_review")[0] == 200
    [again] = open_requests(w)
    staff.post(f"/console/requests/{again.id}/close", data={"csrf": csrf, "reply": "视频清晰,请明天再试一次"})
    assert run_notifications(w.ctx, channel.api).failed == 0
    last = [m for m in w.fake.state.delivered if m["template_id"] == "cat-assist"][-1]
    assert last["data"]["thing3"]["value"] == "工作人员答复:视频清晰,请明天再试一次"


def test_dates_are_the_bureaus(w: World) -> None:
    assert local_today(w.ctx.settings, dt.datetime(2026, 12, 4, 23, 30, tzinfo=dt.UTC)) == dt.date(2026, 12, 5)


ERROR_RE = re.compile(r'id="apply-error"[^>]*>([^<]*)<')


def error_of(text: str) -> str | None:
    m = ERROR_RE.search(text)
    return m.group(1) if m else None


def test_a_form_error_reads_the_same_for_any_name_and_number(w: World) -> None:
    """The form is checked before the person is looked up: a bad kind or phone cannot tell whether a name and
    number belong together (it answered 422 for a match and 404 for a mismatch)."""
    number = factories.id_number(seq=7)
    for bad in ({"kind": "teleport"}, {"phone": "12345"}):
        right = apply(w, name=NAME, id_number=number, **bad)
        wrong = apply(w, name="王五", id_number=number, **bad)
        assert right[0] == wrong[0] == 422
        assert error_of(right[1]) == error_of(wrong[1]) is not None
    assert open_requests(w) == []


def test_a_deceased_person_reads_as_unknown_to_a_typed_request(w: World) -> None:
    """A typed name and number of a person recorded as deceased gets the unknown-person answer (the form must
    not reveal the roster); staff read the reason in the audit."""
    number = factories.id_number(seq=7)
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        b.status = BeneficiaryStatus.DECEASED
        external_id = b.external_id
    deceased = apply(w, name=NAME, id_number=number)
    unknown = apply(w, name="王五", id_number=number)
    assert deceased[0] == unknown[0] == 404
    assert error_of(deceased[1]) == error_of(unknown[1]) == "姓名与身份证号不一致,或不在本地待遇人员名册中"
    assert open_requests(w) == []
    with w.ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "assist.refused")).all()
        assert sorted((e.target, e.detail["reason"]) for e in refused) == [("-", "unknown"), (external_id, "deceased")]


def test_a_relative_of_a_deceased_elder_is_told_why(w: World) -> None:
    """Whoever is bound to the elder (or whose session the screen was about) may read the roster status."""
    sid = relative_session(w)
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        b.status = BeneficiaryStatus.DECEASED
    status, text = apply(w, sid)
    assert status == 409 and error_of(text) == "该人员已登记死亡,不能申请"


def _record_death(w: World) -> str:
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        b.status = BeneficiaryStatus.DECEASED
        return b.external_id


def _refused_as_unknown(w: World, status: int, text: str, external_id: str) -> None:
    assert status == 404 and error_of(text) == "姓名与身份证号不一致,或不在本地待遇人员名册中", text[-400:]
    assert open_requests(w) == []
    with w.ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "assist.refused")).all()
        assert [(e.target, e.detail["reason"]) for e in refused] == [(external_id, "deceased")]


def test_a_stranger_whose_binding_nobody_accepted_learns_nothing_of_a_death(w: World) -> None:
    """Whoever binds an elder by name and number holds a pending binding (and the elder's consent session) before
    anyone accepted them; the consent route tells them nothing of a death (Part T). The assistance form, reached
    from the binding or from its consent session, said "已登记死亡"."""
    sid = relative_session(w, BindingStatus.PENDING_CONSENT, ProxySessionKind.CONSENT.value)
    with w.ctx.db() as db:  # the relative's operator is this WeChat account's (the family pages' login)
        row = db.scalars(select(ProxySession).where(ProxySession.session_id == sid)).one()
        op = db.get(ProxyOperator, row.operator_id)
        assert op is not None
        op.channel_hash, op.client = channel_hashes(w.ctx, "wechat", OPENID)[0], H5_CLIENT
        binding = row.binding_id
    external_id = _record_death(w)
    _refused_as_unknown(w, *apply(w, sid), external_id)
    _, token = form(w, f"/h5/apply/binding/{binding}")
    r = w.client.post(
        "/h5/apply", data={"token": token, "binding": binding, "kind": "home_visit", "phone": "138 0013 8000"}
    )
    assert r.status_code == 404 and error_of(r.text) == "姓名与身份证号不一致,或不在本地待遇人员名册中"


def test_a_session_opened_by_typing_a_name_and_number_learns_nothing_of_a_death(w: World) -> None:
    """A self session is opened by anyone who types a name and number (a stranger's, never accepted): its screen's
    form told them of a death recorded since. The person's own account (a self certification of theirs accepted
    from it) is still told."""
    sid, accepted = failed_session(w), failed_session(w, "openid-own-account")
    external_id = _record_death(w)
    _refused_as_unknown(w, *apply(w, sid), external_id)
    with w.ctx.db() as db:  # this account certified the person once (their face matched): their own
        link = db.get(WeChatSessionLink, accepted)
        session = db.get(CertSession, accepted)
        assert link is not None and session is not None
        link.openid, session.decision = OPENID, "accept"
    status, text = apply(w, sid)
    assert status == 409 and error_of(text) == "该人员已登记死亡,不能申请"


def test_only_a_plain_form_post_is_taken(w: World) -> None:
    """The rate limiter reads the typed number from the page's plain form post; a multipart body would carry
    the same fields past the per-number limits."""
    _, token = form(w, "/h5/apply")
    fields = {"token": token, "kind": "home_visit", "phone": "13800138000", "name": NAME}
    multipart = {"id_number": (None, factories.id_number(seq=7))}
    r = w.client.post("/h5/apply", data=fields, files=multipart)
    assert r.status_code == 415
    assert open_requests(w) == []


def test_a_closed_requests_phone_and_note_are_erased_after_the_retention(w: World) -> None:
    """The daily upkeep erases the contact details of requests closed longer ago than the media retention; an
    open request and one closed recently keep theirs, and the request's outcome stays."""
    staff = TestClient(w.client.app)
    csrf = console_login(staff)
    closed = []
    for phone in ("138 0013 8000", "010-6512 3456"):  # one open request at a time: each is closed before the next
        assert apply(w, failed_session(w), kind="manual_review", phone=phone)[0] == 200
        [req] = open_requests(w)
        staff.post(f"/console/requests/{req.id}/close", data={"csrf": csrf, "reply": "已电话联系"})
        closed.append(req.id)
    old, recent = closed
    retention = w.ctx.settings.storage.retention_days
    with w.ctx.db() as db:
        row = db.get(AssistRequest, old)
        assert row is not None
        row.closed_at = utcnow() - dt.timedelta(days=retention + 1)
    assert apply(w, failed_session(w), kind="home_visit", phone="13900139000")[0] == 200  # still open
    counts = storage_upkeep(w.ctx)
    assert counts["assist_contacts_erased"] == 1
    with w.ctx.db() as db:
        rows = {r.id: r for r in db.scalars(select(AssistRequest))}
        assert (rows[old].phone, rows[old].note) == ("", "")
        assert (rows[old].status, rows[old].outcome) == ("closed", "answered")
        assert rows[recent].phone == "01065123456" and rows[recent].note
        assert [r.phone for r in rows.values() if r.status == "open"] == ["13900139000"]
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "retention.assist_contact")).all()
        assert [(e.actor, e.detail) for e in entries] == [("system", {"requests": 1})]
    assert storage_upkeep(w.ctx)["assist_contacts_erased"] == 0  # nothing left to erase


def test_no_copy_of_the_phone_outlives_the_requests_erasure(w: World) -> None:
    """Certify and close from the request's form as rendered, with the number typed into the note as well (a
    staff member noting the call): once the request's phone is erased, no copy is left in the certification's
    evidence or its second-supervisor alert, and the rest of the note stays."""
    assert apply(w, failed_session(w))[0] == 200
    [req] = open_requests(w)
    staff = TestClient(w.client.app)
    csrf = console_login(staff)
    page = staff.get(f"/console/requests/{req.id}").text
    found = re.search(r'name="evidence"[^>]*>([^<]*)</textarea>', page)
    assert found is not None
    note = html.unescape(found.group(1)) + "已致电 138-0013-8000 约定上门,见到本人"
    today = local_today(w.ctx.settings).isoformat()
    r = staff.post(
        f"/console/requests/{req.id}/certify",
        data={"csrf": csrf, "kind": "home_visit", "on_date": today, "evidence": note},
    )
    assert r.status_code == 200 and "已办结" in r.text
    days = w.ctx.settings.storage.retention_days + 1
    assert storage_upkeep(w.ctx, utcnow() + dt.timedelta(days=days))["assist_contacts_erased"] == 1
    with w.ctx.db() as db:
        alt = db.scalar(select(AltCertification).where(AltCertification.beneficiary_id == w.beneficiary_id))
        alerts = db.scalars(select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == w.beneficiary_id)).all()
        assert alt is not None and [a.kind for a in alerts] == ["staff_certified"]
        kept = [alt.evidence["note"], alerts[0].detail["note"]]
    for text in kept:
        digits = re.sub(r"\D", "", text)
        assert "13800138000" not in digits and f"依据公众号申请 #{req.id}(上门认证)。" in text
        assert "已致电 (联系电话已按期删除) 约定上门,见到本人" in text


def test_a_manual_review_of_a_video_already_purged_is_refused(w: World) -> None:
    """Before: the form stored a manual review (人工审核, 不用再拍) of a video the retention purge had deleted; staff
    found nothing to watch. Now it is refused in words and nothing stored; a home visit is still taken."""
    sid = failed_session(w)
    with w.ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        s.decided_at = utcnow() - dt.timedelta(days=w.ctx.settings.storage.retention_days + 2)
    assert purge_media(w.ctx) == 1
    status, text = apply(w, sid, kind="manual_review")
    assert (status, open_requests(w)) == (409, []), "a manual review of a deleted video was stored"
    assert "视频已过保存期限并已删除,无法人工审核" in html.unescape(text)
    status, _ = apply(w, sid)  # the home visit the refusal points to
    assert status == 200 and [r.kind for r in open_requests(w)] == ["home_visit"]


def test_a_manual_review_past_its_videos_hold_tells_the_person_the_video_went(w: World) -> None:
    """The form says how long the video is kept for the review; once a request staff left open is past that hold
    (console/assist_hold.py: the purge takes the video), its page no longer says 不用再拍视频 but that the video was
    deleted and staff arrange a visit. Before: 也不用再拍视频, for as long as the request stayed open."""
    sid = failed_session(w)
    hold = w.ctx.settings.storage.review_video_hold_days
    page, _ = form(w, f"/h5/apply/{sid}")
    assert f"视频保留到审核办结,最长自申请之日起 {hold} 天" in page
    status, text = apply(w, sid, kind="manual_review")
    assert status == 200 and "也不用再拍视频" in text and "apply-video-expired" not in text
    with w.ctx.db() as db:
        for req in db.scalars(select(AssistRequest)):
            req.created_at = utcnow() - dt.timedelta(days=hold)
    page = w.client.get(f"/h5/apply/{sid}").text
    assert 'id="apply-video-expired"' not in page  # past its hold, but not yet taken by the purge (Part DP)
    _taken_by_the_purge(w, sid)
    page = w.client.get(f"/h5/apply/{sid}").text
    assert 'id="apply-video-expired"' in page and "也不用再拍视频" not in page


def _taken_by_the_purge(w: World, sid: str) -> None:
    """Session `sid` decided past the retention period, and the daily purge run: its media are gone."""
    with w.ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        s.decided_at = utcnow() - dt.timedelta(days=w.ctx.settings.storage.retention_days + 2)
    purge_media(w.ctx)
    with w.ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.media_purged_at is not None


def _plain_manual_review(w: World) -> tuple[int, str]:
    """The plain form (no session named: the start page, the daily limit), the person typed."""
    return apply(w, "", kind="manual_review", who="", name=NAME, id_number=factories.id_number(seq=7))


def _offers_a_home_visit_only(w: World, sid: str) -> None:
    """The form for `sid` offers no 人工审核 and says why; a hand-made post of one is refused (409, in Chinese),
    nothing stored; the home visit is taken."""
    page, _ = form(w, f"/h5/apply/{sid}")
    assert 'value="manual_review"' not in page and 'id="apply-no-video"' in page, page
    status, text = apply(w, sid, kind="manual_review")
    assert status == 409 and "无法人工审核" in html.unescape(text) and "也不用再拍视频" not in text
    assert open_requests(w) == []
    assert apply(w, sid, kind="home_visit")[0] == 200


def test_a_session_without_a_video_offers_a_home_visit_not_a_manual_review(w: World) -> None:
    """The capture page's help where it cannot record under LIGHT_CHALLENGE enforce links the session in progress:
    it has no video. Before, the form offered and took 人工审核 (不用再拍): staff had nothing to watch (Part DP)."""
    w.ctx.settings.certification.light_challenge = "enforce"
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        sid = create_session(db, w.ctx, b, Channel.SELF, False, "test").session.id
        db.add(WeChatSessionLink(session_id=sid, openid=OPENID))
    _offers_a_home_visit_only(w, sid)


@pytest.mark.parametrize("reason", ["LIGHT_NOT_SEEN", "SPOOF_SUSPECTED"])
def test_a_reject_no_one_may_overrule_offers_a_home_visit_not_a_manual_review(w: World, reason: str) -> None:
    """A reject staff may never accept by watching the video (review.overrulable; the request page refuses it):
    before, the form offered 人工审核 (不用再拍) all the same, on the named session and on the plain form."""
    sid = failed_session(w, reason=reason)
    status, text = _plain_manual_review(w)
    assert status == 409 and "无法人工审核" in html.unescape(text) and open_requests(w) == []
    _offers_a_home_visit_only(w, sid)


def test_the_page_says_the_video_went_only_once_the_video_it_waits_on_is_purged(w: World) -> None:
    """A plain-form request waits on the person's latest machine reject (assist_video.video_of): one made after it
    was filed is kept for its own retention period. Before, the page said 视频已过保存期限并已删除 once the request's
    hold had ended, the video still there for staff to watch (Part DP)."""
    first = failed_session(w)
    assert _plain_manual_review(w)[0] == 200
    hold = w.ctx.settings.storage.review_video_hold_days
    with w.ctx.db() as db:
        for req in db.scalars(select(AssistRequest)):
            req.created_at = utcnow() - dt.timedelta(days=hold)
        s = db.get(CertSession, first)
        assert s is not None
        s.created_at = utcnow() - dt.timedelta(days=hold + 1)  # made before the request was filed
    _taken_by_the_purge(w, first)
    newer = failed_session(w)  # tried again since: the video the request now shows
    with w.ctx.db() as db:
        s = db.get(CertSession, newer)
        assert s is not None
        s.created_at = s.decided_at = utcnow() - dt.timedelta(days=10)
    purge_media(w.ctx)
    assert 'id="apply-video-expired"' not in w.client.get(f"/h5/apply/{newer}").text
    _taken_by_the_purge(w, newer)
    assert 'id="apply-video-expired"' in w.client.get(f"/h5/apply/{newer}").text
