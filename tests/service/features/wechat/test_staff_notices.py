"""The notices staff settle by hand (console page 微信通知): one given up after WeChat refused it (failed) and one
whose send WeChat answered too late (left in `sending`: it may have been delivered) used to be reachable only by SQL
(docs/wechat.md). Supervisors now see them, in their region scope, in Chinese, and send a failed one again or settle
a lost answer as delivered, or send it again once they accept it may arrive twice; every view and decision audited."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.auth import Role, Staff
from service.features.console.models import AssistRequest, StaffUser
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import run_notifications
from service.features.wechat.staff_notices import error_zh, stuck_notices
from service.infra.security import mask_id
from tests.service import factories
from tests.service.adapters.http.test_observability import samples
from tests.service.features.console.conftest import login, new_client, staff_users  # noqa: F401 (the staff accounts)
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel, sent_to
from tests.service.features.wechat.test_notify_hours import china

WUHAN = factories.id_number("420106", seq=11)
GUANGZHOU = factories.id_number("440106", seq=12)
DAY = dt.date(2026, 11, 22)
pytestmark = pytest.mark.usefixtures("staff_users")


def _stuck(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> tuple[WeChatNotice, WeChatNotice]:
    """A 武汉 person whose account unfollowed (failed at once, 43004) and, behind them, a 广州 person whose message
    WeChat took but answered too late (left in `sending`)."""
    for number, name, until, openid in (
        (WUHAN, "王桂兰", dt.date(2026, 12, 9), "o-gone"),
        (GUANGZHOU, "陈志强", dt.date(2026, 12, 10), "o-late"),
    ):
        certified_by(
            db, ctx, factories.beneficiary(db, ctx.keyring, id_number=number, name=name, valid_until=until), openid
        )
    db.commit()
    api = channel(ctx).api
    api.client.timeout = 0.2
    fake_wx.state.unsubscribed, fake_wx.state.answer_late_s = {"o-gone"}, 0.6
    run_notifications(ctx, api, DAY, china(22, 10, 0))
    fake_wx.state.unsubscribed, fake_wx.state.answer_late_s = set(), 0.0
    db.expire_all()
    failed = db.scalars(select(WeChatNotice).where(WeChatNotice.openid == "o-gone")).one()
    lost = db.scalars(select(WeChatNotice).where(WeChatNotice.openid == "o-late")).one()
    assert (failed.status, lost.status) == (NoticeStatus.FAILED, NoticeStatus.SENDING)
    return failed, lost


def _scope(ctx: ServiceContext, username: str, prefixes: list[str]) -> None:
    with ctx.db() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == username))
        assert user is not None
        user.scope = prefixes


def _status(db: Session, notice_id: int) -> tuple[str, int]:
    db.expire_all()
    n = db.get(WeChatNotice, notice_id)
    assert n is not None
    return n.status, n.attempts


def test_supervisors_see_the_stuck_notices_of_their_region_in_chinese_and_every_view_is_audited(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, client: TestClient
) -> None:
    failed, lost = _stuck(ctx, db, fake_wx)
    _scope(ctx, "sup1", ["4201"])
    login(client, "sup1")
    page = client.get("/console/wechat-notices")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert f'id="notice-{failed.id}"' in page.text and f'id="notice-{lost.id}"' not in page.text  # 广州: out of scope
    assert "王桂兰" in page.text and "用户已取消关注公众号" in page.text and "发送失败" in page.text
    assert WUHAN not in page.text and mask_id(WUHAN) in page.text
    assert "WeChat error" not in page.text and "43004" not in page.text

    everyone = new_client(client)
    login(everyone, "sup2")
    text = everyone.get("/console/wechat-notices").text
    assert f'id="notice-{failed.id}"' in text and f'id="notice-{lost.id}"' in text
    assert "未知是否送达" in text and "微信未回应，可能已经送达" in text and "可能收到两次" in text
    assert "timed out" not in text.lower() and "Timeout" not in text and GUANGZHOU not in text
    # The person's own list, linked from their page: only that person's notices.
    bid = _bid(db, failed)
    assert f'href="/console/beneficiaries/{bid}/wechat-notices"' in everyone.get(f"/console/beneficiaries/{bid}").text
    own = everyone.get(f"/console/beneficiaries/{bid}/wechat-notices").text
    assert f'id="notice-{failed.id}"' in own and f'id="notice-{lost.id}"' not in own

    reviewer = new_client(client)
    login(reviewer, "rev1")
    assert reviewer.get("/console/wechat-notices").status_code == 403
    with ctx.db() as s:
        views = s.scalars(
            select(ConsoleAuditEntry)
            .where(ConsoleAuditEntry.action == "wechat_notices.view")
            .order_by(ConsoleAuditEntry.seq)
        ).all()
    assert [v.actor for v in views] == ["staff:sup1", "staff:sup2", "staff:sup2"]
    assert views[2].detail["beneficiary_id"] == bid
    assert views[0].detail["shown"] == [failed.id]


def _bid(db: Session, notice: WeChatNotice) -> int:
    return int(notice.ref.partition(":")[0])


def _given_up_busy(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> WeChatNotice:
    """A 武汉 person's notice given up after WeChat answered "system busy" to every attempt: a passing cause (the
    43004 one of `_stuck` is the person's account: sent again, it fails alike)."""
    number = factories.id_number("420106", seq=13)
    b = factories.beneficiary(db, ctx.keyring, id_number=number, name="李秀英", valid_until=dt.date(2026, 12, 9))
    certified_by(db, ctx, b, "o-busy")
    db.commit()
    fake_wx.state.fail_sends = 1000
    for minute in range(ctx.settings.wechat.notify_max_attempts):
        run_notifications(ctx, channel(ctx).api, DAY, china(22, 10, minute))
    fake_wx.state.fail_sends = 0
    db.expire_all()
    notice = db.scalars(select(WeChatNotice).where(WeChatNotice.openid == "o-busy")).one()
    assert notice.status == NoticeStatus.FAILED and "-1" in (notice.last_error or "")
    return notice


