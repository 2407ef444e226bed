"""The service configured against a local fake WeChat server (a real HTTP server on loopback)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.infra import clock
from service.infra.config import Settings
from tests.service.conftest import make_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat

SERVER_TOKEN = "server-url-token"
PUBLIC = "https://cert.example.test"


@pytest.fixture()
def fake_wx() -> Iterator[FakeWeChat]:
    with FakeWeChat() as fake:
        yield fake


def wechat_settings(fake: FakeWeChat, var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "wechat_app_id": fake.state.app_id,
        "wechat_app_secret": fake.state.app_secret,
        "wechat_token": SERVER_TOKEN,
        "wechat_api_base_url": fake.base_url,
        "wechat_oauth_base_url": fake.base_url + "connect/",
        "wechat_templates": {"result": "tpl-result", "due_soon": "tpl-due", "overdue": "tpl-overdue"},
        "wechat_schedule_s": 3600.0,  # tests run the schedule's tick themselves
        "public_base_url": PUBLIC,
        "h5_card_check": False,
    }
    values.update(overrides)
    return make_settings(var_dir, **values)


@pytest.fixture
def settings(tmp_path: Path, backend_urls: dict[str, str], fake_wx: FakeWeChat) -> Settings:
    """Overrides the service conftest's settings: the same database, plus the WeChat channel."""
    return wechat_settings(fake_wx, tmp_path, database_url=backend_urls["database_url"])


@pytest.fixture
def daytime(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dt.datetime:
    """The clock at 10:00 of the bureau's current day: reminders go out only in its daytime (wechat/notify.py
    REMINDER_HOURS), and tests of what they say must not depend on the hour the suite runs."""
    today = clock.local_today(settings)
    at = dt.datetime.combine(today, dt.time(10), tzinfo=ZoneInfo(settings.time_zone)).astimezone(dt.UTC)
    monkeypatch.setattr(clock, "now_utc", lambda: at)
    return at
