"""A reviewer's decision that is not saved says so, and keeps what they typed (docs/security.md): sent
after the login idled out (the login page says it and logs in back to the case, never off the console), after a
colleague took the lapsed claim over (named, the reason kept), from a page opened before a newer login (the case
again with the decision and reason, no "CSRF"), or a second time (their own decision, not a colleague's). The
holder is told when their claim lapses, and 下一件 takes a case nobody holds before a colleague's lapsed claim."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from service.features.console.models import ReviewClaim, ReviewDecision, StaffSession
from tests.service import factories
from tests.service.features.console.conftest import (
    PASSWORD,
    api_settle,
    certified_at_counter,
    csrf_of,
    login,
    new_client,
)
from tests.service.features.console.test_case_held import _review_case

REASON = "已电话联系本人女儿，核实老人仍健在，光线较暗导致活体分数偏低。"


# What a browser sends with a form posted from one of the console's own pages (web.same_origin).
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def _decide(client: TestClient, sid: str, csrf: str, decision: str = "retry") -> tuple[int, str]:
    form = {"csrf": csrf, "decision": decision, "reason": REASON}
    r = client.post(f"/console/cases/{sid}/decide", data=form, headers=SAME_ORIGIN)
    return r.status_code, r.text


def _claimed(client: TestClient, ctx: ServiceContext, username: str) -> tuple[str, str]:
    sid = _review_case(ctx, channel="self")
    csrf = login(client, username)
    assert client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code == 200
    return sid, csrf


def _decisions(ctx: ServiceContext, sid: str) -> list[str]:
    with ctx.db() as db:
        return list(db.scalars(select(ReviewDecision.decision).where(ReviewDecision.session_id == sid)))


def test_a_decision_sent_after_the_login_idled_out_says_so_and_logs_in_back_to_the_case(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a bare redirect to a login page that said nothing, and the login led to the queue."""
    sid, csrf = _claimed(app_client, ctx, "rev1")
    with ctx.db() as db:  # 16 minutes of typing (the idle timeout is 15)
        db.execute(update(StaffSession).values(last_seen=utcnow() - dt.timedelta(minutes=16)))
    status, page = _decide(app_client, sid, csrf)
    assert status == 401 and "登录已超时，刚才提交的内容未保存" in page
    assert f'name="next" value="/cases/{sid}"' in page and _decisions(ctx, sid) == []
    form = {"username": "rev1", "password": PASSWORD, "csrf": csrf_of(page), "next": f"/cases/{sid}"}
    r = app_client.post("/console/login", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{sid}"


@pytest.mark.parametrize(
    "next_path", ["//evil.example/x", "https://evil.example/", "/cases/../../h5/", "/queue?x=1", "\\\\evil.example"]
)
def test_the_login_never_leads_off_the_console(
    app_client: TestClient, staff_users: dict[str, int], next_path: str
) -> None:
    page = app_client.get("/console/login").text
    form = {"username": "rev1", "password": PASSWORD, "csrf": csrf_of(page), "next": next_path}
    r = app_client.post("/console/login", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/queue"


def test_a_decision_after_a_colleague_took_the_lapsed_claim_names_them_and_keeps_the_reason(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: 409 "请先领取该案件" on a bare page, the typed reason gone, and the holder never told of the lapse."""
    sid, csrf = _claimed(app_client, ctx, "rev1")
    assert "您的领取将于" in app_client.get(f"/console/cases/{sid}").text
    factories.update(ctx, ReviewClaim, sid, claimed_at=utcnow() - dt.timedelta(minutes=31))
    assert "您的领取已于" in app_client.get(f"/console/cases/{sid}").text  # the holder sees it has lapsed
    rev2 = new_client(app_client)
    r = rev2.post("/console/cases/next", data={"csrf": login(rev2, "rev2")}, follow_redirects=False)
    assert r.headers["location"] == f"/console/cases/{sid}"
    status, page = _decide(app_client, sid, csrf)
    assert status == 409 and "由 rev2-姓名 领取" in page and "您的决定未保存" in page
    assert re.search(r'<textarea id="reason-kept" readonly>' + REASON + "</textarea>", page)
    assert _decisions(ctx, sid) == []


def test_next_case_takes_a_case_nobody_holds_before_a_lapsed_claim(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    lapsed, _ = _claimed(app_client, ctx, "rev1")  # the older case
    factories.update(ctx, ReviewClaim, lapsed, claimed_at=utcnow() - dt.timedelta(minutes=31))
    free = _review_case(ctx, channel="self")
    factories.update(ctx, CertSession, free, decided_at=utcnow() + dt.timedelta(seconds=1))
    rev2 = new_client(app_client)
    r = rev2.post("/console/cases/next", data={"csrf": login(rev2, "rev2")}, follow_redirects=False)
    assert r.headers["location"] == f"/console/cases/{free}"
    claim = factories.update(ctx, ReviewClaim, lapsed)
    assert claim.claimed_by == staff_users["rev1"]


def test_a_decision_from_a_page_opened_before_a_newer_login_reopens_the_case_with_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a 403 page naming "CSRF", without navigation, whose 返回 led to the queue, the reason gone."""
    sid, old_csrf = _claimed(app_client, ctx, "rev1")
    login(app_client, "rev1")  # another tab of the same browser logs in again
    status, page = _decide(app_client, sid, old_csrf, "reject")
    assert status == 403 and "CSRF" not in page and "页面已过期" in page and "您的决定未保存" in page
    assert 'value="reject" accesskey="r" checked' in page and f">{REASON}</textarea>" in page
    assert _decide(app_client, sid, csrf_of(page), "reject")[0] == 200  # the reopened form works
    # Any other expired form: the words, the navigation, and a link back to the page the form was on.
    r = app_client.post(f"/console/cases/{sid}/release", data={"csrf": old_csrf})
    assert r.status_code == 403 and "CSRF" not in r.text and "页面已过期" in r.text
    assert f'href="/console/cases/{sid}"' in r.text and "审核队列" in r.text


def test_a_second_click_on_a_decision_says_it_was_ones_own(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid, csrf = _claimed(app_client, ctx, "rev1")
    assert _decide(app_client, sid, csrf)[0] == 200
    status, page = _decide(app_client, sid, csrf)
    assert status == 409 and "您已提交过决定，该案件已处理" in page
    assert _decisions(ctx, sid) == ["retry"]


BACK_RE = re.compile(r'<p><a href="([^"]+)">返回</a></p>')


@pytest.mark.parametrize(
    ("form", "page"),
    [
        ("/alerts/1/resolve", "/alerts"),
        ("/users/{sup}/confirm", "/alerts"),
        ("/beneficiaries/{bid}/certifications/{cid}/revoke", "/beneficiaries/{bid}"),
        ("/beneficiaries/{bid}/holds/1/release", "/beneficiaries/{bid}"),
        ("/beneficiaries/{bid}/template/withdraw", "/beneficiaries/{bid}"),
        ("/cases/next", "/queue"),
    ],
)
def test_an_expired_forms_link_goes_to_a_page_that_exists(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], form: str, page: str
) -> None:
    """The expired-form page linked to the form path's parent: /alerts/1 or /beneficiaries/B/certifications/C,
    which are no pages (404, 405). It now links to the page the form is on, and that page opens."""
    bid, cid = certified_at_counter(ctx)
    names = {"bid": bid, "cid": cid, "sup": staff_users["sup2"]}
    old_csrf = login(app_client, "sup1")
    login(app_client, "sup1")  # another tab logs in again: the first tab's forms have expired
    r = app_client.post("/console" + form.format(**names), data={"csrf": old_csrf, "note": "x", "reason": "other"})
    assert r.status_code == 403 and "页面已过期" in r.text
    back = BACK_RE.search(r.text)
    assert back is not None and back.group(1) == "/console" + page.format(**names)
    assert app_client.get(back.group(1)).status_code == 200


def test_a_page_opened_after_the_login_idled_out_logs_in_back_to_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A plain visit (a bookmark, a link, 刷新) after the idle timeout: the login led to the queue, not the page
    asked for. It now returns there (a console page path only)."""
    bid, _cid = certified_at_counter(ctx)
    login(app_client, "sup1")
    with ctx.db() as db:
        db.execute(update(StaffSession).values(last_seen=utcnow() - dt.timedelta(minutes=16)))
    r = app_client.get(f"/console/beneficiaries/{bid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/login?next=/beneficiaries/{bid}"
    page = app_client.get(r.headers["location"]).text
    assert f'name="next" value="/beneficiaries/{bid}"' in page
    form = {"username": "sup1", "password": PASSWORD, "csrf": csrf_of(page), "next": f"/beneficiaries/{bid}"}
    done = app_client.post("/console/login", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/console/beneficiaries/{bid}"


@pytest.mark.parametrize("next_path", ["//evil.example/x", "/console/../h5/", "https://evil.example/"])
def test_a_login_link_with_a_foreign_next_leads_to_the_queue(
    app_client: TestClient, staff_users: dict[str, int], next_path: str
) -> None:
    """A crafted login link (/console/login?next=…) puts nothing off the console into the form, nor the redirect."""
    page = app_client.get("/console/login", params={"next": next_path}).text
    assert 'name="next"' not in page and "evil" not in page
    form = {"username": "rev1", "password": PASSWORD, "csrf": csrf_of(page), "next": next_path}
    r = app_client.post("/console/login", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/queue"


@pytest.mark.parametrize("by", ["colleague", "operator_api"])
def test_a_decision_on_a_case_settled_meanwhile_names_who_settled_it_and_keeps_what_was_typed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], by: str
) -> None:
    """Before: the refusal was drawn only while the case was open, so a reviewer whose lapsed claim a colleague
    took over and decided (or the operator API settled) got the case page with no word of it, no decision and no
    reason, and the colleague's reject read as 机器结论：不通过: as if their own accept had gone through."""
    sid, csrf = _claimed(app_client, ctx, "rev1")
    factories.update(ctx, ReviewClaim, sid, claimed_at=utcnow() - dt.timedelta(minutes=31))
    if by == "colleague":
        rev2 = new_client(app_client)
        rev2_csrf = login(rev2, "rev2")
        assert rev2.post(f"/console/cases/{sid}/claim", data={"csrf": rev2_csrf}).status_code == 200
        assert _decide(rev2, sid, rev2_csrf, "reject")[0] == 200
        who = "由 rev2-姓名 处理为“不通过”"
    else:
        assert api_settle(app_client, sid, "reject") == (200, "")
        who = "由 业务系统接口（审核人 ops-desk） 处理为“不通过”"
    status, page = _decide(app_client, sid, csrf, "accept")
    assert status == 409 and who in page and "您的决定未保存" in page
    assert re.search(r'<p class="error" id="refusal"[^>]*>该案件已于 ', page)
    assert re.search(r'<textarea id="reason-kept" readonly>' + REASON + "</textarea>", page)
    assert re.search(r'id="decision-kept">您选择的决定（未保存）：<b>通过</b>', page)
    assert "机器结论：<b>待人工审核</b>" in page and 'id="staff-outcome">不通过</b>' in page
    assert _decisions(ctx, sid) == (["reject"] if by == "colleague" else [])


def test_a_decision_sent_after_the_login_ran_out_is_filled_back_in_after_the_login(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: the decision and up to 1000 typed characters reached the server with the expired login and were
    dropped: after the login the case had an empty reason box, and the case page never said when the login ends.
    Now the login form carries them (its body) and the login reopens the case with them; nothing is decided until
    the reviewer sends it again."""
    sid, csrf = _claimed(app_client, ctx, "rev1")
    assert re.search(r'id="login-ends">登录超过 15 分钟没有提交或翻页', app_client.get(f"/console/cases/{sid}").text)
    with ctx.db() as db:  # 16 minutes on the phone with the family
        db.execute(update(StaffSession).values(last_seen=utcnow() - dt.timedelta(minutes=16)))
    status, page = _decide(app_client, sid, csrf, "reject")
    assert status == 401 and "登录后将重新打开该案件并填回您的决定和理由" in page
    assert 'name="kept_decision" value="reject"' in page and f'name="kept_reason" value="{REASON}"' in page
    form = {"username": "rev1", "password": PASSWORD, "csrf": csrf_of(page), "next": f"/cases/{sid}"}
    form |= {"kept_decision": "reject", "kept_reason": REASON}
    wrong = app_client.post("/console/login", data=form | {"password": "wrong"})  # a typo keeps them too
    assert wrong.status_code == 401 and f'name="kept_reason" value="{REASON}"' in wrong.text
    r = app_client.post("/console/login", data=form | {"csrf": csrf_of(wrong.text)})
    assert r.status_code == 200 and "登录已超时，您的决定尚未提交" in r.text
    assert 'value="reject" accesskey="r" checked' in r.text and f">{REASON}</textarea>" in r.text
    assert _decisions(ctx, sid) == []
    assert _decide(app_client, sid, csrf_of(r.text), "reject")[0] == 200
    assert _decisions(ctx, sid) == ["reject"]


PLANTED = "已电话核实本人健在"  # another site's text


@pytest.mark.parametrize(
    ("cookie", "token", "headers"),
    [
        (False, "", {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),  # what a browser sends
        (False, "", {}),  # an old browser: neither header, and no cookie under SameSite=Strict
        (True, "forged", SAME_ORIGIN),  # the idled login's cookie, not its form token
        (True, "right", {"Sec-Fetch-Site": "same-site"}),  # a sibling host's page
        (True, "right", {"Origin": "null"}),  # what Referrer-Policy: no-referrer leaves of the Origin
    ],
    ids=["cross-site", "no-headers", "forged-csrf", "same-site-host", "origin-null"],
)
def test_a_decision_posted_from_another_site_is_not_kept_for_the_reviewers_login(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    cookie: bool,
    token: str,
    headers: dict[str, str],
) -> None:
    """Before: a form on another site posting to a claimed case's decide URL arrived without the SameSite=Strict
    cookie, looked like a login run out, and its decision and reason were carried through the reviewer's login and
    filled in as "您的决定"; one click accepted the case with the planted reason. Now only a decision sent from
    the console's pages with the form token of the login the browser's cookie names is kept."""
    sid, csrf = _claimed(app_client, ctx, "rev1")
    with ctx.db() as db:
        db.execute(update(StaffSession).values(last_seen=utcnow() - dt.timedelta(minutes=16)))
    browser = app_client if cookie else new_client(app_client)
    form = {"decision": "accept", "reason": PLANTED, "csrf": csrf if token == "right" else token}
    r = browser.post(f"/console/cases/{sid}/decide", data=form, headers=headers)
    assert r.status_code == 401 and "登录已超时，刚才提交的内容未保存" in r.text
    assert "kept_" not in r.text and PLANTED not in r.text and "填回您的决定" not in r.text
    login_form = {"username": "rev1", "password": PASSWORD, "csrf": csrf_of(r.text), "next": f"/cases/{sid}"}
    back = browser.post("/console/login", data=login_form, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == f"/console/cases/{sid}"
    page = browser.get(f"/console/cases/{sid}").text
    assert PLANTED not in page and "checked" not in page
    assert _decisions(ctx, sid) == []