def test_a_failed_notice_is_sent_again_by_a_supervisor_and_goes_out_on_the_next_run(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, client: TestClient
) -> None:
    failed = _given_up_busy(ctx, db, fake_wx)
    attempts = failed.attempts
    csrf = login(client, "sup2")
    assert client.post(f"/console/wechat-notices/{failed.id}/resend", data={"csrf": "forged"}).status_code == 403
    assert _status(db, failed.id) == (NoticeStatus.FAILED, attempts)
    r = client.post(f"/console/wechat-notices/{failed.id}/resend", data={"csrf": csrf})
    assert r.status_code == 200 and f'id="notice-{failed.id}"' not in r.text  # back on the list page, settled
    assert _status(db, failed.id) == (NoticeStatus.PENDING, 0)
    # Not stuck any more: a second decision (another tab) is refused, nothing changes.
    assert client.post(f"/console/wechat-notices/{failed.id}/resend", data={"csrf": csrf}).status_code == 404
    run_notifications(ctx, channel(ctx).api, DAY, china(22, 11, 0))
    assert _status(db, failed.id) == (NoticeStatus.SENT, 1)
    assert sent_to(fake_wx, "tpl-due").count("o-busy") == 1
    with ctx.db() as s:
        entry = s.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "wechat_notice.resend")).one()
    assert (entry.actor, entry.target, entry.detail["was"]) == ("staff:sup2", str(failed.id), "failed")


