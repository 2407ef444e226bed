"""Issue #22 item 5, through the real H5 routes (SQLite, the signed WeChat cookie): a stranger who knows a
pensioner's name and ID number spends their own daily attempts, not the pensioner's; the pensioner's own
failures still meet their limit with the staff-review offer; everyone together meets a higher cap."""

from __future__ import annotations

from typing import Any

from service.certification.models import CertSession, SessionState, utcnow
from service.features.wechat.h5 import identity
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.wechat.h5.conftest import OPENID, App

NAME = "李秀英"


def person(app: App) -> str:
    """A pensioner of the roster with a known number (the only thing the attacker needs besides the name)."""
    number = factories.id_number()
    with app.ctx.db() as db:
        factories.beneficiary(db, app.ctx.keyring, name=NAME, id_number=number)
        db.commit()
    return number


def as_user(app: App, openid: str) -> None:
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, openid))


def open_session(app: App, number: str) -> Any:
    return app.client.post("/h5/api/sessions", json={"name": NAME, "id_number": number, "consent": True})


def fail(app: App, session_id: str) -> None:
    """The pipeline's verdict on a garbage upload: rejected (the upload itself is tested elsewhere)."""
    with app.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None
        s.state, s.decision, s.reasons, s.decided_at = SessionState.DECIDED, "reject", ["FACE_MISMATCH"], utcnow()
        db.commit()


def fail_times(app: App, number: str, n: int) -> None:
    for _ in range(n):
        r = open_session(app, number)
        assert r.status_code == 200, r.text
        fail(app, r.json()["session_id"])


def refused_with_review(r: Any) -> bool:
    body = r.json()["error"]
    return bool(r.status_code == 429 and body["code"] == "ATTEMPTS_EXCEEDED" and body["staff_review"] is True)


def test_a_strangers_failures_do_not_block_the_pensioner(app: App) -> None:
    number = person(app)
    as_user(app, "openid-attacker")
    fail_times(app, number, 3)
    assert refused_with_review(open_session(app, number))  # the stranger met their own limit
    as_user(app, OPENID)
    r = open_session(app, number)
    assert r.status_code == 200, r.text
    assert r.json()["attempts_left"] == 3  # the pensioner's attempts are all there


def test_the_pensioners_own_failures_still_meet_their_limit(app: App) -> None:
    number = person(app)
    as_user(app, OPENID)
    first = open_session(app, number)
    assert first.json()["attempts_left"] == 3
    fail(app, first.json()["session_id"])
    fail_times(app, number, 2)
    r = open_session(app, number)
    assert refused_with_review(r)
    assert r.json()["error"]["message"] == "今日认证次数已达上限,可申请人工审核"
    # Another WeChat account (a relative's phone) may still open one for the same person.
    as_user(app, "openid-daughter")
    assert open_session(app, number).status_code == 200


def test_many_strangers_together_meet_the_higher_beneficiary_cap(app: App) -> None:
    number = person(app)
    cap = app.ctx.settings.certification.failures_per_day_beneficiary
    assert cap > app.ctx.settings.certification.failures_per_day  # the default: one stranger cannot reach it
    for i in range(cap // 3):
        as_user(app, f"openid-attacker-{i}")
        fail_times(app, number, 3)
    as_user(app, OPENID)
    left = cap - 3 * (cap // 3)
    if left:
        r = open_session(app, number)
        assert r.status_code == 200 and r.json()["attempts_left"] == left, r.text
        fail(app, r.json()["session_id"])
        fail_times(app, number, left - 1)
    assert refused_with_review(open_session(app, number))
    # The staff review offered: the staff channel (operator key) is never held to either limit.
    staff = app.client.post("/api/v1/sessions", json={"id_number": number, "channel": "staff"}, headers=ADMIN)
    assert staff.status_code == 201, staff.text


def test_the_result_page_counts_the_viewers_attempts(app: App) -> None:
    number = person(app)
    as_user(app, "openid-attacker")
    fail_times(app, number, 2)
    as_user(app, OPENID)
    r = open_session(app, number)
    fail(app, r.json()["session_id"])
    page = app.client.get(f"/h5/result/{r.json()['session_id']}")
    assert page.status_code == 200
    assert "今天还可以再试 <strong>2</strong> 次" in page.text  # 3 of their own minus 1, not 3 minus all 3
