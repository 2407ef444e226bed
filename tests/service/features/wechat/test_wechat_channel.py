from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from service.features.wechat import (
    MemoryTokenStore,
    MessageHandler,
    OAuthFlow,
    WeChatApi,
    WeChatConfig,
    WeChatError,
    WeChatMediaExpiredError,
    WeChatUnavailableError,
    verify_signature,
)
from service.features.wechat.client import TOKEN_KEY
from service.features.wechat.oauth import OAUTH_CODE_USED, OAuthStateError
from service.features.wechat.server import HELP
from tests.service.features.wechat.fake_wechat import FakeWeChat

TOKEN = "server-url-token"


@pytest.fixture()
def wx() -> Iterator[FakeWeChat]:
    with FakeWeChat() as fake:
        yield fake


def config_for(wx: FakeWeChat, **overrides: object) -> WeChatConfig:
    values: dict[str, object] = {
        "app_id": wx.state.app_id,
        "app_secret": wx.state.app_secret,
        "token": TOKEN,
        "public_base_url": "https://cert.example.test",
        "api_base_url": wx.base_url,
        "oauth_base_url": wx.base_url + "connect/",
        "templates": {"result": "tpl-result", "due_soon": "tpl-due"},
    }
    values.update(overrides)
    return WeChatConfig(**values)  # type: ignore[arg-type]


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def test_server_url_signature_accepts_good_and_refuses_forged() -> None:
    ts, nonce = "1700000000", "abc123"
    good = sign(TOKEN, ts, nonce)
    assert verify_signature(TOKEN, good, ts, nonce)
    assert not verify_signature(TOKEN, good, ts, "other-nonce")
    assert not verify_signature("another-token", good, ts, nonce)
    assert not verify_signature(TOKEN, "0" * 40, ts, nonce)


def event_xml(event: str, key: str = "") -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[openid-1]]></FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


def test_subscribe_and_menu_click_reply_with_the_certification_link(wx: FakeWeChat) -> None:
    handler = MessageHandler(config_for(wx))
    subscribed = handler.reply(event_xml("subscribe"))
    assert "https://cert.example.test/h5/" in subscribed and "<ToUserName><![CDATA[openid-1]]>" in subscribed
    clicked = handler.reply(event_xml("CLICK", "CERTIFY"))
    assert "https://cert.example.test/h5/" in clicked
    assert handler.reply(event_xml("unsubscribe")) == "success"
    text = handler.reply(
        "<xml><ToUserName>gh</ToUserName><FromUserName>openid-2</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>你好</Content><MsgId>1</MsgId></xml>"
    )
    assert "资格认证" in text and "openid-2" in text


def test_help_welcome_and_the_menu_name_the_home_visit(wx: FakeWeChat) -> None:
    """Before: every answer linked only /h5/; a person who knows they cannot film (blind, bedridden) found the
    request for a home visit only after failing a video. HELP names it, and each answer links the form."""
    assert "上门认证" in HELP
    handler = MessageHandler(config_for(wx))
    text = handler.reply(
        "<xml><ToUserName>gh</ToUserName><FromUserName>openid-2</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>怎么办</Content><MsgId>2</MsgId></xml>"
    )
    for answer in (text, handler.reply(event_xml("subscribe")), handler.reply(event_xml("CLICK", "CERTIFY"))):
        assert '<a href="https://cert.example.test/h5/apply">申请上门认证</a>' in answer, answer
        assert '<a href="https://cert.example.test/h5/">点击开始资格认证</a>' in answer, answer


def test_oauth_round_trip_and_state_mismatch(wx: FakeWeChat) -> None:
    flow = OAuthFlow(config_for(wx), signing_key=b"k" * 32)
    start = flow.start("https://cert.example.test/h5/callback")
    q = parse_qs(urlparse(start.url).query)
    assert q["appid"] == [wx.state.app_id] and q["scope"] == ["snsapi_base"]
    assert q["redirect_uri"] == ["https://cert.example.test/h5/callback"]
    state = q["state"][0]
    wx.state.oauth_codes["code-1"] = "openid-42"
    wx.state.oauth_codes["code-2"] = "openid-43"
    with pytest.raises(OAuthStateError):
        flow.finish("code-2", state, nonce="another-browser")
    with pytest.raises(OAuthStateError):
        flow.finish("code-2", state, nonce=None)
    with pytest.raises(OAuthStateError):
        flow.finish("code-2", "状态" * 8, start.nonce)  # a non-ASCII state is refused, not a TypeError
    assert "code-2" in wx.state.oauth_codes  # refused before asking WeChat
    assert flow.finish("code-1", state, start.nonce) == "openid-42"
    with pytest.raises(WeChatError) as info:
        flow.finish("code-1", state, start.nonce)  # codes are single use
    assert info.value.errcode == OAUTH_CODE_USED  # WeChat's "code been used"