def test_a_lost_answer_is_settled_as_delivered_or_resent_only_when_the_risk_of_twice_is_accepted(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, client: TestClient
) -> None:
    failed, lost = _stuck(ctx, db, fake_wx)
    assert sent_to(fake_wx, "tpl-due") == ["o-late"]  # WeChat took it, though its answer was lost
    _scope(ctx, "sup1", ["4201"])
    scoped = new_client(client)
    csrf1 = login(scoped, "sup1")
    # Out of sup1's region: as if it did not exist, and noted as a scope denial.
    assert scoped.post(f"/console/wechat-notices/{lost.id}/delivered", data={"csrf": csrf1}).status_code == 404
    csrf = login(client, "sup2")
    # A failed notice was never delivered: it cannot be marked so.
    assert client.post(f"/console/wechat-notices/{failed.id}/delivered", data={"csrf": csrf}).status_code == 404
    r = client.post(f"/console/wechat-notices/{lost.id}/resend", data={"csrf": csrf})
    assert r.status_code == 422 and "可能" in r.text
    assert _status(db, lost.id) == (NoticeStatus.SENDING, 1)
    r = client.post(f"/console/wechat-notices/{lost.id}/resend", data={"csrf": csrf, "accept_duplicate": "1"})
    assert r.status_code == 200 and _status(db, lost.id) == (NoticeStatus.PENDING, 0)
    run_notifications(ctx, channel(ctx).api, DAY, china(22, 11, 0))
    assert _status(db, lost.id) == (NoticeStatus.SENT, 1)
    assert sent_to(fake_wx, "tpl-due").count("o-late") == 2  # the risk the supervisor accepted

    # Another lost answer, settled as delivered: recorded sent, never sent again.
    with ctx.db() as s:
        n = s.get(WeChatNotice, failed.id)
        assert n is not None
        n.status, n.last_error = NoticeStatus.SENDING, "may have been delivered (WeChat's answer lost): read timed out"
    assert client.post(f"/console/wechat-notices/{failed.id}/delivered", data={"csrf": csrf}).status_code == 200
    assert _status(db, failed.id)[0] == NoticeStatus.SENT
    run_notifications(ctx, channel(ctx).api, DAY, china(22, 12, 0))
    assert "o-gone" not in sent_to(fake_wx, "tpl-due")
    with ctx.db() as s:
        actions = s.scalars(select(ConsoleAuditEntry.action).where(ConsoleAuditEntry.action.like("%denied%"))).all()
        delivered = s.scalars(
            select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "wechat_notice.delivered")
        ).one()
    assert "scope.denied" in actions
    assert (delivered.actor, delivered.target) == ("staff:sup2", str(failed.id))
    assert (delivered.detail["was"], delivered.detail["action"]) == ("sending", "delivered")


def test_every_stored_error_reads_as_chinese_words_for_staff() -> None:
    def words(status: str, error: str | None) -> str:
        return error_zh(WeChatNotice(kind="result", ref="x", openid="o", status=status, last_error=error))

    assert words(NoticeStatus.FAILED, "WeChat error -1: system busy") == "微信系统繁忙（多次重试未成功）"
    assert words(NoticeStatus.FAILED, "WeChat error 43101: user refuse to accept the msg") == "用户拒收公众号消息"
    assert words(NoticeStatus.FAILED, "WeChat error 40037: invalid template_id") == "微信拒绝发送（错误码 40037）"
    assert words(NoticeStatus.FAILED, "WeChat error None: no template configured for 'overdue'") == (
        "未配置该类通知的消息模板"
    )
    assert words(NoticeStatus.SENDING, "may have been delivered (WeChat's answer lost): Read timed out") == (
        "微信未回应，可能已经送达"
    )


def test_one_persons_notices_follow_the_scope_rule_for_a_record_addressed_by_id(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, client: TestClient
) -> None:
    """/console/beneficiaries/{id}/wechat-notices answered 200 with an empty list for a person out of scope or
    unknown, and noted nothing: now 404, alike for both, and a scoped attempt is a `scope.denied` entry."""
    failed, lost = _stuck(ctx, db, fake_wx)
    _scope(ctx, "sup1", ["4201"])
    login(client, "sup1")
    assert client.get(f"/console/beneficiaries/{_bid(db, failed)}/wechat-notices").status_code == 200
    assert client.get(f"/console/beneficiaries/{_bid(db, lost)}/wechat-notices").status_code == 404  # 广州
    assert client.get("/console/beneficiaries/999999/wechat-notices").status_code == 404
    with ctx.db() as s:
        denied = s.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "scope.denied")).all()
        views = s.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "wechat_notices.view")).all()
    assert sorted(d.target for d in denied) == sorted([str(_bid(db, lost)), "999999"])
    assert [v.detail["beneficiary_id"] for v in views] == [_bid(db, failed)]


