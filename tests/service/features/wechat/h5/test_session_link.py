"""What a WeChat login may link to itself (`POST /h5/api/sessions/{id}/link`, `links.link_family_session`): the
session its family page opened, never a channel's session whose token the caller holds,
through the real app (SQLite, real storage, the fake WeChat server)."""

from __future__ import annotations

import datetime as dt

from httpx import Response

from service.certification.models import Beneficiary, Certification, CertSession, SessionState, utcnow
from service.features.wechat.accounts import own_account
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App
from tests.service.features.wechat.h5.test_family_recovery import Family, fam  # noqa: F401 (a fixture)
from tests.service.features.wechat.h5.test_my_data import certified

STRANGER = "openid-stranger"


def _link(app: App, session_id: str, token: str) -> Response:
    r: Response = app.client.post(f"/h5/api/sessions/{session_id}/link", headers={"Authorization": f"Bearer {token}"})
    return r


def _accept(app: App, session_id: str) -> None:
    """The session accepted a moment after the earlier certification, with its certificate, as the worker does."""
    later = utcnow() + dt.timedelta(seconds=1)
    factories.update(app.ctx, CertSession, session_id, state=SessionState.DECIDED, decision="accept", decided_at=later)
    with app.ctx.db() as db:
        on = local_today(app.ctx.settings)
        db.add(
            Certification(
                beneficiary_id=app.beneficiary_id,
                session_id=session_id,
                certified_on=on,
                valid_until=on + dt.timedelta(days=365),
                code="code-" + session_id,
            )
        )
        db.commit()


def test_a_channel_sessions_token_does_not_link_it_to_a_strangers_wechat(app: App) -> None:
    """Before: any session whose token the caller showed was linked; the stranger became the pensioner's own
    account (我的信息) once the bank's session was accepted, and the bank's key read 404 from `/outcome`."""
    certified(app)  # the pensioner's own WeChat (OPENID) certified them from these pages
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        external_id = b.external_id
        assert own_account(db, app.beneficiary_id) == OPENID
    bank = {"X-API-Key": app.ctx.settings.security.api_keys[0]}
    opened = app.client.post("/api/v1/sessions", json={"external_id": external_id, "channel": "self"}, headers=bank)
    assert opened.status_code == 201, opened.text
    sid, token = opened.json()["session_id"], opened.json()["token"]

    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, STRANGER))
    r = _link(app, sid, token)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    _accept(app, sid)
    with app.ctx.db() as db:
        assert db.get(WeChatSessionLink, sid) is None
        assert own_account(db, app.beneficiary_id) == OPENID
    assert "李*英" not in app.client.get("/h5/me").text  # the stranger's 我的信息 shows no one
    outcome = app.client.get(f"/api/v1/sessions/{sid}/outcome", headers=bank)
    assert outcome.status_code == 200 and outcome.json()["decision"] == "accept"


def test_a_link_made_before_the_fix_does_not_take_the_channels_outcome(app: App) -> None:
    """A link already stored for a channel's session (made before the link was confined): the key that opened the
    session still reads its outcome; `attempts.requesters` names the key, not the linked WeChat."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        external_id = b.external_id
    bank = {"X-API-Key": app.ctx.settings.security.api_keys[0]}
    opened = app.client.post("/api/v1/sessions", json={"external_id": external_id, "channel": "self"}, headers=bank)
    sid = opened.json()["session_id"]
    with app.ctx.db() as db:
        db.add(WeChatSessionLink(session_id=sid, openid=STRANGER))
        db.commit()
    assert app.client.get(f"/api/v1/sessions/{sid}/outcome", headers=bank).status_code == 200


def test_the_family_pages_proxy_session_is_linked_to_the_relatives_login(app: App, fam: Family) -> None:  # noqa: F811
    """What the link is for: the family page opens a proxy certification with this login's account and hands it
    to the capture page, whose script links it (h5.js, `mode !== "self"`)."""
    auth = {"Authorization": f"Bearer {fam.token}"}
    opened = app.client.post(f"/api/v1/proxy/bindings/{fam.binding_id}/sessions", headers=auth)
    assert opened.status_code == 201, opened.text
    sid, token = opened.json()["session_id"], opened.json()["token"]
    r = _link(app, sid, token)
    assert r.status_code == 200 and r.json() == {"session_id": sid, "linked": True}
    with app.ctx.db() as db:
        link = db.get(WeChatSessionLink, sid)
        assert link is not None and link.openid == OPENID

    # Another WeChat login, with the token too: not its family page's session.
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, STRANGER))
    assert _link(app, sid, token).status_code == 404
