"""The scheduled refresher renews the access token before it expires, not on every run: WeChat allows 2000
token fetches a day per account (cgi-bin/token), and each fetch invalidates the previous token. Fetching on
every tick spent 1440 a day at the default 60-s schedule and ran out of the quota at 30 s, after which every
result message, reminder and JS-SDK signature of the day failed (errcode 45009)."""

from __future__ import annotations

import types

import pytest

from service.certification.context import ServiceContext
from service.features.wechat import client, tokens
from service.features.wechat.client import TOKEN_KEY
from service.features.wechat.schedule import tick
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import channel

pytestmark = pytest.mark.usefixtures("daytime")
DAY_S = 86400


def test_a_day_of_scheduled_runs_fetches_the_token_only_before_it_expires(
    ctx: ServiceContext, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_800_000_000.0]
    fake_time = types.SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr(client, "time", fake_time)  # the token's clock only (its expiry: WeChat's 7200 s)
    monkeypatch.setattr(tokens, "time", fake_time)
    ctx.settings.wechat.schedule_s = 600.0
    ch = channel(ctx)
    start = now[0]
    while now[0] - start < DAY_S:
        tick(ctx, ch)
        value, expires_at = ch.api.store.get(TOKEN_KEY) or ("", 0.0)
        # Good until the next run: nothing of ours ever holds an expired token.
        assert value in fake_wx.state.valid_tokens and expires_at - now[0] > ctx.settings.wechat.schedule_s
        now[0] += ctx.settings.wechat.schedule_s
    # Renewed when less than one run plus the margin (300 s) is left: every 6600 s, 14 fetches in the day
    # (144 runs; one fetch per run before).
    assert fake_wx.state.token_fetches == 14
