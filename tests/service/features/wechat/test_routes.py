"""The channel's HTTP endpoints in the real app against the fake WeChat server: server URL signature (good and
forged; everything refused without a token), message replies (a DTD or a non-message is a 400), OAuth entry
with the state cookie (and a mismatched state), JS-SDK config, and the card photo fetched by media_id into the
session (and an expired media_id)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

import service.schema
from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, utcnow
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink, WeChatUser
from service.features.wechat.safe_mode import MAX_CLOCK_SKEW_S
from service.features.wechat.server import verify_signature
from tests.service import factories
from tests.service.features.wechat.conftest import PUBLIC, SERVER_TOKEN, wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat


def signed(ts: str | None = None, nonce: str = "n0nce", token: str = SERVER_TOKEN) -> dict[str, str]:
    """WeChat's URL parameters for a call made now (or at ``ts``)."""
    ts = str(int(time.time())) if ts is None else ts
    sig = hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()
    return {"signature": sig, "timestamp": ts, "nonce": nonce}


def test_server_url_verification_good_and_forged(client: TestClient) -> None:
    good = client.get("/wechat/callback", params={**signed(), "echostr": "echo-123"})
    assert good.status_code == 200 and good.text == "echo-123"
    forged = client.get("/wechat/callback", params={**signed(token="guessed"), "echostr": "echo-123"})
    assert forged.status_code == 403 and "echo-123" not in forged.text
    tampered = {**signed(), "nonce": "other", "echostr": "x"}
    assert client.get("/wechat/callback", params=tampered).status_code == 403


def test_menu_click_answers_with_the_h5_link_and_forged_posts_are_refused(client: TestClient) -> None:
    xml = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>openid-9</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>CERTIFY</EventKey></xml>"
    )
    r = client.post("/wechat/callback", params=signed(), content=xml)
    assert r.status_code == 200 and f"{PUBLIC}/h5/" in r.text and "openid-9" in r.text
    assert client.post("/wechat/callback", params=signed(token="x"), content=xml).status_code == 403


def test_a_signed_call_is_refused_long_after_it_was_made(client: TestClient) -> None:
    """A captured call (URL parameters and body) cannot be replayed later: its timestamp is checked, both ways."""
    xml = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>openid-9</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>CERTIFY</EventKey></xml>"
    )
    now = int(time.time())
    for ts in (now - MAX_CLOCK_SKEW_S - 60, now + MAX_CLOCK_SKEW_S + 60, "yesterday"):
        stale = client.post("/wechat/callback", params=signed(ts=str(ts)), content=xml)
        assert stale.status_code == 403 and stale.json()["error"]["code"] == "WECHAT_STALE", stale.text
        echo = client.get("/wechat/callback", params={**signed(ts=str(ts)), "echostr": "echo-1"})
        assert echo.status_code == 403 and "echo-1" not in echo.text
    # A push WeChat retries a few seconds later (same parameters) is still answered.
    assert client.post("/wechat/callback", params=signed(ts=str(now - 20)), content=xml).status_code == 200


