"""An AppID or AppSecret WeChat refuses (the secret reset in the official account's admin console, a typo, the
server's IP not on the account's whitelist): every schedule run, once a minute, fetched a token for the refresh and
again for each pending notice, logged an ERROR each time and spent an attempt of every notice, so within five
runs every pending notice was given up for good. Now the first refusal stops the run without spending anything,
one ERROR says what to fix, and WeChat is not asked again until the back-off passes (doubling up to an hour, a
reminder at most hourly) or the settings change."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.features.wechat import config_guard
from service.features.wechat.client import WeChatApi
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import run_notifications
from service.features.wechat.schedule import tick
from service.infra import clock
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel, sent_to
from tests.service.features.wechat.test_notify_hours import china

T0 = china(22, 10, 0)
DAY = dt.date(2026, 11, 22)


def _due(db: Session, ctx: ServiceContext, n: int) -> None:
    for i in range(n):
        certified_by(db, ctx, factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2026, 12, 10)), f"o-cfg-{i}")
    db.commit()


def _notices(db: Session) -> list[tuple[str, int]]:
    db.expire_all()
    return [(n.status, n.attempts) for n in db.scalars(select(WeChatNotice).order_by(WeChatNotice.id))]


def _at(monkeypatch: pytest.MonkeyPatch, minutes: float) -> dt.datetime:
    """The clock `minutes` after T0 (the back-off runs on the service's clock)."""
    at = T0 + dt.timedelta(minutes=minutes)
    monkeypatch.setattr(clock, "now_utc", lambda: at)
    return at


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("service")]


