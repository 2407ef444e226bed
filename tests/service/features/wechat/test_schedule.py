"""Wiring of the one refresher: the app's embedded schedule sends a due reminder on its own; in scale-out the
token lives in Redis, shared by every process, and fetched once."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.features.wechat import WeChatApi
from service.features.wechat.runtime import token_store, wechat_config
from service.features.wechat.tokens import RedisTokenStore
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by

# Reminders are sent in the bureau's daytime only (test_notify_hours.py); these run at 10:00 of its day.
pytestmark = pytest.mark.usefixtures("daytime")


def test_the_embedded_schedule_sends_reminders_by_itself(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date.today() + dt.timedelta(days=5))
    certified_by(db, ctx, b, "o-embedded")  # reminders go to the openid that certified the person
    db.commit()
    ctx.settings.wechat.schedule_s = 0.2
    with TestClient(create_app(ctx=ctx)):
        deadline = time.monotonic() + 20
        while not fake_wx.state.sent_templates and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.6)  # a few more runs: still one message
    assert [m["touser"] for m in fake_wx.state.sent_templates] == ["o-embedded"]
    assert fake_wx.state.token_fetches >= 1


def test_scale_out_shares_the_token_through_redis(
    backend_urls: dict[str, str], fake_wx: FakeWeChat, tmp_path: Path
) -> None:
    if not backend_urls["broker_url"].startswith("redis"):
        pytest.skip("the Redis token store belongs to the scale-out backend")
    settings = wechat_settings(fake_wx, tmp_path, worker_mode="celery", broker_url=backend_urls["broker_url"])
    config = wechat_config(settings)
    assert config is not None
    stores = [token_store(settings) for _ in range(4)]  # as if four processes
    for s in stores:
        assert isinstance(s, RedisTokenStore)
        s._redis.delete("pension-cert:wechat:access_token")  # a clean start for this test
    apis = [WeChatApi(config, s) for s in stores]
    fake_wx.state.media["m"] = b"\xff\xd8r"
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda i: apis[i % 4].download_media("m")[0], range(8))) == {b"\xff\xd8r"}
    assert fake_wx.state.token_fetches == 1
    fake_wx.state.expire_all_tokens()
    apis[0].download_media("m")
    apis[3].download_media("m")  # another process uses the token the first one refreshed
    assert fake_wx.state.token_fetches == 2
