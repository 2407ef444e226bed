"""The end of a manual review's video hold, told before and after (console/assist_hold_end.py, run by the daily
upkeep right after the retention purge). Before, a request for a manual review (人工审核) nobody in staff handled
reached the end of its hold in silence: no supervisor was warned while the video could still be watched, the purge
deleted it, and the requester heard nothing. Now a supervisor's alert is raised once, `REVIEW_VIDEO_WARN_DAYS`
ahead, and once the purge took the video the requester is told once through the WeChat notice queue. SQLite and
PostgreSQL (the `ctx` fixture's backends); two runs at once on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from service.certification import retention
from service.certification.context import ServiceContext
from service.certification.models import Certification, utcnow
from service.features.console import assist
from service.features.console.assist_hold_end import ALERT, hold_upkeep
from service.features.console.models import AssistRequest, AssistStatus, ConsoleAlert
from service.features.wechat.models import WeChatNotice, WeChatSessionLink
from service.features.wechat.notice_message import compose
from service.features.wechat.notice_queue import ASSIST_VIDEO
from service.infra.clock import local_date, local_today
from tests.service import factories
from tests.service.features.console.conftest import csrf_of, login
from tests.service.features.console.test_assist_video_purge import _aged_with_media, _close, _filed, _purged
from tests.service.features.console.test_assist_video_review import OPENID, _rejected
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)


def _waiting(ctx: ServiceContext, days_left: float, now: dt.datetime) -> tuple[int, str, int, list[str]]:
    """A manual-review request whose hold ends `days_left` days after `now` (filed `hold - days_left` days before
    it), on a video past its own retention period, stored: (person, session, request, media keys)."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    hold, kept = ctx.settings.storage.review_video_hold_days, ctx.settings.storage.retention_days
    keys = _aged_with_media(ctx, sid, now - dt.timedelta(days=kept + hold + 2))
    _filed(ctx, rid, now - dt.timedelta(days=hold - days_left))
    return bid, sid, rid, keys


def _alerts(ctx: ServiceContext) -> list[ConsoleAlert]:
    with ctx.db() as db:
        return list(db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == ALERT)).all())


def _notices(ctx: ServiceContext) -> list[tuple[str, str]]:
    with ctx.db() as db:
        rows = db.execute(select(WeChatNotice.ref, WeChatNotice.openid).where(WeChatNotice.kind == ASSIST_VIDEO))
        return [(ref, openid) for ref, openid in rows]