def test_a_refused_appsecret_stops_asking_wechat_spends_no_attempt_and_logs_once_an_hour(
    ctx: ServiceContext,
    db: Session,
    fake_wx: FakeWeChat,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _due(db, ctx, 3)
    ch = channel(ctx)
    # Ours is now refused: 40001 ("AppSecret错误或者AppSecret不属于这个公众号"), which on any other call means a
    # stale token; on the token fetch (no token sent) it can only mean the settings.
    fake_wx.state.app_secret = "reset-in-the-admin-console"
    caplog.set_level(logging.INFO)
    for minute in range(60):  # an hour of the schedule, once a minute
        _at(monkeypatch, minute)
        tick(ctx, ch)
    assert fake_wx.state.token_calls <= 7, fake_wx.state.token_calls  # 0, 1, 3, 7, 15, 31 min: not 4 a minute
    assert fake_wx.state.template_calls == 0
    assert _notices(db) == [(NoticeStatus.PENDING, 0)] * 3  # nothing given up, no attempt spent
    errors = _errors(caplog)
    assert len(errors) == 1 and "40001" in errors[0] and "WECHAT_APP_SECRET" in errors[0], errors
    assert "reset-in-the-admin-console" not in caplog.text and ctx.settings.wechat.app_secret not in caplog.text
    refused = config_guard.refused(ch.api.store, ch.api.config)
    assert refused is not None and refused.errcode == 40001

    for minute in range(60, 120):  # the second hour: tried once (the back-off reached an hour), one reminder
        _at(monkeypatch, minute)
        tick(ctx, ch)
    assert len(_errors(caplog)) == 2
    assert fake_wx.state.token_calls <= 8

    # The settings changed (the new secret configured): asked at once, whatever the back-off, and everyone told.
    fixed = WeChatApi(dataclasses.replace(ch.api.config, app_secret="reset-in-the-admin-console"), ch.api.store)
    run = run_notifications(ctx, fixed, DAY, _at(monkeypatch, 121))
    assert run.sent == 3 and sorted(sent_to(fake_wx, "tpl-due")) == ["o-cfg-0", "o-cfg-1", "o-cfg-2"]
    assert config_guard.refused(fixed.store, fixed.config) is None


def test_once_wechat_accepts_the_account_again_the_next_try_after_the_back_off_sends(
    ctx: ServiceContext,
    db: Session,
    fake_wx: FakeWeChat,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _due(db, ctx, 2)
    api = channel(ctx).api
    fake_wx.state.app_id = "wx-another-account"  # our AppID refused: 40013
    assert run_notifications(ctx, api, DAY, _at(monkeypatch, 0)).sent == 0
    [error] = _errors(caplog)
    assert "40013" in error and "fix WECHAT_APP_ID" in error, error
    assert _notices(db) == [(NoticeStatus.PENDING, 0)] * 2
    calls = fake_wx.state.token_calls
    fake_wx.state.app_id = "wx-test-app"  # the whitelist or the account fixed at WeChat's side
    assert run_notifications(ctx, api, DAY, _at(monkeypatch, 0.5)).sent == 0  # within the back-off
    assert fake_wx.state.token_calls == calls
    assert run_notifications(ctx, api, DAY, _at(monkeypatch, 2)).sent == 2
    assert config_guard.refused(api.store, api.config) is None


@pytest.mark.parametrize(
    ("errcode", "named"),
    [
        (40164, "IP whitelist (IP白名单)"),
        (40243, "WECHAT_APP_SECRET (frozen"),
        (89503, "administrator"),
        (40125, "WECHAT_APP_SECRET"),
    ],
)
def test_every_refusal_of_the_settings_names_what_to_fix_and_spends_nothing(
    ctx: ServiceContext,
    db: Session,
    fake_wx: FakeWeChat,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    errcode: int,
    named: str,
) -> None:
    """The IP off the whitelist, the AppSecret frozen, the IP awaiting the administrator's confirmation, a
    malformed secret: answered alike to every call, so the same back-off and one ERROR that says what to fix."""
    _due(db, ctx, 2)
    ch = channel(ctx)
    fake_wx.state.token_refusal = errcode
    for minute in range(10):
        _at(monkeypatch, minute)
        tick(ctx, ch)
    assert fake_wx.state.token_calls <= 4 and fake_wx.state.template_calls == 0, fake_wx.state.token_calls  # 0,1,3,7
    assert _notices(db) == [(NoticeStatus.PENDING, 0)] * 2
    [error] = _errors(caplog)
    assert str(errcode) in error and named in error, error


def test_40001_on_a_send_is_a_stale_token_not_refused_settings(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40001 marks the settings refused only on the token fetch (no token sent); a send answered 40001 ("access
    token invalid or not latest": another system fetched one) is refreshed once and sent."""
    _due(db, ctx, 2)
    api = channel(ctx).api
    fake_wx.state.stale_token_errcode = 40001
    api.access_token()
    fake_wx.state.expire_all_tokens()
    assert run_notifications(ctx, api, DAY, _at(monkeypatch, 0)).sent == 2
    assert config_guard.refused(api.store, api.config) is None and fake_wx.state.token_fetches == 2


def _gauge(text: str, name: str, label: str) -> float:
    [line] = [ln for ln in text.splitlines() if ln.startswith(f"{name}{{{label}}}")]
    return float(line.rsplit(" ", 1)[1])


def test_metrics_show_why_sending_is_paused_and_the_notices_waiting_for_staff(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pause marks live in the channel's token store, which /metrics did not reach: a spent quota or refused
    settings stopped every notice with nothing to alert on but the log."""
    from service.adapters.http.app import create_app  # lazy: the whole app only for this test

    _due(db, ctx, 3)
    with TestClient(create_app(ctx=ctx)) as client:
        api = client.app.state.wechat.api  # type: ignore[attr-defined]
        paused = "pension_cert_wechat_paused"
        text = client.get("/metrics").text
        assert _gauge(text, paused, 'reason="configuration"') == 0 and _gauge(text, paused, 'reason="quota_spent"') == 0
        fake_wx.state.app_secret = "reset"
        run_notifications(ctx, api, DAY, _at(monkeypatch, 0))
        assert _gauge(client.get("/metrics").text, paused, 'reason="configuration"') == 1
        fake_wx.state.app_secret = "test-secret"
        fake_wx.state.quota_left, fake_wx.state.unsubscribed = (
            1,
            {"o-cfg-0"},
        )  # one refused for good, one sent, then 45009
        run_notifications(ctx, api, DAY, _at(monkeypatch, 5))
        text = client.get("/metrics").text
        assert _gauge(text, paused, 'reason="configuration"') == 0 and _gauge(text, paused, 'reason="quota_spent"') == 1
        staff = "pension_cert_wechat_notices_for_staff"
        assert _gauge(text, staff, 'state="failed"') == 1 and _gauge(text, staff, 'state="answer_lost"') == 0
