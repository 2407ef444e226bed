"""The JS-SDK config's body is the dict the WeChat API built, unchanged by its response model (issue 20)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.features.wechat.conftest import PUBLIC
from tests.service.features.wechat.fake_wechat import FakeWeChat


def test_jssdk_config_body_has_exactly_the_wx_config_keys(client: TestClient, fake_wx: FakeWeChat) -> None:
    r = client.get("/api/v1/wechat/jssdk-config", params={"url": f"{PUBLIC}/h5/certify?mode=self"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["appId", "timestamp", "nonceStr", "signature", "jsApiList"]
    assert isinstance(body["timestamp"], int) and body["jsApiList"] == ["chooseImage", "uploadImage"]
