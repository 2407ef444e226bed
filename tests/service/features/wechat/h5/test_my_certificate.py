"""The person's own certificate on "我的信息", by their WeChat login.

Found by review: a certificate was served only with the session's bearer token, within `SESSION_TTL_S` (1 h) of
the video being queued; a case staff accepted the next morning left a certificate nobody could obtain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from service.certification import sessions
from service.certification.models import AuditEntry, Beneficiary, Certification, Channel, SessionState, utcnow
from service.certification.processing import accept_session
from service.certification.revocation import revoke_certification
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from service.infra.clock import local_today
from tests.service.features.wechat.h5.conftest import OPENID, App
from tests.service.features.wechat.h5.test_my_data_read_only import verified_account


def reviewed(app: App, days_ago: int = 0) -> int:
    """The test's person's own certification from OPENID, referred to review yesterday and accepted by staff now
    (its session's token long expired): the certification's id."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        s = sessions.create_session(db, app.ctx, b, Channel.SELF, False, "test").session
        yesterday = utcnow() - dt.timedelta(hours=18)
        s.state, s.decision, s.decided_at, s.expires_at = SessionState.DECIDED, "accept", yesterday, yesterday
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        db.flush()
        accept_session(db, app.ctx, s, b, local_today(app.ctx.settings) - dt.timedelta(days=days_ago), None)
        cid = db.scalars(select(Certification.id).where(Certification.session_id == s.id)).one()
        db.commit()
        return cid


def test_the_person_gets_their_reviewed_certificate(app: App) -> None:
    cid = reviewed(app)
    page = app.client.get("/h5/me").text
    assert f'href="/h5/me/{app.beneficiary_id}/certificate.png"' in page
    r = app.client.get(f"/h5/me/{app.beneficiary_id}/certificate.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert r.headers["cache-control"] == "no-store"
    with app.ctx.db() as db:
        copies = db.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.copy")).all()
    assert [(e.target, e.detail["certification"]) for e in copies] == [(_external_id(app), cid)]


def test_nobody_else_and_never_a_revoked_one(app: App) -> None:
    cid = reviewed(app)
    url = f"/h5/me/{app.beneficiary_id}/certificate.png"
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, "openid-someone-else"))
    r = app.client.get(url)
    assert r.status_code == 404 and "未找到您的信息" in r.text
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, OPENID))
    with app.ctx.db() as db:
        revoke_certification(db, app.ctx.rules, cid, "impersonation", "冒用", "staff:sup1", hold_days=180)
        db.commit()
    # Revoked: this WeChat is no longer known as the person's own (its certification was the proof), nothing served.
    assert app.client.get(url).status_code == 404
    assert 'id="certificate"' not in app.client.get("/h5/me").text


def test_a_certificate_past_its_date_is_not_served_again(app: App) -> None:
    reviewed(app, days_ago=400)
    r = app.client.get(f"/h5/me/{app.beneficiary_id}/certificate.png")
    assert r.status_code == 409 and "该凭证已超过有效期" in r.text


def _external_id(app: App) -> str:
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        return b.external_id


def test_not_to_a_relatives_account_that_filmed_the_person(app: App) -> None:
    """A relative who filmed the person through the self flow on his own phone is, to the service, the account of
    her latest self-certification: his copy goes through his binding (the proxy API), never through her page."""
    verified_account(app, OPENID)
    reviewed(app)
    assert 'id="certificate"' not in app.client.get("/h5/me").text
    r = app.client.get(f"/h5/me/{app.beneficiary_id}/certificate.png")
    assert r.status_code == 403 and "不能下载老人的认证凭证" in r.text
