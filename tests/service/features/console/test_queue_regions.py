"""The review queue's region filter finds a relative's verification session (which has no beneficiary) by the
claimed person's region: the roster's when the number is a beneficiary's, else the number's own area code. The
queue page says how many cases wait, pages past its first 200, and tells an empty filter from an empty queue."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionDecision, SessionState, utcnow
from service.certification.regions import region_name
from service.features.console.review_queue import BAD_CURSOR_ZH, list_queue
from service.features.proxy import operators
from service.features.proxy.models import ProxyClaim
from service.features.proxy.sessions import open_verification
from tests.service import factories
from tests.service.features.console.conftest import api_settle, csrf_of, login, new_client


def _verification_in_review(ctx: ServiceContext, number: str, name: str) -> str:
    """A relative's verification session the machine sent to review (the decision itself is not under test)."""
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", f"openid-{number}", "test").operator
        sid = open_verification(db, ctx, op, number, name, consent=False).session.id
        s = db.get(CertSession, sid)
        assert s is not None and s.beneficiary_id is None
        s.state, s.decision, s.decided_at = SessionState.DECIDED, SessionDecision.REVIEW, utcnow()
        s.reasons = ["SPOOF_SUSPECTED"]
    return sid


def test_region_filter_finds_verification_sessions_by_the_claimed_region(ctx: ServiceContext) -> None:
    stranger = _verification_in_review(ctx, factories.id_number("420106", birth=dt.date(1975, 5, 1)), "李建国")
    with ctx.db() as db:  # a relative who is a pensioner too: the roster's region counts, not the number's
        number = factories.id_number("370102", birth=dt.date(1950, 3, 14))
        pensioner = factories.beneficiary(db, ctx.keyring, id_number=number, name="王桂兰", region="110105")
    listed = _verification_in_review(ctx, number, "王桂兰")
    with ctx.db() as db:
        claims = {c.session_id: c.region for c in db.query(ProxyClaim)}
        assert claims[stranger] == "420106" and claims[listed] == pensioner.region == "110105"
        wuhan = [i.session.id for i in list_queue(db, region="4201").items]
        beijing = [i.session.id for i in list_queue(db, region="1101").items]
        jinan = [i.session.id for i in list_queue(db, region="3701").items]
        everyone = {i.session.id: i.person for i in list_queue(db).items}
    assert stranger in wuhan and listed not in wuhan
    assert listed in beijing and stranger not in beijing
    assert stranger not in jinan and listed not in jinan  # the number's area is not the roster's region
    assert everyone[stranger].region == "420106" and everyone[stranger].name == "李建国"


