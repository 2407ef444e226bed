"""The campaign's first morning (集中认证): hundreds of thousands of reminders are due on one day, more than WeChat's
daily template-message quota. WeChat answers 45009 once the day's quota is spent (45011 past a minute's): every
further send that day is refused too. The run used to try every pending notice anyway (one refused call each,
every minute) and counted an attempt for each, so after `WECHAT_NOTIFY_MAX_ATTEMPTS` runs every pensioner not
reached before the quota ran out was marked failed for good and never reminded. An account that unfollowed
(43004) was asked again on every run until its attempts ran out, spending the quota others need; WeChat out of
reach failed everyone pending within five runs; and each minute's run cost two statements per due person."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Channel, SessionState, utcnow
from service.certification.sessions import create_session
from service.features.wechat import quota
from service.features.wechat.models import NoticeStatus, WeChatNotice, WeChatSessionLink
from service.features.wechat.notify import queue_notices, run_notifications
from service.features.wechat.runtime import build_channel
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel, sent_to
from tests.service.features.wechat.test_notify_hours import china


def _closed_port() -> str:
    with socket.socket() as sock:  # bound, never listening: a connection is refused at once
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


CLOSED = _closed_port()


def _due(db: Session, ctx: ServiceContext, n: int) -> list[str]:
    openids = [f"o-peak-{i:02d}" for i in range(n)]
    for openid in openids:
        b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2026, 12, 10))  # due soon on 22 November
        certified_by(db, ctx, b, openid)
    db.commit()
    return openids


def _notices(db: Session) -> list[WeChatNotice]:
    db.expire_all()
    return list(db.scalars(select(WeChatNotice).order_by(WeChatNotice.id)))


def test_a_spent_daily_quota_pauses_the_reminders_until_tomorrow_and_fails_nobody(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    openids = _due(db, ctx, 12)
    api = channel(ctx).api
    fake_wx.state.quota_left = 5  # the day's quota runs out after five messages

    first = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 8, 0))
    assert (first.queued, first.sent, first.failed) == (12, 5, 0)
    assert fake_wx.state.template_calls == 6  # the refused one, and no call for the seven others
    for minute in range(1, 9):  # the schedule runs every minute for the rest of the day
        again = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 8, minute))
        assert (again.sent, again.failed) == (0, 0)
    assert fake_wx.state.template_calls == 6  # WeChat is not asked again the day its quota is spent
    waiting = [n for n in _notices(db) if n.status != NoticeStatus.SENT]
    assert len(waiting) == 7
    assert all(n.status == NoticeStatus.PENDING and n.attempts == 0 for n in waiting)  # nobody failed, no try spent
    assert "45009" in (waiting[0].last_error or "")

    fake_wx.state.quota_left = None  # WeChat's quota is renewed at midnight, China time
    next_day = run_notifications(ctx, api, dt.date(2026, 11, 23), china(23, 8, 0))
    assert (next_day.sent, next_day.failed) == (7, 0)
    assert sorted(sent_to(fake_wx, "tpl-due")) == openids  # everyone reached, nobody twice


def test_a_minute_quota_stops_the_run_and_the_next_run_goes_on(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    _due(db, ctx, 6)
    api = channel(ctx).api
    fake_wx.state.quota_left, fake_wx.state.quota_errcode = 2, 45011  # too many a minute

    assert run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 0)).sent == 2
    assert fake_wx.state.template_calls == 3
    fake_wx.state.quota_left = None  # the next minute
    assert run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 1)).sent == 4
    assert all(n.status == NoticeStatus.SENT for n in _notices(db))


def test_an_account_that_unfollowed_is_given_up_at_once(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    openids = _due(db, ctx, 3)
    api = channel(ctx).api
    fake_wx.state.unsubscribed = {openids[1]}

    run = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 10, 0))
    assert (run.sent, run.failed) == (2, 1)
    for minute in range(1, 4):
        run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 10, minute))
    assert fake_wx.state.template_calls == 3  # asked once, not once a run until its attempts ran out
    [gone] = [n for n in _notices(db) if n.openid == openids[1]]
    assert (gone.status, gone.attempts) == (NoticeStatus.FAILED, 1)
    assert "43004" in (gone.last_error or "")


def test_a_token_that_expires_mid_run_is_renewed_once_and_the_run_goes_on(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """Checked, already sound: 42001 in the middle of a long run renews the shared token once, and the refused
    message is sent again with it; nobody is skipped, no attempt is lost."""
    openids = _due(db, ctx, 6)
    api = channel(ctx).api
    fake_wx.state.expire_tokens_after = 3

    run = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 0))
    assert (run.sent, run.failed) == (6, 0)
    assert fake_wx.state.token_fetches == 2  # renewed once (the 42001 is answered before a send is counted)
    assert sorted(sent_to(fake_wx, "tpl-due")) == openids
    assert all(n.attempts == 1 for n in _notices(db))


def test_wechat_unreachable_stops_the_run_and_fails_nobody(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, tmp_path: Path
) -> None:
    """WeChat (or the way out to it) down for a few minutes on the campaign's morning: every pending notice was
    tried in turn, each waiting out the timeout and spending an attempt, so one run lasted for hours and five runs
    failed everyone for good. The run now stops at the first unreachable send, the notice put back untouched."""
    openids = _due(db, ctx, 5)
    down = wechat_settings(fake_wx, tmp_path, database_url=ctx.settings.database_url, wechat_api_base_url=CLOSED)
    unreachable = build_channel(down)
    assert unreachable is not None
    for minute in range(7):
        run = run_notifications(ctx, unreachable.api, dt.date(2026, 11, 22), china(22, 9, minute))
        assert (run.sent, run.failed) == (0, 0)
    assert all(n.status == NoticeStatus.PENDING and n.attempts == 0 for n in _notices(db))

    back = run_notifications(ctx, channel(ctx).api, dt.date(2026, 11, 22), china(22, 9, 10))
    assert (back.sent, back.failed) == (5, 0)
    assert sorted(sent_to(fake_wx, "tpl-due")) == openids


def test_a_run_with_nothing_new_to_record_costs_a_few_statements_not_several_per_person(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The schedule runs every minute, and in a campaign everyone is due: each run looked every due person up again
    (is a session of theirs under way, is their notice recorded: two statements a person), hundreds of thousands of
    statements a minute on the busiest days. Already-recorded notices are now found in a few statements."""
    _due(db, ctx, 120)
    with ctx.db() as unit:
        assert queue_notices(unit, ctx, dt.date(2026, 11, 22)) == 120
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    conn = db.connection()
    event.listen(conn, "before_cursor_execute", count)
    try:
        assert queue_notices(db, ctx, dt.date(2026, 11, 22)) == 0
    finally:
        event.remove(conn, "before_cursor_execute", count)
    assert len(statements) <= 12, len(statements)