def oauth_login(client: TestClient, fake: FakeWeChat) -> TestClient:
    entry = client.get("/h5/", follow_redirects=False)
    assert entry.status_code == 302
    authorize = entry.headers["location"]
    assert authorize.startswith(fake.base_url + "connect/oauth2/authorize")
    assert parse_qs(urlparse(authorize).query)["scope"] == ["snsapi_base"]
    back = requests.get(authorize, allow_redirects=False, timeout=10).headers["Location"]
    assert back.startswith(f"{PUBLIC}/h5/oauth/callback?")
    r = client.get(back.removeprefix(PUBLIC), follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def test_the_login_cookies_are_sent_only_over_tls_when_served_over_https(
    client: TestClient, fake_wx: FakeWeChat
) -> None:
    """The OAuth nonce cookie (it binds the login to this browser) and the identity cookie are `Secure` over
    https, like the console's; plain http in development keeps working without."""
    tls = TestClient(client.app, base_url="https://testserver")
    entry = tls.get("/h5/", follow_redirects=False)
    nonce = [c for c in entry.headers.get_list("set-cookie") if c.startswith(identity.NONCE_COOKIE + "=")]
    assert len(nonce) == 1 and "; secure" in nonce[0].lower() and "httponly" in nonce[0].lower()
    back = requests.get(entry.headers["location"], allow_redirects=False, timeout=10).headers["Location"]
    r = tls.get(back.removeprefix(PUBLIC), follow_redirects=False)
    assert r.status_code == 303
    ident = [c for c in r.headers.get_list("set-cookie") if c.startswith(identity.COOKIE + "=")]
    assert len(ident) == 1 and "; secure" in ident[0].lower()
    plain = client.get("/h5/", follow_redirects=False)
    assert "secure" not in plain.headers["set-cookie"].lower()


def test_oauth_binds_the_openid_and_refuses_a_state_from_another_browser(
    client: TestClient, fake_wx: FakeWeChat, ctx: ServiceContext, db: Session
) -> None:
    fake_wx.state.browser_openid = "openid-oauth-1"
    oauth_login(client, fake_wx)
    start = client.get("/h5/")
    assert start.status_code == 200 and "为本人认证" in start.text and "为家人认证" in start.text
    assert db.query(WeChatUser).filter_by(openid="openid-oauth-1").count() == 1

    other = TestClient(client.app)  # another browser: no cookies
    entry = other.get("/h5/", follow_redirects=False)
    back = requests.get(entry.headers["location"], allow_redirects=False, timeout=10).headers["Location"]
    attacker = TestClient(client.app)  # the code + state arrive in a browser without the matching nonce cookie
    attacker.cookies.set(identity.NONCE_COOKIE, "someone-elses-nonce", path="/h5")
    r = attacker.get(back.removeprefix(PUBLIC), follow_redirects=False)
    assert r.status_code == 403 and "链接已失效" in r.text
    assert identity.COOKIE not in r.cookies
    # Without a cookie a page goes through OAuth again; the pages' JSON API answers 401 for their script.
    again = attacker.get("/h5/certify", follow_redirects=False)
    assert again.status_code == 302 and again.headers["location"].startswith(fake_wx.base_url)
    api = attacker.post("/h5/api/sessions", json={"name": "x", "id_number": "1" * 18, "consent": True})
    assert api.status_code == 401 and api.json()["error"]["code"] == "UNAUTHORIZED"


def login_through(client: TestClient, path: str) -> str:
    """Open `path` without a cookie, follow WeChat's OAuth; returns where the callback sends the browser."""
    entry = client.get(path, follow_redirects=False)
    assert entry.status_code == 302, entry.text
    back = requests.get(entry.headers["location"], allow_redirects=False, timeout=10).headers["Location"]
    r = client.get(back.removeprefix(PUBLIC), follow_redirects=False)
    assert r.status_code == 303, r.text
    assert identity.COOKIE in r.cookies
    return str(r.headers["location"])


@pytest.mark.parametrize(
    "path", ["/h5/result/0b7c1c9e-52f4-4d2e-9f0a-3c1d2e4f5a6b", "/h5/family", "/h5/certify?mode=proxy", "/h5/"]
)
def test_a_page_opened_without_a_cookie_comes_back_to_itself_after_oauth(
    fake_wx: FakeWeChat, tmp_path: Path, path: str
) -> None:
    with wechat_client(fake_wx, tmp_path) as c:
        assert login_through(c, path) == path
        page = c.get(path)
        assert page.status_code in (200, 404) and "text/html" in page.headers["content-type"]


def decided_session(db: Session, ctx: ServiceContext, b: Beneficiary, decision: str) -> CertSession:
    s = sessions.create_session(db, ctx, b, Channel.SELF, False, "test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, decision, utcnow()
    db.flush()
    return s


def test_message_link_reaches_its_result_after_oauth(
    client: TestClient, fake_wx: FakeWeChat, ctx: ServiceContext, db: Session
) -> None:
    """The link in a result message, opened the next day (no cookie), shows that result after the login."""
    fake_wx.state.browser_openid = "openid-link-1"
    b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2027, 3, 1))
    s = decided_session(db, ctx, b, "accept")
    db.add(WeChatSessionLink(session_id=s.id, openid="openid-link-1"))
    db.commit()
    path = f"/h5/result/{s.id}"
    assert login_through(client, path) == path
    page = client.get(path)
    assert page.status_code == 200 and "认证通过" in page.text
    # The date as the message wrote it and as people read it, not ISO.
    assert '<strong id="valid-until">2027年3月1日</strong>' in page.text and "2027-03-01" not in page.text