def test_a_notice_that_can_never_be_sent_is_closed_once_the_person_was_told_another_way(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, client: TestClient
) -> None:
    """A notice refused because the account unfollowed (43004), refuses messages (43101) or is unknown (40003) fails
    again if resent, and the page and the gauge only grew: staff record that the person was told another way
    (已线下告知/关闭, a note required, audited); such a notice is not offered to be resent (nor accepted)."""
    failed, lost = _stuck(ctx, db, fake_wx)  # `failed`: 43004, the account unfollowed
    csrf = login(client, "sup2")
    page = client.get("/console/wechat-notices").text
    row = page.split(f'id="notice-{failed.id}"', 1)[1].split("</tr>", 1)[0]
    assert "已线下告知" in row and f"/wechat-notices/{failed.id}/resend" not in row
    r = client.post(f"/console/wechat-notices/{failed.id}/resend", data={"csrf": csrf})
    assert r.status_code == 409 and "线下" in r.text and _status(db, failed.id) == (NoticeStatus.FAILED, 1)
    # A note of how the person was told is required.
    r = client.post(f"/console/wechat-notices/{failed.id}/close", data={"csrf": csrf, "note": "  "})
    assert r.status_code == 422 and _status(db, failed.id) == (NoticeStatus.FAILED, 1)
    note = f"已电话告知本人 {WUHAN}"
    r = client.post(f"/console/wechat-notices/{failed.id}/close", data={"csrf": csrf, "note": note})
    assert r.status_code == 200 and f'id="notice-{failed.id}"' not in r.text
    assert _status(db, failed.id) == (NoticeStatus.CLOSED, 1)
    again = client.post(f"/console/wechat-notices/{failed.id}/close", data={"csrf": csrf, "note": "x"})
    assert again.status_code == 404  # closed already: not stuck
    with ctx.db() as s:
        entry = s.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "wechat_notice.close")).one()
    assert (entry.actor, entry.detail["was"]) == ("staff:sup2", "failed")
    assert WUHAN not in entry.detail["note"] and mask_id(WUHAN) in entry.detail["note"]
    # Closed: never sent by a run, nor counted as waiting for staff.
    run_notifications(ctx, channel(ctx).api, DAY, china(22, 11, 0))
    assert _status(db, failed.id) == (NoticeStatus.CLOSED, 1) and "o-gone" not in sent_to(fake_wx, "tpl-due")
    metrics = client.get("/metrics").text
    assert 'pension_cert_wechat_notices_for_staff{state="failed"} 0.0' in metrics
    assert 'pension_cert_wechat_notices_for_staff{state="answer_lost"} 1.0' in metrics
    # A notice given up for a passing cause (WeChat busy) is still offered to be sent again.
    with ctx.db() as s:
        n = s.get(WeChatNotice, lost.id)
        assert n is not None
        n.status, n.last_error = NoticeStatus.FAILED, "WeChat error -1: system error"
    row = client.get("/console/wechat-notices").text.split(f'id="notice-{lost.id}"', 1)[1].split("</tr>", 1)[0]
    assert f"/wechat-notices/{lost.id}/resend" in row and f"/wechat-notices/{lost.id}/close" in row


def _failed(db: Session, kind: str, ref: str, openid: str) -> WeChatNotice:
    n = WeChatNotice(kind=kind, ref=ref, openid=openid, status=NoticeStatus.FAILED, attempts=1)
    n.last_error = "WeChat error 43004: require subscribe"
    db.add(n)
    return n


