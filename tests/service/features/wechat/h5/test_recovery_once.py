""" "继续认证" consumes the session it continues, and is a session opening like any other for the limits (review:
workload 1): the same expired session was continued without end, each tap a new open session and a copy of the
card photo, and the route skipped every session-creation limit (600 sessions a minute for one person)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import service.schema
from service.adapters.http import limits
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionState, utcnow
from service.features.wechat.h5 import identity
from tests.service import factories
from tests.service.adapters.http.test_ratelimit import limited
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.h5.conftest import OPENID, App
from tests.service.features.wechat.h5.test_recovery import again, finished

NUMBER = factories.id_number()


def timed_out(app: App) -> str:
    past = utcnow() - dt.timedelta(minutes=10)
    return finished(app, decision=None, reasons=(), state=SessionState.OPEN, expires_at=past, nonce_expires_at=past)


def expire(app: App, session_id: str) -> None:
    with app.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None
        s.expires_at = s.nonce_expires_at = utcnow() - dt.timedelta(minutes=10)
        db.commit()


def stored_objects(app: App) -> int:
    return len(list(app.ctx.storage.list("sessions/")))


def test_a_session_continues_only_once(app: App) -> None:
    old = timed_out(app)
    objects = stored_objects(app)
    first = again(app, old)
    assert first.status_code == 200, first.text
    assert first.json()["card_kept"] is True
    second = again(app, old)
    assert second.status_code == 409 and second.json()["error"]["code"] == "SESSION_STATE"
    assert "已经继续办理过了" in second.json()["error"]["message"]
    with app.ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(CertSession)) == 2  # the old one and one new
        assert db.get(CertSession, old).state == SessionState.EXPIRED  # type: ignore[union-attr]
    assert stored_objects(app) == objects + 1  # one copy of the card, not one per tap
    assert 'id="again"' not in app.client.get(f"/h5/result/{old}").text  # the page no longer offers it


def test_a_failed_session_continued_once_is_not_continued_again(app: App) -> None:
    old = finished(app)  # rejected: its state cannot change, a later session of the account supersedes it
    assert 'id="again"' in app.client.get(f"/h5/result/{old}").text
    assert again(app, old).status_code == 200
    assert again(app, old).status_code == 409
    assert 'id="again"' not in app.client.get(f"/h5/result/{old}").text


@pytest.fixture
def limited_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """The h5 conftest's app with the per-person session limit at 2 an hour, the limiter's clock held inside one
    window (the test does not depend on the time it runs)."""
    monkeypatch.setattr(limits, "_clock", lambda: 1_800_000_000.0)
    with FakeWeChat() as fake:
        settings = wechat_settings(
            fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'h5.db'}", rate_limit_beneficiary="2/hour"
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with TestClient(create_app(ctx=ctx)) as client:
            with ctx.db() as db:
                bid = factories.beneficiary(db, ctx.keyring, name="李秀英", id_number=NUMBER).id
                db.commit()
            client.cookies.set(identity.COOKIE, identity.mint(ctx, OPENID))
            yield App(client, ctx, bid)


def test_continuing_counts_against_the_persons_session_limit(limited_app: App) -> None:
    """Counted in the bucket the person's typed opening uses: two continuations (each of the session the last
    one opened, timed out in its turn) spend the hour's two sessions, and both a third continuation and typing
    the number again are refused by `beneficiary`."""
    app = limited_app
    sid = timed_out(app)
    for _ in range(2):
        r = again(app, sid)
        assert r.status_code == 200, r.text
        sid = r.json()["session_id"]
        expire(app, sid)
    assert limited(again(app, sid), "beneficiary")
    typed = app.client.post("/h5/api/sessions", json={"name": "李秀英", "id_number": NUMBER, "consent": True})
    assert limited(typed, "beneficiary")


def test_another_accounts_session_id_spends_nobodys_limit(limited_app: App) -> None:
    """A session id of another account is answered as unknown and counts against no person's cap."""
    app = limited_app
    theirs = timed_out(app)
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, "openid-stranger"))
    assert [again(app, theirs).status_code for _ in range(3)] == [404, 404, 404]
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, OPENID))
    assert again(app, theirs).status_code == 200