def forged_state_login(client: TestClient, fake: FakeWeChat, target: str) -> Any:
    """A state minted with our own key for `target` (as if the MAC were not the defence): the callback still
    only ever redirects to our pages."""
    channel = client.app.state.wechat  # type: ignore[attr-defined]
    start = channel.oauth.start(f"{PUBLIC}/h5/oauth/callback", target)
    back = requests.get(start.url, allow_redirects=False, timeout=10).headers["Location"]
    client.cookies.set(identity.NONCE_COOKIE, start.nonce, path="/h5")
    return client.get(back.removeprefix(PUBLIC), follow_redirects=False)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.test/h5/",
        "//evil.test/h5/",
        "/\\evil.test",
        "/h5/\\evil.test",
        "/h5/../../evil",
        "/other",
        "/h5/api/sessions",
        "/h5/oauth/callback",
        "/h5/family?next=//evil.test",
        "/h5/result/not-a-session",
    ],
)
def test_the_callback_never_redirects_outside_our_pages(fake_wx: FakeWeChat, tmp_path: Path, target: str) -> None:
    with wechat_client(fake_wx, tmp_path) as c:
        r = forged_state_login(c, fake_wx, target)
        assert r.status_code == 303 and r.headers["location"] == "/h5/"


def test_an_edited_target_in_the_state_is_refused(fake_wx: FakeWeChat, tmp_path: Path) -> None:
    with wechat_client(fake_wx, tmp_path) as c:
        entry = c.get("/h5/family", follow_redirects=False)
        back = requests.get(entry.headers["location"], allow_redirects=False, timeout=10).headers["Location"]
        state = parse_qs(urlparse(back).query)["state"][0]
        assert bytes.fromhex(state[:-32]).decode() == "/h5/family"  # the state carries the target
        edited = back.replace(state, b"/h5/certify".hex() + state[-32:])
        r = c.get(edited.removeprefix(PUBLIC), follow_redirects=False)
        assert r.status_code == 403 and "链接已失效" in r.text and identity.COOKIE not in r.cookies


def test_jssdk_config_only_for_our_pages(client: TestClient, fake_wx: FakeWeChat) -> None:
    page = f"{PUBLIC}/h5/certify?mode=self"
    cfg = client.get("/api/v1/wechat/jssdk-config", params={"url": page + "#card"}).json()
    expected = hashlib.sha1(
        f"jsapi_ticket=TICKET-1&noncestr={cfg['nonceStr']}&timestamp={cfg['timestamp']}&url={page}".encode()
    ).hexdigest()
    assert cfg["signature"] == expected and "uploadImage" in cfg["jsApiList"]
    assert client.get("/api/v1/wechat/jssdk-config", params={"url": "https://evil.test/h5/"}).status_code == 400


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 40), (200, 180, 160)).save(buf, "JPEG")
    return buf.getvalue()


