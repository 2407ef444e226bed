"""WeChat's safe mode (安全模式) on the real app: WeChat's side is written here from the protocol (AES-256-CBC
with the EncodingAESKey, random 16 bytes + length + message + app id, PKCS#7 to 32-byte blocks, SHA-1 message
signature over the sorted token, timestamp, nonce and ciphertext), independently of the library the service uses."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi.testclient import TestClient

from tests.service.features.wechat.conftest import PUBLIC, SERVER_TOKEN
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_routes import signed, wechat_client

AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
CLICK = (
    "<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[openid-safe]]></FromUserName>"
    "<CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>"
    "<EventKey><![CDATA[CERTIFY]]></EventKey></xml>"
)


def _cipher(key: str) -> Cipher[modes.CBC]:
    raw = base64.b64decode(key + "=")
    return Cipher(algorithms.AES(raw), modes.CBC(raw[:16]))


def encrypt(message: str, app_id: str, key: str = AES_KEY) -> str:
    body = message.encode()
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + app_id.encode()
    pad = 32 - len(plain) % 32
    enc = _cipher(key).encryptor()
    return base64.b64encode(enc.update(plain + bytes([pad]) * pad) + enc.finalize()).decode()


def decrypt(encrypted: str, key: str = AES_KEY) -> tuple[str, str]:
    dec = _cipher(key).decryptor()
    plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    plain = plain[: -plain[-1]]
    (length,) = struct.unpack(">I", plain[16:20])
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


def msg_signature(ts: str, nonce: str, encrypted: str, token: str = SERVER_TOKEN) -> str:
    return hashlib.sha1("".join(sorted([token, ts, nonce, encrypted])).encode()).hexdigest()


def push(encrypted: str, ts: str, nonce: str, signature: str | None = None) -> tuple[dict[str, str], str]:
    """WeChat's POST in safe mode: URL parameters and the envelope."""
    params = {
        **signed(ts=ts, nonce=nonce),
        "encrypt_type": "aes",
        "msg_signature": signature or msg_signature(ts, nonce, encrypted),
    }
    envelope = f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return params, envelope


@pytest.fixture
def safe_client(fake_wx: FakeWeChat, tmp_path: Path) -> Iterator[TestClient]:
    with wechat_client(fake_wx, tmp_path, wechat_encoding_aes_key=AES_KEY) as c:
        yield c


def test_an_encrypted_menu_click_gets_an_encrypted_signed_answer(safe_client: TestClient, fake_wx: FakeWeChat) -> None:
    ts, nonce = str(int(time.time())), "safe-nonce"
    params, envelope = push(encrypt(CLICK, fake_wx.state.app_id), ts, nonce)
    r = safe_client.post("/wechat/callback", params=params, content=envelope)
    assert r.status_code == 200, r.text
    answer = ET.fromstring(r.text)
    encrypted = answer.findtext("Encrypt") or ""
    assert "openid-safe" not in r.text and f"{PUBLIC}/h5/" not in r.text  # nothing in clear
    assert answer.findtext("MsgSignature") == msg_signature(
        answer.findtext("TimeStamp") or "", answer.findtext("Nonce") or "", encrypted
    )
    message, app_id = decrypt(encrypted)
    assert app_id == fake_wx.state.app_id
    assert f"{PUBLIC}/h5/" in message and "<ToUserName><![CDATA[openid-safe]]>" in message


def test_a_changed_or_foreign_ciphertext_is_refused(safe_client: TestClient, fake_wx: FakeWeChat) -> None:
    ts, nonce = str(int(time.time())), "safe-nonce"
    genuine = encrypt(CLICK, fake_wx.state.app_id)
    params, _ = push(genuine, ts, nonce)
    other = encrypt(CLICK.replace("CERTIFY", "OTHER"), fake_wx.state.app_id)  # the URL signature stays valid
    _, swapped = push(other, ts, nonce)
    r = safe_client.post("/wechat/callback", params=params, content=swapped)
    assert r.status_code == 403 and r.json()["error"]["code"] == "WECHAT_SIGNATURE"
    # Signed with our token but encrypted for another official account.
    foreign = encrypt(CLICK, "wx-someone-else")
    params, envelope = push(foreign, ts, nonce)
    r = safe_client.post("/wechat/callback", params=params, content=envelope)
    assert r.status_code == 403 and r.json()["error"]["code"] == "WECHAT_SIGNATURE"
    # Signed but not a ciphertext at all: a clear 400, nothing crashes.
    params, envelope = push("not-base64!!", ts, nonce)
    r = safe_client.post("/wechat/callback", params=params, content=envelope)
    assert r.status_code == 400 and r.json()["error"]["code"] == "WECHAT_BAD_MESSAGE"


def test_the_push_must_come_in_the_configured_mode(
    safe_client: TestClient, fake_wx: FakeWeChat, tmp_path: Path
) -> None:
    """In safe mode a plain push (whose signature does not cover its body) is refused; without a key an
    encrypted one cannot be opened and is refused too."""
    plain = safe_client.post("/wechat/callback", params=signed(), content=CLICK)
    assert plain.status_code == 403 and plain.json()["error"]["code"] == "WECHAT_SIGNATURE"
    ts, nonce = str(int(time.time())), "n"
    params, envelope = push(encrypt(CLICK, fake_wx.state.app_id), ts, nonce)
    with wechat_client(fake_wx, tmp_path / "plain") as plain_mode:
        r = plain_mode.post("/wechat/callback", params=params, content=envelope)
    assert r.status_code == 403 and r.json()["error"]["code"] == "WECHAT_SIGNATURE"


def test_an_unsubscribe_event_is_answered_success_in_clear(safe_client: TestClient, fake_wx: FakeWeChat) -> None:
    """WeChat expects "success" (or nothing) for events that need no answer, in either mode."""
    event = CLICK.replace("CLICK", "unsubscribe")
    ts = str(int(time.time()))
    params, envelope = push(encrypt(event, fake_wx.state.app_id), ts, "n2")
    r = safe_client.post("/wechat/callback", params=params, content=envelope)
    assert r.status_code == 200 and r.text == "success"