def _decided_result(db: Session, ctx: ServiceContext, openid: str) -> None:
    """A certification decided just now from `openid`'s WeChat: its result message is due (at any hour)."""
    b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2027, 11, 21))
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow()
    db.add(WeChatSessionLink(session_id=s.id, openid=openid))
    db.commit()


def test_the_spent_quota_ends_at_midnight_beijing_time_whatever_the_bureaus_time_zone(
    ctx: ServiceContext,
    db: Session,
    fake_wx: FakeWeChat,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """WeChat renews its quota at midnight Beijing time. The spent mark was the bureau's date: in Urumqi (UTC+6)
    every send, results too, was held two hours past the renewal. The pause is told once, as a warning."""
    monkeypatch.setattr(ctx.settings, "time_zone", "Asia/Urumqi")
    for openid in ("o-first", "o-second", "o-third"):
        _decided_result(db, ctx, openid)
    api = channel(ctx).api
    fake_wx.state.quota_left = 1
    caplog.set_level(logging.WARNING, logger="service.features.wechat")

    assert run_notifications(ctx, api, now=china(22, 23, 50)).sent == 1  # 21:50 in Urumqi
    assert run_notifications(ctx, api, now=china(22, 23, 55)).sent == 0
    assert fake_wx.state.template_calls == 2  # the refused one; not asked again before midnight in Beijing
    fake_wx.state.quota_left = None  # renewed at 00:00 Beijing time, 22:00 in Urumqi
    assert run_notifications(ctx, api, now=china(23, 0, 5)).sent == 2
    paused = [r for r in caplog.records if "quota is spent" in r.getMessage()]
    assert len(paused) == 1 and paused[0].levelno >= logging.WARNING, [r.getMessage() for r in paused]
    assert "北京时间" in paused[0].getMessage() or "Beijing" in paused[0].getMessage()


def test_another_accounts_appid_stops_the_run_and_gives_nobody_up(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    """The service configured with another official account's AppID and secret: the token is valid, every openid
    unknown (40003). Each notice was given up at once (an unknown openid is not asked again), so one run marked
    every pending result, reminder and revocation notice failed for good. A run of such answers in a row now
    stops the run with every notice put back untouched, and one error names the likely mistake."""
    openids = _due(db, ctx, 8)
    api = channel(ctx).api
    fake_wx.state.other_account = True
    caplog.set_level(logging.ERROR, logger="service.features.wechat")

    for minute in range(3):
        run = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, minute))
        assert (run.sent, run.failed) == (0, 0)
    assert fake_wx.state.template_calls == 3 * quota.MISCONFIGURED_AFTER
    assert all(n.status == NoticeStatus.PENDING and n.attempts == 0 for n in _notices(db))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3 and all("WECHAT_APP_ID" in e for e in errors), errors

    fake_wx.state.other_account = False  # the operator corrects the AppID
    back = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 10))
    assert (back.sent, back.failed) == (8, 0)
    assert sorted(sent_to(fake_wx, "tpl-due")) == openids