def test_queue_page_names_the_region_of_a_verification_session(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _verification_in_review(ctx, factories.id_number("420106", birth=dt.date(1980, 1, 2)), "赵敏")
    login(app_client, "rev1")
    page = app_client.get("/console/queue", params={"region": "420106"}).text
    assert sid in page
    full = region_name("420106")
    assert full is not None and full.startswith("湖北省") and full in page
    assert sid not in app_client.get("/console/queue", params={"region": "61"}).text


def _open_cases(ctx: ServiceContext, n: int) -> list[str]:
    """`n` open review cases, the first the oldest (one minute apart)."""
    with ctx.db() as db:
        now, ids = utcnow(), []
        for i in range(n):
            b = factories.beneficiary(db, ctx.keyring)
            s = factories.session_row(b.id, state="decided", decision="review")
            s.decided_at, s.reasons = now - dt.timedelta(minutes=n - i), ["SPOOF_SUSPECTED"]
            db.add(s)
            ids.append(s.id)
    return ids


def _listed(page: str) -> list[str]:
    return re.findall(r'<tr data-session="([^"]+)"', page)


def test_the_queue_says_how_many_cases_wait_and_pages_past_the_first_200(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """230 open cases: the page said nothing of the 30 beyond its first 200 and ignored any page parameter. Now it
    says 共 230 件, 显示第 1–200 件, and its next-page link lists the other 30 (a keyset on the queue's order)."""
    ids = _open_cases(ctx, 230)
    login(app_client, "rev1")
    first = app_client.get("/console/queue").text
    assert _listed(first) == ids[:200]
    assert 'id="queue-total">230<' in first and "显示第 1–200 件" in first
    link = re.search(r'href="([^"]+)" id="queue-next"', first)
    assert link is not None
    second = app_client.get(link.group(1).replace("&amp;", "&")).text
    assert _listed(second) == ids[200:] and "显示第 201–230 件" in second and 'id="queue-next"' not in second


def test_a_filter_that_matches_nothing_does_not_read_as_an_empty_queue(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    _open_cases(ctx, 3)
    login(app_client, "rev1")
    page = app_client.get("/console/queue?reason=FACE_MISMATCH").text
    assert "没有符合筛选条件的案件" in page and "队列为空" not in page and 'id="queue-total">0<' in page
    assert 'id="queue-total">3<' in app_client.get("/console/queue").text


def _next_link(page: str) -> str:
    link = re.search(r'href="([^"]+)" id="queue-next"', page)
    assert link is not None
    return link.group(1).replace("&amp;", "&")


@pytest.mark.parametrize("by", ["console", "operator_api"])
def test_the_next_page_survives_the_settling_of_the_last_case_shown(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], by: str
) -> None:
    """The next-page link named the last case shown, and the page after it was found by that case's decided_at,
    which settling it rewrites: once a colleague (or the operator API) had settled it, 下一页 showed no case and
    said 本页之后没有更多案件 while 229 waited. The link now carries the case's waiting time with its id."""
    ids = _open_cases(ctx, 230)
    login(app_client, "rev1")
    link = _next_link(app_client.get("/console/queue").text)
    if by == "console":
        other = new_client(app_client)
        csrf = login(other, "rev2")
        assert other.post(f"/console/cases/{ids[199]}/claim", data={"csrf": csrf}).status_code == 200
        form = {"csrf": csrf, "decision": "retry", "reason": "请重拍"}
        r = other.post(f"/console/cases/{ids[199]}/decide", data=form)
        assert "已完成审核" in r.text
    else:
        assert api_settle(app_client, ids[199], "reject") == (200, "")
    second = app_client.get(link).text
    assert 'id="queue-total">229<' in second
    assert _listed(second) == ids[200:] and "显示第 200–229 件" in second


def test_a_next_page_link_of_before_or_edited_by_hand_is_followed_or_refused_in_words(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A link made before the cursor carried the time (a bare case id) still pages on while its case waits; once
    the case has left the queue, or for a cursor that is none, the page says so in Chinese (400, not a 500). Before:
    a time at the calendar's edge with an offset (its UTC out of range) was an OverflowError, a 500 JSON page."""
    ids = _open_cases(ctx, 5)
    login(app_client, "rev1")
    assert _listed(app_client.get("/console/queue", params={"after": ids[1]}).text) == ids[2:]
    assert api_settle(app_client, ids[1], "reject") == (200, "")
    edge = ("0001-01-01T00:00+01:00~" + ids[2], "9999-12-31T23:00-05:00~" + ids[2])
    for after in (ids[1], "not-a-time~" + ids[2], *edge):
        r = app_client.get("/console/queue", params={"after": after})
        assert r.status_code == 400 and BAD_CURSOR_ZH in r.text and "<tr data-session" not in r.text


def test_next_case_takes_the_oldest_case_the_filtered_queue_shows(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: 领取下一件 on a page filtered to 代办 claimed the oldest case of the whole queue, a 本人 one."""
    own, proxy = _open_cases(ctx, 2)
    factories.update(ctx, CertSession, own, channel="self")
    factories.update(ctx, CertSession, proxy, channel="proxy")
    login(app_client, "rev1")
    page = app_client.get("/console/queue", params={"channel": "proxy"}).text
    assert _listed(page) == [proxy] and '<input type="hidden" name="channel" value="proxy">' in page
    form = {"csrf": csrf_of(page), "channel": "proxy", "region": "", "reason": ""}
    r = app_client.post("/console/cases/next", data=form, follow_redirects=False)
    assert r.headers["location"] == f"/console/cases/{proxy}"
