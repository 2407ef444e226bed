"""The person's own certificate on "我的信息", by their WeChat login.

Found by review: a certificate was served only with the session's bearer token, within `SESSION_TTL_S` (1 h) of
the video being queued; a case staff accepted the next morning left a certificate nobody could obtain."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import event, select

from service.certification import sessions
from service.certification.models import (
    AuditEntry,
    Beneficiary,
    BeneficiaryStatus,
    Certification,
    Channel,
    SessionState,
    utcnow,
)
from service.certification.processing import accept_session
from service.certification.revocation import revoke_certification
from service.features.wechat.h5 import identity, my_data
from service.features.wechat.models import WeChatSessionLink
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App
from tests.service.features.wechat.h5.test_my_data import certified, template_of
from tests.service.features.wechat.h5.test_my_data_read_only import READ_ONLY, as_account, verified_account


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


SHARED = OPENID  # the test app's login, which `reviewed` certifies from


def _section(page: str, person_id: int) -> str:
    """The part of "我的信息" about one person (a shared account's page lists each of its people)."""
    return page.split(f'id="person-{person_id}"', 1)[1].split('class="person"', 1)[0]


def _husband_verified_on(app: App, openid: str, certified_here: bool) -> int:
    """Her husband, a pensioner too, once did the family page's real-name check on `openid` (to certify for his
    mother); `certified_here`: he also certifies himself from it (the account is his own to the service)."""
    number = factories.id_number(region="110101", birth=dt.date(1950, 5, 6))
    with app.ctx.db() as db:
        husband = factories.beneficiary(db, app.ctx.keyring, name="王建国", id_number=number)
        if certified_here:
            s = factories.session_row(husband.id, state="decided", decision="accept", decided_at=utcnow())
            db.add(s)
            db.flush()
            db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        db.commit()
        hid = husband.id
    verified_account(app, openid, number)
    return hid


def test_a_widow_on_her_late_husbands_account_has_her_own_page_and_certificate(app: App) -> None:
    """She keeps her late husband's WeChat, the only one she has, and certifies herself from it; he had once been
    verified on it as a relative. Before: her page was read-only and her own certificate refused (本微信是家人的账号),
    for a relative recorded deceased."""
    hid = _husband_verified_on(app, SHARED, certified_here=False)
    factories.update(app.ctx, Beneficiary, hid, status=BeneficiaryStatus.DECEASED)
    certified(app, openid=SHARED, enrol=True)
    reviewed(app)  # her latest certification, with a real code
    page = as_account(app, SHARED)
    assert READ_ONLY not in page and 'id="read-only"' not in page
    assert 'id="withdraw"' in page and 'id="certificate"' in page
    r = app.client.get(f"/h5/me/{app.beneficiary_id}/certificate.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    token = my_data.form_token(app.ctx, SHARED)
    r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 303 and template_of(app)[0] is None


@pytest.mark.parametrize("certified_here", [True, False], ids=["household", "husbands-own-phone-elsewhere"])
def test_a_couple_sharing_one_account_each_gets_their_own_certificate(app: App, certified_here: bool) -> None:
    """A couple on one phone, both pensioners certifying themselves from it; he once verified himself on it as a
    relative. Her page stays read-only (the service cannot tell him from a retired son who filmed his mother on
    his phone: a relative must not withdraw her template or end her bindings), but her certificate copy is served
    (before: 403, 请老人本人用自己的微信查看, and she has no other WeChat). Control: a verified husband whose own
    account is another phone leaves the account a relative's, the copy refused as before."""
    _husband_verified_on(app, SHARED, certified_here=certified_here)
    certified(app, openid=SHARED, enrol=True)
    reviewed(app)  # her latest certification, with a real code
    page = _section(as_account(app, SHARED), app.beneficiary_id)  # hers: his own is on the page too
    assert 'id="read-only"' in page and 'id="withdraw"' not in page
    assert ('id="certificate"' in page) == certified_here
    r = app.client.get(f"/h5/me/{app.beneficiary_id}/certificate.png")
    assert r.status_code == (200 if certified_here else 403), r.text
    token = my_data.form_token(app.ctx, SHARED)
    r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 403 and template_of(app)[0] is not None


def test_a_households_certificate_reads_the_accounts_relation_once(app: App) -> None:
    """The certificate page asked whether the account is a relative's (`relative_of`) and then whether it is a
    household's (`others_verified`), each reading the account's relative's accounts and the people verified on
    them: the same rows twice, two homes of one rule. One `elder_bindings.relation_of` answers both now; the
    household's copy is served as before."""
    _husband_verified_on(app, SHARED, certified_here=True)
    certified(app, openid=SHARED, enrol=True)
    reviewed(app)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(app.ctx.engine, "before_cursor_execute", seen)
    try:
        r = app.client.get(f"/h5/me/{app.beneficiary_id}/certificate.png")
    finally:
        event.remove(app.ctx.engine, "before_cursor_execute", seen)
    assert r.status_code == 200, r.text
    accounts = [q for q in statements if re.search(r"FROM proxy_operators\b", q)]
    verified = [q for q in statements if "beneficiaries.id_hash IN" in q]
    assert (len(accounts), len(verified)) == (1, 1), statements
