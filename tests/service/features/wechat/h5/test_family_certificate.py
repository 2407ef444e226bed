"""The elder's certificate copy on the family page, for a relative who uses only the H5 pages (a WeChat login, no
operator token a link could carry).

Found by review: Part BZ served the copy to a bound relative's operator token (the proxy API) and to the person's
own login (我的信息), but the family page linked nothing: a relative certifying through these pages alone could not
get the certificate of the elder they certify for."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from service.certification import sessions
from service.certification.models import AuditEntry, Beneficiary, Certification, Channel, SessionState, utcnow
from service.certification.processing import accept_session
from service.certification.revocation import revoke_certification
from service.features.proxy import operators
from service.features.proxy.models import BindingStatus, ProxyBinding
from service.features.wechat.h5 import identity
from service.features.wechat.h5.family import STOPPED_TEXT
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App


def bound_elder(app: App, status: BindingStatus = BindingStatus.ACTIVE, client: str = operators.H5_CLIENT) -> str:
    """The binding id of a new elder to OPENID's relative's account (made by `client`: the H5 pages by default)."""
    with app.ctx.db() as db:
        op = operators.login(db, app.ctx, "wechat", OPENID, client).operator
        elder = factories.beneficiary(db, app.ctx.keyring, name="王桂兰")
        db.flush()
        row = ProxyBinding(
            id=str(uuid.uuid4()), operator_id=op.id, beneficiary_id=elder.id, relationship="child", status=status
        )
        db.add(row)
        db.commit()
        return row.id


def certified(app: App, binding_id: str) -> int:
    """The elder of `binding_id` certified today, a case referred to review yesterday and accepted by staff now (its
    session's token long expired): the certification's id."""
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding_id)
        assert row is not None
        b = db.get(Beneficiary, row.beneficiary_id)
        assert b is not None
        s = sessions.create_session(db, app.ctx, b, Channel.SELF, False, "test").session
        yesterday = utcnow() - dt.timedelta(hours=18)
        s.state, s.decision, s.decided_at, s.expires_at = SessionState.DECIDED, "accept", yesterday, yesterday
        db.flush()
        accept_session(db, app.ctx, s, b, local_today(app.ctx.settings), None)
        cid = db.scalars(select(Certification.id).where(Certification.session_id == s.id)).one()
        db.commit()
        return cid


def _url(binding_id: str) -> str:
    return f"/h5/family/bindings/{binding_id}/certificate.png"


def test_the_relative_gets_the_elders_certificate_from_the_family_page(app: App) -> None:
    binding = bound_elder(app)
    cid = certified(app, binding)
    r = app.client.get(_url(binding))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert r.headers["cache-control"] == "no-store"
    with app.ctx.db() as db:
        op = operators.h5_account(db, app.ctx, OPENID)
        assert op is not None
        copies = db.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.copy")).all()
        assert [(e.actor, e.detail) for e in copies] == [
            (operators.actor(op), {"certification": cid, "binding": binding})
        ]
    # The family page's script links it for a certified elder (what /h5/api/family/elders says of it).
    script = app.client.get("/h5/static/h5-family.js").text
    assert '"/h5/family/bindings/" + encodeURIComponent(e.binding_id) + "/certificate.png"' in script


def test_nobody_else_nor_through_an_ended_binding_nor_an_apps_account(app: App) -> None:
    binding = bound_elder(app)
    certified(app, binding)
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, "openid-someone-else"))
    assert app.client.get(_url(binding)).status_code == 404  # no account of theirs
    with app.ctx.db() as db:
        operators.login(db, app.ctx, "wechat", "openid-someone-else", operators.H5_CLIENT)
        db.commit()
    r = app.client.get(_url(binding))  # another relative's binding reads as an unknown one
    assert r.status_code == 404 and "该家人不在您当前的代办绑定中" in r.text
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, OPENID))
    assert app.client.get(_url(str(uuid.uuid4()))).status_code == 404
    factories.update(app.ctx, ProxyBinding, binding, status=BindingStatus.ENDED)
    r = app.client.get(_url(binding))
    assert r.status_code == 404 and "该家人不在您当前的代办绑定中" in r.text


def test_not_to_a_channel_keys_account_for_the_same_openid(app: App) -> None:
    """An app's account is its app's (Part BV): the H5 login, whose openid the app only claimed, reads none of it."""
    binding = bound_elder(app, client="api:0a1b2c3d")
    certified(app, binding)
    assert app.client.get(_url(binding)).status_code == 404
    with app.ctx.db() as db:
        assert db.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.copy")).all() == []


def test_pending_consent_and_a_revoked_certificate_say_why(app: App) -> None:
    pending = bound_elder(app, BindingStatus.PENDING_CONSENT)
    certified(app, pending)
    r = app.client.get(_url(pending))
    assert r.status_code == 409 and "老人尚未同意绑定" in r.text
    binding = bound_elder(app)
    assert app.client.get(_url(binding)).status_code == 404  # never certified
    cid = certified(app, binding)
    with app.ctx.db() as db:
        revoke_certification(db, app.ctx.rules, cid, "impersonation", "冒用", "staff:sup1", hold_days=180)
        db.commit()
    r = app.client.get(_url(binding))
    assert r.status_code == 409 and "该凭证已被经办机构撤销" in r.text
    assert "冒用" not in r.text  # the reason is the office's


def _elders(app: App) -> dict[str, dict[str, object]]:
    """/h5/api/family/elders for OPENID's relative (a new login's token: the latest counts), by binding id."""
    with app.ctx.db() as db:
        token = operators.login(db, app.ctx, "wechat", OPENID, operators.H5_CLIENT).token
        db.commit()
    r = app.client.get("/h5/api/family/elders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return {str(e["binding_id"]): e for e in r.json()["elders"]}


def _stopped_by_roster(app: App, binding_id: str) -> None:
    """The roster says the benefit system stopped paying the binding's elder here (transferred out)."""
    row = factories.update(app.ctx, ProxyBinding, binding_id)
    factories.update(app.ctx, Beneficiary, row.beneficiary_id, roster_status="suspended")