def test_unknown_openids_between_known_ones_are_given_up_and_the_run_goes_on(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """Checked with the stop above: 40003 for some accounts (not five in a row) gives those notices up at once, and
    the run sends the others."""
    openids = _due(db, ctx, 12)
    unknown = {o for i, o in enumerate(openids) if i % 3 != 2}  # two in a row, then one known, four times over
    fake_wx.state.unknown_openids = unknown
    run = run_notifications(ctx, channel(ctx).api, dt.date(2026, 11, 22), china(22, 9, 0))
    assert (run.sent, run.failed) == (4, 8)
    assert {n.openid for n in _notices(db) if n.status == NoticeStatus.FAILED} == unknown


def test_a_message_wechat_took_but_answered_too_late_is_never_sent_twice_and_the_others_go_out(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """A read timeout comes after the request was written: WeChat may have delivered the message. It was taken for
    WeChat out of reach (the notice put back, the run stopped), so the first pending notice was sent again every
    minute (12 runs: 12 messages to one pensioner) and nothing behind it went out. It is now left as a send that
    may have happened (`sending`, as after a crash mid-send: never sent again); the run stops and the next goes on."""
    openids = _due(db, ctx, 3)
    api = channel(ctx).api
    api.client.timeout = 0.2
    fake_wx.state.answer_late_s = 0.6
    for minute in range(6):
        run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, minute))
    got = sent_to(fake_wx, "tpl-due")
    assert sorted(got) == openids  # each exactly once
    notices = _notices(db)
    assert all(n.status == NoticeStatus.SENDING and n.attempts == 1 for n in notices), [
        (n.status, n.attempts) for n in notices
    ]
    assert all("may have been delivered" in (n.last_error or "") for n in notices)


def test_five_stale_openids_first_are_given_up_once_a_send_behind_them_succeeds(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    """Five accounts WeChat no longer knows, recorded first: five 40003 in a row stop the run as a wrong AppID would,
    the five put back; the next run began with the same five and stopped again, every minute, for good, while the
    configuration was fine. The next run now tries the notices behind them first: one sent shows the AppID is
    right, and the five are given up as the unknown accounts they are."""
    openids = _due(db, ctx, 7)
    fake_wx.state.unknown_openids = set(openids[:5])
    api = channel(ctx).api
    caplog.set_level(logging.ERROR, logger="service.features.wechat")
    first = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 0))
    assert (first.sent, first.failed) == (0, 0)  # as a wrong AppID: nobody given up in one run
    second = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 1))
    assert (second.sent, second.failed) == (2, 5)
    assert sorted(sent_to(fake_wx, "tpl-due")) == openids[5:]
    assert {n.openid for n in _notices(db) if n.status == NoticeStatus.FAILED} == set(openids[:5])
    for minute in range(2, 5):
        run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, minute))
    assert fake_wx.state.template_calls == 5 + 7  # nothing asked again
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


# The real exception chains (closed port, untrusted certificate, proxy, hang-up, read timeout): test_send_unreached.py.
