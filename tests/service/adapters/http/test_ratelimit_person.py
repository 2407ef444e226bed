"""The per-beneficiary cap of session creation (`beneficiary_all`) is the pensioner's own allowance: only a
request that proves who sends it (an API key, a WeChat login cookie) and passes its own limits may spend it, and it
is counted against the person the route will serve (security review, limiter findings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.features.wechat.h5 import identity
from service.infra.config import Settings
from tests.service.adapters.http.helpers import beneficiary_with_number
from tests.service.adapters.http.ops import ops_app
from tests.service.adapters.http.test_ratelimit import limited
from tests.service.conftest import API_KEY
from tests.service.factories import id_number

pytestmark = pytest.mark.usefixtures("windows_held")

NAME = "张秀英"


def self_form(number: str, name: str = NAME) -> dict[str, Any]:
    return {"name": name, "id_number": number, "consent": True}


def test_anonymous_posts_for_a_number_do_not_lock_its_owner_out(tmp_path: Path) -> None:
    """One address, no WeChat login, more posts than the person's cap (each answered 401 or 429): the owner's
    own session opening is still served. The address is let through the per-IP rule, as a slow attacker is."""
    cap = Settings().rate_limit.beneficiary_all
    assert cap == "120/hour"  # the default the attack was measured against
    app = ops_app(tmp_path, rate_limit_session_ip="1000/minute")
    number = id_number()
    beneficiary_with_number(app.state.ctx, number, name=NAME)
    with TestClient(app) as c:
        answers = [c.post("/h5/api/sessions", json=self_form(number)).status_code for _ in range(121)]
        assert set(answers) <= {401, 429} and 401 in answers
        c.cookies.set(identity.COOKIE, identity.mint(app.state.ctx, "openid-the-pensioner"))
        r = c.post("/h5/api/sessions", json=self_form(number))
        assert r.status_code == 200, r.text


def test_logged_in_requesters_together_still_meet_the_persons_cap(tmp_path: Path) -> None:
    """Authenticated abuse is limited as before: each WeChat account at its own limit, all of them together at
    the person's cap. Tries refused by an account's own limit do not spend the person's cap."""
    app = ops_app(tmp_path, rate_limit_beneficiary="2/hour", rate_limit_beneficiary_all="5/hour")
    ctx = app.state.ctx
    number = id_number()
    beneficiary_with_number(ctx, number, name=NAME)
    wrong_name = self_form(number, "王五")
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-stranger-1"))
        answers = [c.post("/h5/api/sessions", json=wrong_name) for _ in range(6)]
        assert [r.status_code for r in answers[:2]] == [404, 404]
        assert all(limited(r, "beneficiary") for r in answers[2:])  # 2 counted against the person, not 6
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-stranger-2"))
        assert [c.post("/h5/api/sessions", json=wrong_name).status_code for _ in range(2)] == [404, 404]
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-the-pensioner"))
        assert c.post("/h5/api/sessions", json=self_form(number)).status_code == 200  # the 5th counted
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-stranger-3"))
        assert limited(c.post("/h5/api/sessions", json=wrong_name), "beneficiary_all")


def test_the_api_route_is_counted_against_the_person_it_serves(tmp_path: Path) -> None:
    """The API route prefers external_id over id_number: a random number beside the victim's external_id must
    not move the count to a random bucket."""
    app = ops_app(tmp_path, rate_limit_beneficiary="2/hour")
    ext = beneficiary_with_number(app.state.ctx, id_number())
    with TestClient(app) as c:
        c.headers["X-API-Key"] = API_KEY
        for _ in range(2):
            r = c.post("/api/v1/sessions", json={"external_id": ext, "id_number": id_number()})
            assert r.status_code == 201, r.text  # served for `ext`
        assert limited(c.post("/api/v1/sessions", json={"external_id": ext}), "beneficiary")


def test_the_h5_routes_are_counted_against_the_number_they_read(tmp_path: Path) -> None:
    """The H5 routes read the number only: an external_id beside it must not move the count either."""
    app = ops_app(tmp_path, rate_limit_beneficiary="2/hour")
    ctx = app.state.ctx
    number = id_number()
    beneficiary_with_number(ctx, number, name=NAME)
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-stranger"))
        for n in range(2):
            body = {**self_form(number, "王五"), "external_id": f"decoy-{n}"}
            assert c.post("/h5/api/sessions", json=body).status_code == 404
        assert limited(c.post("/h5/api/sessions", json=self_form(number, "王五")), "beneficiary")


def apply_form(number: str, token: str = "t") -> dict[str, str]:
    return {"token": token, "kind": "home_visit", "phone": "13800138000", "name": "王五", "id_number": number}


def test_the_assistance_form_has_the_session_creation_limits(tmp_path: Path) -> None:
    """The H5 assistance form takes a name and a number too: per address, per number and requester, and per
    number for everyone (a form post is read like the JSON body)."""
    app = ops_app(tmp_path, rate_limit_session_ip="4/minute", rate_limit_beneficiary="2/hour")
    ctx = app.state.ctx
    number = id_number()
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-stranger"))
        answers = [c.post("/h5/apply", data=apply_form(number)) for _ in range(3)]
        assert [r.status_code for r in answers[:2]] == [403, 403]  # the form token is wrong: refused by the route
        assert limited(answers[2], "beneficiary")
        assert c.post("/h5/apply", data=apply_form(id_number())).status_code == 403  # another number: 4th post
        assert limited(c.post("/h5/apply", data=apply_form(id_number())), "session_ip")


def test_a_number_written_another_way_is_the_same_person(tmp_path: Path) -> None:
    """The route reads "…x" as "…X": so does the limiter, or each spelling would be a fresh bucket."""
    app = ops_app(tmp_path, rate_limit_beneficiary="2/hour")
    number = next(n for n in (id_number(seq=s) for s in range(200)) if n.endswith("X"))
    beneficiary_with_number(app.state.ctx, number, name=NAME)
    with TestClient(app) as c:
        c.cookies.set(identity.COOKIE, identity.mint(app.state.ctx, "openid-spelling"))
        for spelling in (number, number.lower()):
            assert c.post("/h5/api/sessions", json=self_form(spelling, "王五")).status_code == 404
        assert limited(c.post("/h5/api/sessions", json=self_form(number[:-1] + "x", "王五")), "beneficiary")