def test_card_by_media_id_is_stored_and_an_expired_media_id_asks_for_a_new_photo(
    client: TestClient, fake_wx: FakeWeChat, ctx: ServiceContext, db: Session
) -> None:
    number = factories.id_number()
    factories.beneficiary(db, ctx.keyring, id_number=number, name="王建国")
    db.commit()
    oauth_login(client, fake_wx)
    wrong = client.post("/h5/api/sessions", json={"name": "王建华", "id_number": number, "consent": True})
    assert wrong.status_code == 404  # name and number must belong together
    r = client.post("/h5/api/sessions", json={"name": "王建国", "id_number": number, "consent": True})
    assert r.status_code == 200, r.text
    s = r.json()
    assert db.get(WeChatSessionLink, s["session_id"]) is not None
    headers = {"Authorization": f"Bearer {s['token']}", "Idempotency-Key": "media-req-1"}
    url = f"/h5/api/sessions/{s['session_id']}/card-media"

    expired = client.post(url, json={"media_id": "older-than-3-days"}, headers=headers)
    assert expired.status_code == 410 and "重新拍摄" in expired.json()["error"]["message"]
    assert expired.json()["error"]["code"] == "WECHAT_MEDIA_EXPIRED" and expired.json()["error"]["detail"]

    fake_wx.state.media["fresh"] = jpeg()
    stored = client.post(url, json={"media_id": "fresh"}, headers=headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["uploads"] == {"id_card": True, "video": False}
    again = client.post(url, json={"media_id": "fresh"}, headers=headers)  # a retried request
    assert again.status_code == 200 and again.json()["uploads"]["id_card"] is True
    forged = {**headers, "Authorization": "Bearer x"}
    assert client.post(url, json={"media_id": "fresh"}, headers=forged).status_code == 401


def wechat_client(fake: FakeWeChat, tmp_path: Path, **overrides: Any) -> TestClient:
    from service.adapters.http.app import create_app

    settings = wechat_settings(fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'wx.db'}", **overrides)
    return TestClient(create_app(ctx=ServiceContext(settings, schema=service.schema.metadata)))


@pytest.mark.parametrize("env", ["development", "test"])
def test_an_empty_token_refuses_every_callback_even_in_development(
    fake_wx: FakeWeChat, tmp_path: Path, env: str
) -> None:
    """With no token the "signature" is sha1 of the timestamp and nonce: anyone could compute it."""
    xml = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>openid-9</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>CERTIFY</EventKey></xml>"
    )
    with wechat_client(fake_wx, tmp_path, wechat_token="", env=env) as c:
        forged = signed(token="")
        for r in (
            c.get("/wechat/callback", params={**forged, "echostr": "echo-123"}),
            c.post("/wechat/callback", params=forged, content=xml),
            c.get("/wechat/callback", params={"echostr": "echo-123"}),  # no signature at all
        ):
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "WECHAT_TOKEN_UNSET" and "echo-123" not in r.text
    assert not verify_signature("", signed(ts="1700000000", token="")["signature"], "1700000000", "n0nce")


BAD_PUSHES = {
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><MsgType>text</MsgType>"
        "<Content>&lol2;</Content></xml>"
    ),
    "external entity": (
        '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>gh</ToUserName>'
        "<FromUserName>o</FromUserName><MsgType>text</MsgType><Content>&xxe;</Content></xml>"
    ),
    "bare doctype": "<!doctype xml><xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>"
    "<MsgType>text</MsgType></xml>",
    "not xml": "hello",
    "no xml root": "<a><MsgType>text</MsgType></a>",
    "no MsgType": "<xml><ToUserName>gh</ToUserName></xml>",
    "MsgType not text": "<xml><MsgType><a>1</a></MsgType></xml>",
    "not utf-8": "\udcff",
}


@pytest.mark.parametrize("name", list(BAD_PUSHES))
def test_signed_pushes_that_are_not_wechat_messages_are_400_never_500(client: TestClient, name: str) -> None:
    body = BAD_PUSHES[name]
    content = body.encode("utf-8", "surrogateescape")
    r = client.post("/wechat/callback", params=signed(), content=content)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "WECHAT_BAD_MESSAGE"
    assert "root:" not in r.text and "lollol" not in r.text


def test_a_callback_loaded_twice_never_shows_an_error(fake_wx: FakeWeChat, tmp_path: Path) -> None:
    """Some WeChat clients load the OAuth callback twice. The second load, at once (its code already exchanged:
    WeChat's 40163) or after the first one's answer (the nonce gone, the identity cookie set), showed 暂时无法登录
    or 链接已失效 to someone who was in fact logged in. Both now go on to the page."""
    with wechat_client(fake_wx, tmp_path) as c:
        entry = c.get("/h5/family", follow_redirects=False)
        back = requests.get(entry.headers["location"], allow_redirects=False, timeout=10).headers["Location"]
        path = back.removeprefix(PUBLIC)
        twin = TestClient(c.app, cookies=dict(c.cookies))  # the same browser's second load, sent with the first
        first = c.get(path, follow_redirects=False)
        assert first.status_code == 303 and identity.COOKIE in first.cookies
        at_once = twin.get(path, follow_redirects=False)
        assert at_once.status_code == 303 and at_once.headers["location"] == "/h5/family"
        assert identity.COOKIE not in at_once.cookies  # it logs nobody in: the first load did
        after = c.get(path, follow_redirects=False)  # the nonce deleted, the identity cookie sent
        assert after.status_code == 303 and after.headers["location"] == "/h5/"
        # Without an identity, a link used twice is still refused as before.
        stranger = TestClient(c.app)
        assert stranger.get(path, follow_redirects=False).status_code == 403