def test_supervisors_are_warned_once_before_the_video_goes(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Five days of the hold left (the lead is three): no alert. Two days left: the daily run (the purge keeps the
    video) raises one alert naming the request and the day its video is kept to; the next runs raise no other. A
    supervisor sees it on /console/alerts and, the request closed, marks it handled as any alert."""
    now = utcnow()
    lead = ctx.settings.storage.review_video_warn_days
    assert lead == 3
    bid, sid, rid, keys = _waiting(ctx, lead + 2, now)
    retention.storage_upkeep(ctx, now)
    assert _alerts(ctx) == [], "warned before the lead window"
    _filed(ctx, rid, now - dt.timedelta(days=ctx.settings.storage.review_video_hold_days - 2))  # two days left
    counts = retention.storage_upkeep(ctx, now)
    assert counts["review_holds_warned"] == 1 and not _purged(ctx, sid, keys)
    retention.storage_upkeep(ctx, now)
    assert hold_upkeep(ctx, now + dt.timedelta(days=1)) == {"review_holds_warned": 0, "review_videos_purged_told": 0}
    [alert] = _alerts(ctx)
    kept_until = local_date(ctx.settings, now + dt.timedelta(days=2) - retention.PURGE_AHEAD)
    assert alert.beneficiary_id == bid and not alert.resolved
    assert alert.detail["request"] == rid and alert.detail["kept_until"] == kept_until.isoformat()
    login(app_client, "sup1")
    page = app_client.get("/console/alerts").text
    assert "人工审核视频即将删除" in page and f'/console/requests/{rid}"' in page
    assert f"其视频只保留到 {kept_until.isoformat()}" in page
    _close(ctx, rid)
    note = {"csrf": csrf_of(page), "note": "已电话联系，安排上门认证", "seen": "1"}
    app_client.post(f"/console/alerts/{alert.id}/resolve", data=note, follow_redirects=False)
    [alert] = _alerts(ctx)
    assert alert.resolved and alert.detail["resolve_note"] == "已电话联系，安排上门认证"
    retention.storage_upkeep(ctx, now)
    assert len(_alerts(ctx)) == 1  # handled, never raised again


def test_no_warning_for_a_request_closed_or_answered(ctx: ServiceContext) -> None:
    """Three requests two days from the end of their hold, their videos still stored (the upkeep run alone, no purge
    before it): one staff closed and one a certification answered since it was filed owe no review, no alert; the
    third, open, has its alert."""
    now = utcnow()
    _, _, closed, _ = _waiting(ctx, 2, now)
    _close(ctx, closed)
    bid, _, _, _ = _waiting(ctx, 2, now)
    today = local_today(ctx.settings)
    with ctx.db() as db:  # recorded as any is, left open (assist.answered_sql reads it as answered)
        later = factories.session_row(bid, state="decided", decision="accept")
        db.add(later)
        db.flush()
        valid = today + dt.timedelta(days=365)
        db.add(Certification(beneficiary_id=bid, session_id=later.id, certified_on=today, valid_until=valid, code="c1"))
    _, _, still_open, _ = _waiting(ctx, 2, now)
    assert hold_upkeep(ctx, now)["review_holds_warned"] == 1
    assert [a.detail["request"] for a in _alerts(ctx)] == [still_open]


def test_the_requester_is_told_once_after_the_purge_took_the_video(ctx: ServiceContext) -> None:
    """The hold over, the purge takes the video of the request still open: one notice to the WeChat account that
    filed it, in Chinese, saying the video was deleted and a home visit or the counter is the way on. The runs after
    queue nothing more; a request closed in time (its video purged as closed) is told nothing of it."""
    now = utcnow()
    bid, sid, rid, keys = _waiting(ctx, 0.5, now)  # the hold ends before the next daily run
    _, closed_sid, closed, closed_keys = _waiting(ctx, 0.5, now)
    with ctx.db() as db:  # filed by another account: each requester is told of their own request
        req = db.get(AssistRequest, closed)
        assert req is not None
        req.openid = "openid-closed-in-time"
    _close(ctx, closed)
    assert _notices(ctx) == []
    counts = retention.storage_upkeep(ctx, now)
    assert _purged(ctx, sid, keys) and _purged(ctx, closed_sid, closed_keys)
    assert counts["review_videos_purged_told"] == 1
    retention.storage_upkeep(ctx, now)
    hold_upkeep(ctx, now + dt.timedelta(days=1))
    assert _notices(ctx) == [(f"{bid}:req{rid}", OPENID)]
    with ctx.db() as db:
        notice = db.scalars(select(WeChatNotice).where(WeChatNotice.kind == ASSIST_VIDEO)).one()
        message = compose(db, ctx, notice, local_today(ctx.settings))
        assert message is not None
        fields: dict[str, Any] = message.fields
        assert fields["title"][0] == "王秀兰的人工审核申请：视频已删除" and fields["state"] == "视频已删除"
        step = fields["next_step"][0]
        hold = ctx.settings.storage.review_video_hold_days
        assert f"最长保留{hold}天,现已删除" in step and "上门认证" in step and "社保经办窗口" in step
        assert all(len(short) <= 20 for short in fields["next_step"][1:])
        req = db.get(AssistRequest, rid)
        assert req is not None
        req.status = AssistStatus.CLOSED  # closed before the notice went: its closing's message tells instead
        db.flush()
        assert compose(db, ctx, notice, local_today(ctx.settings)) is None


def test_two_runs_at_once_raise_one_alert(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """PostgreSQL, two transactions: the cycle run and Celery beat each run the upkeep at the same hour. The first
    has raised the alert and not yet committed when the second reads the requests: the second waits for it, then
    finds the alert raised. Nothing twice."""
    ctx = pg_ctx
    now = utcnow()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="王秀兰")
        s = factories.review_session(b.id, decision="reject", reasons=["CHALLENGE_MISSING_ACTION"])
        db.add(s)
        db.flush()
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        req = assist.submit(db, b, "manual_review", "13800138000", "", OPENID, "wechat:x", s.id)
        db.flush()
        req.created_at = now - dt.timedelta(days=ctx.settings.storage.review_video_hold_days - 2)
        rid, sid = req.id, s.id
    _aged_with_media(ctx, sid, now - dt.timedelta(days=ctx.settings.storage.retention_days + 2))
    inserted, go = threading.Event(), threading.Event()

    def pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO console_alerts") and not inserted.is_set():
            inserted.set()
            go.wait(10)

    event.listen(ctx.engine, "after_cursor_execute", pause)
    try:
        first, first_out = started(lambda: hold_upkeep(ctx, now))
        assert inserted.wait(10)
        second, second_out = started(lambda: hold_upkeep(ctx, now))
        second.join(1)
        assert second.is_alive(), "the second run did not wait for the first"
        go.set()
        first.join(30)
        second.join(30)
    finally:
        event.remove(ctx.engine, "after_cursor_execute", pause)
    assert [out["review_holds_warned"] for out in (*first_out, *second_out)] == [1, 0]  # type: ignore[index]
    with ctx.db() as db:
        alerts = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == ALERT)).all()
        assert [a.detail["request"] for a in alerts] == [rid]
