"""The campaign's peak behind one address: a community centre helping its elders certify (社区代办点), or a mobile
carrier's NAT, puts many pensioners, each logged in with their own WeChat account, behind one public IP. The
per-IP rules (`ip`, `session_ip`, `upload_ip`) counted them all as one client: a dozen phones polling their
results filled the address's allowance and every elder there got 429, their uploads refused. A request with a
valid WeChat login is now counted per account, as an API key is; all accounts of one address together meet a much
higher `ip_accounts`, and their session openings and uploads their own `session_ip_accounts` and
`upload_ip_accounts` (ten times one account's); anonymous requests, a forged cookie and the per-number rules are
held as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.features.wechat.h5 import identity
from service.infra.config import Settings
from tests.service.adapters.http.helpers import beneficiary_with_number
from tests.service.adapters.http.ops import ops_app
from tests.service.adapters.http.test_ratelimit import VERIFY, limited
from tests.service.factories import id_number

pytestmark = pytest.mark.usefixtures("windows_held")

ELDERS = 8


def test_elders_logged_in_behind_one_address_each_have_their_own_allowance(tmp_path: Path) -> None:
    app = ops_app(
        tmp_path,
        rate_limit_ip="10/minute",
        rate_limit_session_ip="3/minute",
        rate_limit_upload_ip="3/minute",
        rate_limit_ip_accounts="1000/minute",
        rate_limit_session_ip_accounts="30/minute",  # the defaults' ratio: ten times the per-account rules
        rate_limit_upload_ip_accounts="30/minute",
    )
    ctx = app.state.ctx
    numbers = [id_number() for _ in range(ELDERS)]
    for number in numbers:
        beneficiary_with_number(ctx, number, name="张秀英")
    with TestClient(app) as c:  # every request from one address, as behind the centre's router
        for i, number in enumerate(numbers):
            c.cookies.set(identity.COOKIE, identity.mint(ctx, f"openid-elder-{i}"))
            r = c.post("/h5/api/sessions", json={"name": "张秀英", "id_number": number, "consent": True})
            assert r.status_code == 200, (i, r.text)
            r = c.post("/h5/api/sessions/nope/card", files={"file": ("c.jpg", b"\xff\xd8", "image/jpeg")})
            assert r.status_code != 429, (i, r.text)
            assert [c.get(VERIFY).status_code for _ in range(5)] == [400] * 5, i  # polling the result
        # One account is still held to its own allowance (10: seven requests made, three more).
        assert [c.get(VERIFY).status_code for _ in range(3)] == [400] * 3
        assert limited(c.get(VERIFY), "ip")
        # Anonymous requests (and a forged cookie) from the address are counted per IP, untouched by the elders'.
        c.cookies.set(identity.COOKIE, "openid-forged|9999999999|00")
        assert [c.get(VERIFY).status_code for _ in range(10)] == [400] * 10
        assert limited(c.get(VERIFY), "ip")


def test_many_accounts_from_one_address_meet_the_address_ceiling(tmp_path: Path) -> None:
    app = ops_app(tmp_path, rate_limit_ip="10/minute", rate_limit_ip_accounts="12/minute")
    ctx = app.state.ctx
    with TestClient(app) as c:
        answers = []
        for i in range(5):
            c.cookies.set(identity.COOKIE, identity.mint(ctx, f"openid-bot-{i}"))
            answers += [c.get(VERIFY) for _ in range(3)]
        assert [r.status_code for r in answers[:12]] == [400] * 12
        assert all(limited(r, "ip_accounts") for r in answers[12:])


def test_many_accounts_from_one_address_meet_the_session_and_upload_ceilings(tmp_path: Path) -> None:
    """`/h5/api/sessions` tells whether a name and an ID number belong together, and card uploads run OCR in the
    API: one address holding K WeChat accounts would otherwise try K times `session_ip` numbers a minute and send
    K times `upload_ip` cards. Their own ceilings per address hold the address, whatever its accounts."""
    app = ops_app(
        tmp_path,
        rate_limit_ip="100/minute",
        rate_limit_ip_accounts="1000/minute",
        rate_limit_session_ip="3/minute",
        rate_limit_upload_ip="3/minute",
        rate_limit_session_ip_accounts="5/minute",
        rate_limit_upload_ip_accounts="4/minute",
    )
    ctx = app.state.ctx
    sessions, uploads = [], []
    with TestClient(app) as c:
        for i in range(4):  # four accounts, two tries each: within every account's own allowance
            c.cookies.set(identity.COOKIE, identity.mint(ctx, f"openid-prober-{i}"))
            for _ in range(2):
                body = {"name": "张秀英", "id_number": id_number(), "consent": True}
                sessions.append(c.post("/h5/api/sessions", json=body))
                card = {"file": ("c.jpg", b"\xff\xd8", "image/jpeg")}
                uploads.append(c.post("/h5/api/sessions/nope/card", files=card))
    assert [r.status_code != 429 for r in sessions] == [True] * 5 + [False] * 3, [r.text for r in sessions]
    assert all(limited(r, "session_ip_accounts") for r in sessions[5:])
    assert [r.status_code != 429 for r in uploads] == [True] * 4 + [False] * 4, [r.text for r in uploads]
    assert all(limited(r, "upload_ip_accounts") for r in uploads[4:])


def test_the_address_ceiling_default_leaves_a_busy_centre_room() -> None:
    s = Settings().rate_limit
    assert (s.ip, s.ip_accounts) == ("600/minute", "6000/minute")
    # Ten times one account's: a centre's morning of elders, not a prober's hundreds of accounts.
    assert (s.session_ip, s.session_ip_accounts) == ("30/minute", "300/minute")
    assert (s.upload_ip, s.upload_ip_accounts) == ("60/minute", "600/minute")
