"""A notice claimed and never sent: the process that claimed it (`pending → sending`) died before WeChat answered (a
worker killed, a deploy, OOM). Nothing stored told it apart from one being sent right now, so it was neither retried
nor shown to staff, and the pensioner was never told. The claim is now dated (`claimed_at`, migration 0020): past
a quarter of an hour (notice_send.STALE_CLAIM) a `sending` notice without WeChat's answer is taken for one whose
process died; it may have been delivered, so it is never resent by itself: it goes to the console page 微信通知
and the `answer_lost` gauge, with the staff actions of a lost answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.features.console.auth import Role, Staff
from service.features.wechat import notice_send
from service.features.wechat.gauges import WeChatGauges
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import run_notifications
from service.features.wechat.staff_notices import error_zh, settle, stuck_notices
from service.infra import clock
from tests.service import factories
from tests.service.features.console.conftest import login, staff_users  # noqa: F401 (the staff accounts)
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel, sent_to
from tests.service.features.wechat.test_notify_hours import china

DAY = dt.date(2026, 11, 22)
AT = china(22, 10, 0)
# Past the bound (STALE_CLAIM: 15 minutes), within the console's idle timeout from the login (15 minutes).
LATER = AT + dt.timedelta(minutes=16)
SUPERVISOR = Staff(2, "sup2", "sup2-姓名", Role.SUPERVISOR, "c")
pytestmark = pytest.mark.usefixtures("staff_users")


class Killed(BaseException):
    """The process killed while the request is on its way to WeChat (nothing catches it, as nothing outlives it)."""


def _killed(*_: Any, **__: Any) -> int:
    raise Killed


def _hold(monkeypatch: pytest.MonkeyPatch, at: dt.datetime) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: at)


def _due(ctx: ServiceContext, db: Session, openid: str, seq: int) -> None:
    """A 武汉 person certified through WeChat (account `openid`) whose reminder is due on DAY, committed."""
    number = factories.id_number("420106", seq=seq)
    b = factories.beneficiary(db, ctx.keyring, id_number=number, name="王桂兰", valid_until=dt.date(2026, 12, 9))
    certified_by(db, ctx, b, openid)
    db.commit()


def _settled_meanwhile(ctx: ServiceContext, db: Session, openid: str, action: str, **how: Any) -> int:
    """A supervisor settles `openid`'s notice (`action`) in a transaction of their own while a send is under way: its
    id."""
    nid = db.scalars(select(WeChatNotice.id).where(WeChatNotice.openid == openid)).one()
    with ctx.db() as s:
        settle(s, SUPERVISOR, nid, action, **how)
    return nid


def _died_mid_send(ctx: ServiceContext, db: Session, monkeypatch: pytest.MonkeyPatch, openid: str, seq: int) -> int:
    """A 武汉 person's reminder, claimed by a run whose process died during the send: its id."""
    _due(ctx, db, openid, seq)
    api = channel(ctx).api
    monkeypatch.setattr(api, "send_template", _killed)
    _hold(monkeypatch, AT)
    with pytest.raises(Killed):
        run_notifications(ctx, api, DAY, AT)
    notice = db.scalars(select(WeChatNotice).where(WeChatNotice.openid == openid)).one()
    assert (notice.status, notice.attempts, notice.last_error) == (NoticeStatus.SENDING, 1, None)
    return notice.id


def _answer_lost_gauge(ctx: ServiceContext) -> float:
    metrics = {m.name: m for m in WeChatGauges(ctx, channel(ctx).api).collect()}
    [value] = [
        s.value for s in metrics["pension_cert_wechat_notices_for_staff"].samples if s.labels["state"] == "answer_lost"
    ]
    return float(value)


def _notice(db: Session, notice_id: int) -> WeChatNotice:
    db.expire_all()
    notice = db.get(WeChatNotice, notice_id)
    assert notice is not None
    return notice


