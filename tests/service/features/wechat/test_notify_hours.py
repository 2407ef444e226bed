"""Reminders reach a pensioner in the bureau's daytime, not when their date turns due at local midnight: the
schedule runs every minute, so without a rule the first run after 00:00 China time sent every new due-soon,
overdue and suspension notice in the middle of the night. A result message answers what the person has just
done and still goes out at once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Channel, SessionState, utcnow
from service.certification.sessions import create_session
from service.features.wechat.models import NoticeStatus, WeChatNotice, WeChatSessionLink
from service.features.wechat.notify import run_notifications
from service.infra import clock
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel, sent_to


def china(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """An instant given as China time (UTC+8) in November 2026."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=8))).astimezone(dt.UTC)


def test_a_reminder_due_at_midnight_waits_for_the_morning(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ctx.settings.time_zone == "Asia/Shanghai"
    # 29 days left on 22 November: due soon from 00:00 that day (DUE_SOON_DAYS 30).
    b = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=dt.date(2026, 12, 21))
    certified_by(db, ctx, b, "o-night")
    db.commit()
    api = channel(ctx).api

    for instant in (china(21, 23, 59), china(22, 0, 1), china(22, 3, 0), china(22, 7, 59)):
        monkeypatch.setattr(clock, "now_utc", lambda at=instant: at)
        run_notifications(ctx, api)  # the schedule's own call: its day and hour from the clock
        assert sent_to(fake_wx, "tpl-due") == [], instant
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.openid == "o-night"))
    assert notice is not None
    assert (notice.kind, notice.status, notice.attempts) == ("due_soon", NoticeStatus.PENDING, 0)

    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 8, 0))
    assert run_notifications(ctx, api).sent == 1
    assert sent_to(fake_wx, "tpl-due") == ["o-night"]
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 21, 0))
    assert run_notifications(ctx, api).sent == 0  # once


def test_a_result_is_sent_at_night(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="张秀英", valid_until=dt.date(2027, 11, 21))
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow()
    db.add(WeChatSessionLink(session_id=s.id, openid="o-late-owl"))
    db.commit()
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 23, 30))
    assert run_notifications(ctx, channel(ctx).api).sent == 1
    assert sent_to(fake_wx, "tpl-result") == ["o-late-owl"]