def test_access_token_is_fetched_once_for_all_workers(wx: FakeWeChat) -> None:
    store = MemoryTokenStore()
    workers = [WeChatApi(config_for(wx), store) for _ in range(4)]
    wx.state.media["m1"] = b"\xff\xd8jpeg"
    barrier = threading.Barrier(8)

    def job(i: int) -> bytes:
        barrier.wait()
        return workers[i % 4].download_media("m1")[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(job, range(8))) == {b"\xff\xd8jpeg"}
    assert wx.state.token_fetches == 1


def test_expired_token_is_refreshed_once_and_the_call_retried(wx: FakeWeChat) -> None:
    store = MemoryTokenStore()
    api, other = WeChatApi(config_for(wx), store), WeChatApi(config_for(wx), store)
    wx.state.media["m1"] = b"\xff\xd8a"
    api.download_media("m1")
    wx.state.expire_all_tokens()  # WeChat revoked it early
    assert api.download_media("m1")[0] == b"\xff\xd8a"
    assert wx.state.token_fetches == 2
    assert other.download_media("m1")[0] == b"\xff\xd8a"  # the other worker uses the refreshed token
    assert wx.state.token_fetches == 2
    api.refresh()  # the scheduled refresher keeps a token that lasts (test_token_quota.py)
    assert wx.state.token_fetches == 2
    store.set(TOKEN_KEY, api.access_token(), time.time() + 60)  # expiring within the margin: renewed ahead
    api.refresh()
    assert wx.state.token_fetches == 3


def test_expired_media_id_and_unreachable_wechat_are_distinct_errors(wx: FakeWeChat) -> None:
    api = WeChatApi(config_for(wx), MemoryTokenStore())
    with pytest.raises(WeChatMediaExpiredError) as info:
        api.download_media("three-days-old")
    assert info.value.errcode == 40007
    down = WeChatApi(config_for(wx, api_base_url="http://127.0.0.1:9/"), MemoryTokenStore())
    with pytest.raises(WeChatUnavailableError):
        down.download_media("m1")
    bad_secret = WeChatApi(config_for(wx, app_secret="wrong"), MemoryTokenStore())
    with pytest.raises(WeChatError) as bad:
        bad_secret.download_media("m1")
    assert bad.value.errcode == 40001  # as WeChat answers a wrong AppSecret on the token fetch


def test_jssdk_config_signs_the_page_url(wx: FakeWeChat) -> None:
    api = WeChatApi(config_for(wx), MemoryTokenStore())
    cfg = api.jssdk_config("https://cert.example.test/h5/card?x=1#step2")
    expected = hashlib.sha1(
        f"jsapi_ticket=TICKET-1&noncestr={cfg['nonceStr']}&timestamp={cfg['timestamp']}"
        "&url=https://cert.example.test/h5/card?x=1".encode()
    ).hexdigest()
    assert cfg["signature"] == expected and cfg["appId"] == wx.state.app_id
    api.jssdk_config("https://cert.example.test/h5/other")
    assert wx.state.ticket_fetches == 1  # the ticket is cached too


def test_template_message_is_sent_with_its_data(wx: FakeWeChat, tmp_path: Path) -> None:
    api = WeChatApi(config_for(wx), MemoryTokenStore())
    msgid = api.send_template("openid-7", "result", {"first": "认证通过", "keyword1": "2027-11-22"}, url="https://x/r")
    assert msgid == 1
    sent = wx.state.sent_templates[0]
    assert sent["touser"] == "openid-7" and sent["template_id"] == "tpl-result"
    assert sent["data"]["first"]["value"] == "认证通过"
    with pytest.raises(WeChatError):
        api.send_template("openid-7", "overdue", {})  # no template configured for that kind
