"""The H5 identity cookie (`openid|expiry|mac`): a hostile expiry is refused, never a 500, even when the MAC
is right (issue #22); a cookie that would outlive what we mint is refused. Refused means: the pages log in
again (here, without a WeChat channel, the page that says to open it in WeChat), the JSON API answers 401."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity
from tests.service.adapters.http.ops import ops_app

HOSTILE = [
    "9" * 5000,  # int() of over 4300 digits raises ValueError (CPython's conversion limit): was a 500
    "²",  # isdigit() but not int()-able: was a 500
    "1²3",
    str(int(time.time()) + 10 * 365 * 86400),  # ten years: we never mint that
    str(int(time.time()) - 1),  # expired
    "",
    "-1",
    " 1",
]


def signed_cookie(ctx: ServiceContext, openid: str, expiry: str) -> str:
    """What only our server can mint: the MAC is right, whatever the expiry says."""
    payload = f"{openid}|{expiry}"
    return f"{payload}|{ctx.keyring.mac('h5:' + payload)}"


@pytest.mark.parametrize("expiry", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])  # ids: no clock
def test_a_hostile_expiry_is_refused(tmp_path: Path, expiry: str) -> None:
    ctx: ServiceContext = ops_app(tmp_path).state.ctx
    # The raw header, as the server reads it (latin-1): "²" is one byte 0xB2 on the wire.
    raw = f"{identity.COOKIE}={signed_cookie(ctx, 'openid-1', expiry)}".encode("latin-1")
    request = Request({"type": "http", "headers": [(b"cookie", raw)]})
    assert identity.openid_from(ctx, request) is None


@pytest.mark.parametrize("expiry", [HOSTILE[0], HOSTILE[3]], ids=["digits5000", "ten_years"])
def test_a_hostile_expiry_is_401_not_500(tmp_path: Path, expiry: str) -> None:
    app = ops_app(tmp_path)
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, signed_cookie(app.state.ctx, "openid-1", expiry))
        page = c.get("/h5/certify")
        assert page.status_code == 403 and "请在微信中打开" in page.text, page.text[:300]
        r = c.post("/h5/api/operator")
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


def test_the_cookie_we_mint_still_works(tmp_path: Path) -> None:
    app = ops_app(tmp_path)
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(app.state.ctx, "openid-1"))
        assert c.get("/h5/certify").status_code == 200
        good = identity.mint(app.state.ctx, "openid-1")
        forged = good[:-1] + ("1" if good.endswith("0") else "0")  # one MAC digit changed (never the same one)
        c.cookies.set(identity.COOKIE, forged)
        assert c.get("/h5/certify").status_code == 403
        assert c.post("/h5/api/operator").status_code == 401
