"""Notifications through the fake WeChat server: the result message, the due-soon reminder and the overdue
notice are each sent once however often the schedule runs; failed sends are retried, then given up with a
record; a new validity period re-arms the reminders; the schedule's tick also refreshes the token."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.context import ServiceContext
from service.db.models import Channel, SessionState, utcnow
from service.db.wechat_models import NoticeStatus, WeChatNotice, WeChatSessionLink, WeChatUser
from service.sessions import create_session
from service.wechat.notify import run_notifications
from service.wechat.runtime import WeChatChannel, build_channel
from service.wechat.schedule import tick
from tests.service import factories
from tests.service.wechat.fake_wechat import FakeWeChat

TODAY = dt.date(2026, 11, 22)


def channel(ctx: ServiceContext) -> WeChatChannel:
    ch = build_channel(ctx.settings)
    assert ch is not None
    return ch


def sent_to(fake: FakeWeChat, template: str) -> list[str]:
    return [m["touser"] for m in fake.state.sent_templates if m["template_id"] == template]


def test_each_reminder_is_sent_once(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    due = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + dt.timedelta(days=10))
    late = factories.beneficiary(db, ctx.keyring, name="钱德明", valid_until=TODAY - dt.timedelta(days=3))
    fine = factories.beneficiary(db, ctx.keyring, name="孙立群", valid_until=TODAY + dt.timedelta(days=200))
    for openid, b in (("o-due", due), ("o-late", late), ("o-fine", fine)):
        db.add(WeChatUser(openid=openid, beneficiary_id=b.id))
    db.commit()
    api = channel(ctx).api

    first = run_notifications(ctx, api, TODAY)
    assert (first.queued, first.sent) == (2, 2)
    for _ in range(3):  # the schedule runs again and again (and the next day)
        again = run_notifications(ctx, api, TODAY + dt.timedelta(days=1))
        assert (again.queued, again.sent) == (0, 0)
    assert sent_to(fake_wx, "tpl-due") == ["o-due"]
    assert sent_to(fake_wx, "tpl-overdue") == ["o-late"]
    msg = next(m for m in fake_wx.state.sent_templates if m["template_id"] == "tpl-due")
    assert "赵淑珍" in msg["data"]["first"]["value"]
    assert msg["data"]["keyword1"]["value"] == str(due.valid_until)

    # Certified again: a new validity period, and its own reminder when that one comes due.
    due.valid_until = TODAY + dt.timedelta(days=365)
    db.commit()
    later = run_notifications(ctx, api, TODAY + dt.timedelta(days=350))
    assert sent_to(fake_wx, "tpl-due") == ["o-due", "o-due"]
    assert sent_to(fake_wx, "tpl-overdue") == ["o-late", "o-fine"]  # 孙立群's period ran out meanwhile
    assert later.sent == 2


def test_result_message_once_with_retries_and_a_record(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    b = factories.beneficiary(db, ctx.keyring, valid_until=TODAY + dt.timedelta(days=364))
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
    db.add(WeChatSessionLink(session_id=s.id, openid="o-result"))
    db.commit()
    api = channel(ctx).api
    assert run_notifications(ctx, api, TODAY).queued == 0  # not decided yet: nothing to tell

    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow()
    db.commit()
    fake_wx.state.fail_sends = 2  # WeChat is busy twice
    assert run_notifications(ctx, api, TODAY).sent == 0
    assert run_notifications(ctx, api, TODAY).sent == 0
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.ref == s.id))
    assert notice is not None
    db.refresh(notice)
    assert notice.status == NoticeStatus.PENDING and notice.attempts == 2
    assert "system error" in (notice.last_error or "")
    assert run_notifications(ctx, api, TODAY).sent == 1
    assert run_notifications(ctx, api, TODAY).sent == 0
    db.refresh(notice)
    assert notice.status == NoticeStatus.SENT and notice.attempts == 3 and notice.msgid
    [msg] = [m for m in fake_wx.state.sent_templates if m["template_id"] == "tpl-result"]
    assert msg["touser"] == "o-result" and msg["data"]["keyword1"]["value"] == "认证通过"
    assert msg["url"].endswith(f"/h5/result/{s.id}")


def test_a_notice_is_given_up_after_the_attempts(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    b = factories.beneficiary(db, ctx.keyring, valid_until=TODAY - dt.timedelta(days=1))
    db.add(WeChatUser(openid="o-unreachable", beneficiary_id=b.id))
    db.commit()
    api = channel(ctx).api
    fake_wx.state.fail_sends = 100
    runs = [run_notifications(ctx, api, TODAY) for _ in range(ctx.settings.wechat_notify_max_attempts + 2)]
    assert sum(r.failed for r in runs) == 1
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.openid == "o-unreachable"))
    assert notice is not None
    db.refresh(notice)
    assert notice.status == NoticeStatus.FAILED and notice.attempts == ctx.settings.wechat_notify_max_attempts
    assert sent_to(fake_wx, "tpl-overdue") == []


def test_the_schedule_tick_refreshes_the_token_centrally(ctx: ServiceContext, fake_wx: FakeWeChat) -> None:
    ch = channel(ctx)
    tick(ctx, ch)
    tick(ctx, ch)
    assert fake_wx.state.token_fetches == 2  # one proactive refresh per tick, none by the senders
    fake_wx.state.media["m"] = b"\xff\xd8x"
    ch.api.download_media("m")
    assert fake_wx.state.token_fetches == 2
