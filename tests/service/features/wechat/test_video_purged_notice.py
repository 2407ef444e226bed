"""The notice of a manual review's video deleted after its hold (notice_queue.ASSIST_VIDEO, queued by the console's
daily upkeep through FeatureHooks.review_video_purged: console/assist_hold_end.py), sent through the fake WeChat
server: held at night as reminders are (the daily purge runs at 01:00), sent in the morning with the result
template (no template of its own configured), once, in Chinese."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from service.certification import retention
from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_queue import ASSIST_VIDEO
from service.features.wechat.notify import run_notifications
from service.infra import clock
from tests.service.features.console.test_assist_video_purge import _aged_with_media, _filed, _purged
from tests.service.features.console.test_assist_video_review import OPENID, _rejected
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import channel, sent_to
from tests.service.features.wechat.test_notify_hours import china


def test_the_requester_hears_of_the_deleted_video_in_the_morning_once(
    ctx: ServiceContext, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 1, 0))  # the daily run's hour
    night = utcnow()  # as the run reads it: naive UTC
    _, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    hold, kept = ctx.settings.storage.review_video_hold_days, ctx.settings.storage.retention_days
    keys = _aged_with_media(ctx, sid, night - dt.timedelta(days=kept + hold + 2))
    _filed(ctx, rid, night - dt.timedelta(days=hold))  # nobody in staff acted on it: its hold ends this run
    retention.storage_upkeep(ctx, night)
    assert _purged(ctx, sid, keys)
    api = channel(ctx).api
    assert run_notifications(ctx, api).sent == 0
    assert sent_to(fake_wx, "tpl-result") == []
    with ctx.db() as db:
        notice = db.scalars(select(WeChatNotice).where(WeChatNotice.kind == ASSIST_VIDEO)).one()
        assert (notice.openid, notice.status) == (OPENID, NoticeStatus.PENDING)

    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 9, 0))
    assert run_notifications(ctx, api).sent == 1
    [message] = [m for m in fake_wx.state.sent_templates if m["template_id"] == "tpl-result"]
    assert message["touser"] == OPENID
    text = {k: str(v["value"]) for k, v in message["data"].items()}
    assert text["first"] == "王秀兰的人工审核申请：视频已删除" and text["keyword2"] == "视频已按保存期限删除"
    assert "上门认证" in text["remark"] and "社保经办窗口" in text["remark"]
    retention.storage_upkeep(ctx, night + dt.timedelta(days=1))  # the next night's run
    monkeypatch.setattr(clock, "now_utc", lambda: china(23, 9, 0))
    assert run_notifications(ctx, api).sent == 0
    assert sent_to(fake_wx, "tpl-result") == [OPENID]
