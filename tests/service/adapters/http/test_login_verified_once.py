"""The H5 login cookie's MAC is checked once per request. The rate limit reads the login before any route
(service/adapters/http/limits.py: a logged-in pensioner is counted per account, not per address) and the route
reads it again; the route now reuses the verified cookie the limit left in the request's state. What is accepted
does not change: a forged cookie, one signed with a leaked key (docs/security.md, Part AP) and an expired one are
refused as before, and a cookie that expires between the limit and the route is refused by the route (the expiry
is read at each read, only the MAC's result is kept)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from service.features.wechat.h5 import identity
from service.infra.security import Keyring
from tests.service.adapters.http.ops import ops_app


def h5_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every H5 cookie MAC the keyring checks from now on (the text it checks)."""
    seen: list[str] = []
    real = Keyring.verify_mac

    def counting(self: Keyring, text: str, mac: str, length: int | None = None) -> bool:
        if text.startswith("h5:"):
            seen.append(text)
        return real(self, text, mac, length)

    monkeypatch.setattr(Keyring, "verify_mac", counting)
    return seen


def test_the_login_cookie_is_verified_once_per_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = ops_app(tmp_path)
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(app.state.ctx, "openid-1"))
        seen = h5_checks(monkeypatch)
        assert c.get("/h5/certify").status_code == 200  # the limit and the page both read the login
        assert len(seen) == 1, seen
        assert c.get("/h5/certify").status_code == 200  # a new request checks its cookie anew
        assert len(seen) == 2, seen


def test_what_is_refused_is_still_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = ops_app(tmp_path)
    ctx = app.state.ctx
    good = identity.mint(ctx, "openid-1")
    forged = good[:-1] + ("1" if good.endswith("0") else "0")
    expired = identity.mint(ctx, "openid-1", now=time.time() - identity.TTL_S - 1)
    with TestClient(app) as c:
        for cookie in (forged, expired):
            c.cookies.set(identity.COOKIE, cookie)
            assert c.get("/h5/certify").status_code == 403 and c.post("/h5/api/operator").status_code == 401
        # The key in use leaks: a new one signs, the old one is listed as leaked (Part AP), and a cookie the old
        # one signs (whoever holds it can make one for any openid) verifies nothing, in the limit or the route.
        signed_by_the_leaked_key = identity.mint(ctx, "openid-2")
        old_key, new_key = ctx.settings.security.signing_key, "a-new-signing-key-0123456789abcdef"
        ctx.keyring = Keyring(ctx.settings.media_key_bytes, new_key, leaked_signing_keys=[old_key])
        c.cookies.set(identity.COOKIE, signed_by_the_leaked_key)
        assert c.get("/h5/certify").status_code == 403 and c.post("/h5/api/operator").status_code == 401
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-2"))  # the new key's: accepted
        assert c.get("/h5/certify").status_code == 200


def test_a_cookie_that_expires_after_the_limit_is_refused_by_the_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = ops_app(tmp_path).state.ctx
    cookie = identity.mint(ctx, "openid-1")
    request = Request({"type": "http", "headers": [(b"cookie", f"{identity.COOKIE}={cookie}".encode())]})
    seen = h5_checks(monkeypatch)
    assert identity.openid_from(ctx, request) == "openid-1"  # the limit's read
    later = time.time() + identity.TTL_S + 1
    monkeypatch.setattr(time, "time", lambda: later)  # a slow upload: the route runs after the expiry
    assert identity.openid_from(ctx, request) is None
    assert len(seen) == 1, seen  # the MAC was not checked again: the expiry alone refused it


def test_a_kept_check_answers_only_for_its_own_cookie_and_keyring(tmp_path: Path) -> None:
    # Two reads in one request's scope (the state is shared, as between the limit and the route): another cookie
    # is verified afresh, and so is the same cookie once the keyring was replaced with its key marked leaked.
    ctx = ops_app(tmp_path).state.ctx
    good = identity.mint(ctx, "openid-1")
    scope = {"type": "http", "headers": [(b"cookie", f"{identity.COOKIE}={good}".encode())], "state": {}}
    assert identity.openid_from(ctx, Request(scope)) == "openid-1"
    forged = identity.mint(ctx, "openid-2")[:-1] + "x"
    other = {**scope, "headers": [(b"cookie", f"{identity.COOKIE}={forged}".encode())]}
    assert other["state"] is scope["state"]
    assert identity.openid_from(ctx, Request(other)) is None
    old = ctx.settings.security.signing_key
    ctx.keyring = Keyring(ctx.settings.media_key_bytes, "a-new-signing-key-0123456789abcdef", leaked_signing_keys=[old])
    assert identity.openid_from(ctx, Request(scope)) is None