def test_a_notice_whose_process_died_mid_send_goes_to_staff_once_no_send_can_still_be_running(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    nid = _died_mid_send(ctx, db, monkeypatch, "o-died", 21)
    # A minute later (another process): it may be being sent right now, so nobody touches it.
    _hold(monkeypatch, AT + dt.timedelta(minutes=1))
    run_notifications(ctx, channel(ctx).api, DAY, AT + dt.timedelta(minutes=1))
    assert sent_to(fake_wx, "tpl-due") == [] and _notice(db, nid).status == NoticeStatus.SENDING
    csrf = login(client, "sup2")
    assert f'id="notice-{nid}"' not in client.get("/console/wechat-notices").text
    assert _answer_lost_gauge(ctx) == 0
    r = client.post(f"/console/wechat-notices/{nid}/resend", data={"csrf": csrf, "accept_duplicate": "1"})
    assert r.status_code == 404 and _notice(db, nid).status == NoticeStatus.SENDING  # no race with a live send

    # Past the bound: the process died. Not resent by itself (it may have reached WeChat), shown to staff.
    _hold(monkeypatch, LATER)
    run_notifications(ctx, channel(ctx).api, DAY, LATER)
    assert sent_to(fake_wx, "tpl-due") == [] and _notice(db, nid).status == NoticeStatus.SENDING
    page = client.get("/console/wechat-notices").text
    assert f'id="notice-{nid}"' in page and "未知是否送达" in page and "发送未完成" in page and "可能收到两次" in page
    assert _answer_lost_gauge(ctx) == 1
    r = client.post(f"/console/wechat-notices/{nid}/resend", data={"csrf": csrf})
    assert r.status_code == 422 and _notice(db, nid).status == NoticeStatus.SENDING
    r = client.post(f"/console/wechat-notices/{nid}/resend", data={"csrf": csrf, "accept_duplicate": "1"})
    assert r.status_code == 200 and (_notice(db, nid).status, _notice(db, nid).attempts) == (NoticeStatus.PENDING, 0)
    run_notifications(ctx, channel(ctx).api, DAY, LATER + dt.timedelta(minutes=1))
    assert _notice(db, nid).status == NoticeStatus.SENT and sent_to(fake_wx, "tpl-due") == ["o-died"]
    assert _answer_lost_gauge(ctx) == 0


def test_the_claim_is_dated_by_the_service_clock_and_a_dead_claim_is_settled_like_a_lost_answer(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    nid = _died_mid_send(ctx, db, monkeypatch, "o-died-2", 22)
    assert _notice(db, nid).claimed_at == AT.replace(tzinfo=None)  # naive UTC, as every stored time
    _hold(monkeypatch, LATER)
    [row] = [r for r in stuck_notices(db, SUPERVISOR) if r.id == nid]
    assert row.status == NoticeStatus.SENDING and "发送未完成" in row.error_zh and "Killed" not in row.error_zh
    csrf = login(client, "sup2")
    assert client.post(f"/console/wechat-notices/{nid}/delivered", data={"csrf": csrf}).status_code == 200
    assert _notice(db, nid).status == NoticeStatus.SENT
    assert client.post(f"/console/wechat-notices/{nid}/delivered", data={"csrf": csrf}).status_code == 404
    run_notifications(ctx, channel(ctx).api, DAY, LATER + dt.timedelta(minutes=1))
    assert sent_to(fake_wx, "tpl-due") == []  # settled as delivered: never sent again


def test_a_notice_left_sending_before_claims_were_dated_is_shown_to_staff(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `sending` row from before migration 0020 has no claim time: its process is gone (the upgrade restarted it),
    so it is answer-unknown at once, not hidden for good."""
    nid = _died_mid_send(ctx, db, monkeypatch, "o-old", 23)
    with ctx.db() as s:
        s.execute(update(WeChatNotice).where(WeChatNotice.id == nid).values(claimed_at=None))
    _hold(monkeypatch, AT + dt.timedelta(seconds=5))
    assert nid in [r.id for r in stuck_notices(db, SUPERVISOR)]
    assert "发送未完成" in error_zh(_notice(db, nid)) and _answer_lost_gauge(ctx) == 1


def test_a_send_that_fails_after_staff_settled_its_notice_leaves_their_decision(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send slower than the bound: staff closed the notice (told the person by phone) while WeChat was still being
    asked; WeChat then refused ("system busy"). The run's failure write put it back to `pending`, to be sent anyway."""
    _due(ctx, db, "o-slow", 24)
    api = channel(ctx).api
    real_send = api.send_template

    def closed_meanwhile(*args: Any, **kwargs: Any) -> int:
        with ctx.db() as s:
            s.execute(update(WeChatNotice).values(status=NoticeStatus.CLOSED))
        fake_wx.state.fail_sends = 1
        return real_send(*args, **kwargs)

    monkeypatch.setattr(api, "send_template", closed_meanwhile)
    _hold(monkeypatch, AT)
    run_notifications(ctx, api, DAY, AT)
    notice = db.scalars(select(WeChatNotice).where(WeChatNotice.openid == "o-slow")).one()
    assert notice.status == NoticeStatus.CLOSED and sent_to(fake_wx, "tpl-due") == []


def test_a_slow_sends_failure_leaves_the_claim_of_the_send_after_it(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Send A outlives the bound; a supervisor sends it again (with the box) and run B claims it and is sending. A's
    failure then wrote B's live claim back to `pending`: the next run sent it a third time, the person got it twice."""
    _due(ctx, db, "o-x", 31)
    api = channel(ctx).api
    real_send = api.send_template
    now = {"t": AT}
    monkeypatch.setattr(clock, "now_utc", lambda: now["t"])
    b_send: dict[str, Any] = {}

    def slow_a(*args: Any, **kwargs: Any) -> int:
        now["t"] = LATER
        nid = _settled_meanwhile(ctx, db, "o-x", "resend", accept_duplicate=True)
        assert notice_send._claim(ctx, nid, DAY, notice_send.NoticeRun()) is not None  # run B, now sending
        b_send["call"] = (args, kwargs)
        fake_wx.state.fail_sends = 1  # A is then refused ("system busy")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(api, "send_template", slow_a)
    run_notifications(ctx, api, DAY, AT)
    notice = db.scalars(select(WeChatNotice).where(WeChatNotice.openid == "o-x")).one()
    assert notice.status == NoticeStatus.SENDING and notice.claimed_at == LATER.replace(tzinfo=None)
    monkeypatch.setattr(api, "send_template", real_send)
    now["t"] = LATER + dt.timedelta(minutes=1)
    run_notifications(ctx, api, DAY, now["t"])  # run C: B's claim is live, nothing to send
    args, kwargs = b_send["call"]
    real_send(*args, **kwargs)  # B's request reaches WeChat
    assert sent_to(fake_wx, "tpl-due") == ["o-x"]


def test_a_configuration_stop_does_not_reopen_a_notice_staff_settled_during_its_send(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five unknown-openid refusals in a row (another account's AppID) put the five back to `pending`: the fifth's
    send was slow, and the supervisor had closed it meanwhile (told by phone). The put-back reopened it."""
    for i in range(5):
        _due(ctx, db, f"o-{i}", 40 + i)
    fake_wx.state.other_account = True
    api = channel(ctx).api
    real_send = api.send_template
    now = {"t": AT}
    monkeypatch.setattr(clock, "now_utc", lambda: now["t"])
    calls = {"n": 0}

    def slow_fifth(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 5:
            now["t"] = LATER
            _settled_meanwhile(ctx, db, "o-4", "close", note="已电话告知")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(api, "send_template", slow_fifth)
    run_notifications(ctx, api, DAY, AT)
    db.expire_all()
    rows = {n.openid: (n.status, n.attempts) for n in db.scalars(select(WeChatNotice))}
    assert rows.pop("o-4")[0] == NoticeStatus.CLOSED
    assert set(rows.values()) == {(NoticeStatus.PENDING, 0)}  # the four the run still owned: put back as they were


def test_a_claim_younger_than_a_quarter_hour_is_not_shown_as_interrupted(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sum of the client's timeouts is no bound on a send (a read timeout is per read: a server trickling bytes
    keeps one answer alive for longer; DNS and Redis are outside it; a frozen VM): 210 s showed a notice still in
    flight to staff as 发送中断（发送时服务停止）, and a resend duplicated it. The bound is now a quarter of an hour,
    and the reason says only that the send did not finish."""
    nid = _died_mid_send(ctx, db, monkeypatch, "o-young", 25)
    _hold(monkeypatch, AT + dt.timedelta(minutes=10))
    assert nid not in [r.id for r in stuck_notices(db, SUPERVISOR)]
    _hold(monkeypatch, AT + dt.timedelta(minutes=16))
    [row] = [r for r in stuck_notices(db, SUPERVISOR) if r.id == nid]
    assert row.error_zh == "发送未完成，可能已经送达" and "服务停止" not in row.error_zh