def test_an_elder_the_roster_stopped_keeps_the_link_to_a_certificate_still_valid(app: App) -> None:
    """Found by review: the line of an elder the roster stopped here (a transfer out) said 名册显示待遇已停止… and lost
    the certificate link, though the copy was still served: the relative who must show it to the new bureau could
    not find it. Now the line keeps the link while a certificate is valid today (the rule the copy is served by)."""
    binding = bound_elder(app)
    certified(app, binding)
    assert _elders(app)[binding]["certificate"] is True  # certified: linked, as before
    _stopped_by_roster(app, binding)
    line = _elders(app)[binding]
    assert (line["state"], line["text"], line["certificate"]) == ("stopped_by_roster", STOPPED_TEXT, True)
    r = app.client.get(_url(binding))  # what the link opens
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    script = app.client.get("/h5/static/h5-family.js").text  # the page links what the list says to link
    assert "if (e.certificate) {" in script and 'e.state === "certified"' not in script


def test_an_elder_the_roster_stopped_without_a_valid_certificate_gets_no_link(app: App) -> None:
    """Never certified, revoked or expired: the line says why nothing is asked and links nothing (the link would
    open a refusal: 暂无有效的认证凭证)."""
    never = bound_elder(app)
    revoked, expired = bound_elder(app), bound_elder(app)
    revoked_id, expired_id = certified(app, revoked), certified(app, expired)
    with app.ctx.db() as db:
        revoke_certification(db, app.ctx.rules, revoked_id, "impersonation", "冒用", "staff:sup1", hold_days=180)
        db.commit()
    factories.update(app.ctx, Certification, expired_id, valid_until=local_today(app.ctx.settings) - dt.timedelta(1))
    for binding in (never, revoked, expired):
        _stopped_by_roster(app, binding)
    lines = _elders(app)
    for binding, status in ((never, 404), (revoked, 409), (expired, 409)):
        line = lines[binding]
        assert (line["state"], line["certificate"]) == ("stopped_by_roster", False), line
        assert app.client.get(_url(binding)).status_code == status


def test_every_line_links_the_copy_exactly_when_the_copy_is_served(app: App) -> None:
    """Found by review: the link followed the copy's rule for a stopped elder only. An elder due soon (every elder,
    the month before the certification runs out) holds a valid certificate and got no link; an elder the roster
    alone dated (a valid-until date, no certification here) read 已认证 and linked a copy that was refused."""
    due, dated = bound_elder(app), bound_elder(app)
    certified(app, due)
    soon = local_today(app.ctx.settings) + dt.timedelta(days=10)
    factories.update(app.ctx, Beneficiary, factories.update(app.ctx, ProxyBinding, due).beneficiary_id,
                     valid_until=soon)  # fmt: skip
    later = local_today(app.ctx.settings) + dt.timedelta(days=200)
    factories.update(app.ctx, Beneficiary, factories.update(app.ctx, ProxyBinding, dated).beneficiary_id,
                     valid_until=later)  # fmt: skip
    lines = _elders(app)
    assert (lines[due]["state"], lines[due]["certificate"]) == ("due_soon", True), lines[due]
    assert app.client.get(_url(due)).status_code == 200
    assert (lines[dated]["state"], lines[dated]["certificate"]) == ("certified", False), lines[dated]
    assert app.client.get(_url(dated)).status_code == 404