def test_the_notices_gauge_is_absent_while_the_database_is_down_and_the_database_gauge_says_so(
    ctx: ServiceContext, db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The behaviour docs/operations.md's alert on this gauge is written for (`last_over_time(…[1h]) > 0`, beside
    the database alert): while the database does not answer no count is made up (a 0 would read as "nothing for
    staff", a kept one as counted now); the scrape still answers, `pension_cert_database_up` is 0 in it, and the
    pause gauges, read from the token store, stay."""
    _failed(db, "result", "s-gauge", "o-gauge")
    db.commit()
    staff, up, paused = (
        "pension_cert_wechat_notices_for_staff",
        "pension_cert_database_up",
        "pension_cert_wechat_paused",
    )
    assert samples(client, staff) == {(("state", "answer_lost"),): 0.0, (("state", "failed"),): 1.0}
    assert samples(client, up) == {(): 1.0}

    def down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(ctx, "db", down)
    assert samples(client, staff) == {} and samples(client, up) == {(): 0.0}
    assert samples(client, paused)[(("reason", "configuration"),)] == 0.0
    monkeypatch.undo()
    assert samples(client, staff)[(("state", "failed"),)] == 1.0  # back with the database


def test_the_listing_filters_by_region_and_person_in_sql_whatever_the_other_regions_hold(
    ctx: ServiceContext, db: Session
) -> None:
    """The page walked every failed notice of the jurisdiction, 1-3 queries each, and applied the scope in Python:
    3,000 out-of-scope notices were 3,004 statements (1.3 s) for each view of a district's page. Now the region and
    the person are conditions of one query, each kind of notice joined to its person."""
    wuhan = factories.beneficiary(db, ctx.keyring, id_number=WUHAN, name="王桂兰")
    canton = factories.beneficiary(db, ctx.keyring, id_number=GUANGZHOU, name="陈志强")
    own_session, other_session = certified_by(db, ctx, wuhan, "o-w"), certified_by(db, ctx, canton, "o-g")
    own_req = AssistRequest(beneficiary_id=wuhan.id, kind="home_visit", phone="13800000000", openid="o-w")
    other_req = AssistRequest(beneficiary_id=canton.id, kind="home_visit", phone="13800000000", openid="o-g")
    db.add_all([own_req, other_req])
    db.flush()
    mine = [
        _failed(db, "result", own_session, "o-w"),
        _failed(db, "assist", str(own_req.id), "o-w"),
        _failed(db, "assist", f"{own_req.id}:2", "o-w"),  # its second closing (reopened by a revocation)
        _failed(db, "due_soon", f"{wuhan.id}:2026-12-09", "o-w"),
        _failed(db, "revoked", f"{wuhan.id}:cert-1", "o-w"),
    ]
    _failed(db, "result", other_session, "o-g")
    _failed(db, "assist", str(other_req.id), "o-g")
    for i in range(1500):
        _failed(db, "due_soon", f"{canton.id}:2026-12-10", f"o-g{i}")  # another district's
        _failed(db, "overdue", f"{900000 + i}:2026-12-01", f"o-x{i}")  # a person no longer on the roster
    db.commit()
    scoped = Staff(1, "sup1", "sup1-姓名", Role.SUPERVISOR, "csrf", scope=("4201",))
    statements: list[str] = []
    with ctx.db() as s:

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(s.get_bind(), "before_cursor_execute", count)
        try:
            rows = stuck_notices(s, scoped)
            listed = len(statements)
            own = stuck_notices(s, scoped, wuhan.id)
            canton_rows = stuck_notices(s, Staff(2, "sup2", "sup2-姓名", Role.SUPERVISOR, "c", scope=()), canton.id)
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", count)
    assert sorted(r.id for r in rows) == sorted(n.id for n in mine) == sorted(r.id for r in own)
    assert {r.person for r in rows} == {f"王桂兰（{mask_id(WUHAN)}）"} and {r.beneficiary_id for r in rows} == {
        wuhan.id
    }
    assert listed <= 8, statements  # the query, the scope's lookups and the audit entry: not one per notice
    assert len(canton_rows) == 200 and {r.beneficiary_id for r in canton_rows} == {canton.id}  # PAGE_SIZE
