"""The person's own data from WeChat (PIPL arts. 15, 44–47): the "我的信息" page, the withdrawal of the consent to
keep a face template, and the end of a relative's binding by the elder, through the real app (SQLite, real
storage, the fake WeChat server). docs/security.md, Part AL; docs/wechat.md."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
from sqlalchemy import select

from pipelines.decision.result import Outcome
from pipelines.decision.runner import Template
from proxy_auth import ConsentMethod
from service.certification import sessions
from service.certification.models import (
    AuditEntry,
    Beneficiary,
    Certification,
    CertSession,
    Channel,
    SessionState,
    utcnow,
)
from service.certification.processing import _apply
from service.features.proxy import bindings, operators
from service.features.proxy.models import (
    BindingStatus,
    ProxyBinding,
    ProxyOperator,
    ProxyOperatorIdentity,
    ProxySession,
    ProxySessionKind,
)
from service.features.wechat.h5 import identity, my_data
from service.features.wechat.h5.targets import safe_target
from service.features.wechat.models import WeChatSessionLink
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App

MODEL = "test-model"
WORKER = "w-my-data"


def certified(app: App, openid: str = OPENID, enrol: bool = True) -> str:
    """The test's person certified themselves from `openid` with consent to keep the template (enrolled)."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        s = sessions.create_session(db, app.ctx, b, Channel.SELF, True, "test").session
        s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow()
        db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        code = "code-" + s.id
        until = dt.date(2027, 3, 1)
        db.add(
            Certification(
                beneficiary_id=b.id, session_id=s.id, certified_on=dt.date(2026, 3, 1), valid_until=until, code=code
            )
        )
        b.valid_until = dt.date(2027, 3, 1)
        if enrol:
            factories.enrol_template(app.ctx.keyring, b, np.ones(8, dtype=np.float32), MODEL)
        db.commit()
        return s.id


def form_token(page: str) -> str:
    found = re.search(r'name="form" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def template_of(app: App) -> tuple[bytes | None, str | None, bool]:
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        return b.template, b.template_model, b.template_consent


def audited(app: App, action: str) -> list[AuditEntry]:
    with app.ctx.db() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        db.expunge_all()
        return list(rows)


def test_the_page_shows_the_persons_own_data_masked(app: App) -> None:
    certified(app)
    page = app.client.get("/h5/me")
    assert page.status_code == 200, page.text
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        number = app.ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
        external_id, masked = b.external_id, b.id_masked
    assert "李*英" in page.text and masked in page.text
    assert "李秀英" not in page.text and number not in page.text  # masked only
    assert "2027年3月1日" in page.text  # valid until, and the certification listed
    assert 'id="template-kept"' in page.text and 'id="withdraw"' in page.text
    assert "30 天" in page.text  # how long videos are kept (the retention setting)
    assert [e.target for e in audited(app, "h5.my_data.view")] == [external_id]  # the view is an access


def test_withdrawing_erases_the_template_and_is_audited(app: App) -> None:
    certified(app)
    token = form_token(app.client.get("/h5/me").text)
    r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/h5/me?done=template"
    assert template_of(app) == (None, None, False)
    entries = audited(app, "template.withdrawn")
    assert len(entries) == 1 and entries[0].detail["via"] == "wechat" and entries[0].detail["template_cleared"]
    after = app.client.get("/h5/me?done=template").text
    assert "已撤回" in after and 'id="template-none"' in after and 'id="withdraw"' not in after


def test_another_account_can_neither_see_nor_withdraw(app: App) -> None:
    """An account that only typed the person's name and number (anyone may), or a relative's: not the person's own
    account (service/features/wechat/accounts.py): nothing shown, nothing withdrawn."""
    certified(app)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        # The stranger typed the person's name and number: a self session, rejected.
        typed = sessions.create_session(db, app.ctx, b, Channel.SELF, True, "test").session
        typed.state, typed.decision, typed.decided_at = SessionState.DECIDED, "reject", utcnow()
        db.add(WeChatSessionLink(session_id=typed.id, openid="openid-stranger"))
        # And certified the person as a relative: a proxy session, accepted.
        op = operators.login(db, app.ctx, "wechat", "openid-stranger", "test").operator
        proxied = sessions.create_session(db, app.ctx, b, Channel.SELF, False, "test").session
        proxied.state, proxied.decision, proxied.decided_at = SessionState.DECIDED, "accept", utcnow()
        db.add(WeChatSessionLink(session_id=proxied.id, openid="openid-stranger"))
        db.add(ProxySession(session_id=proxied.id, kind=ProxySessionKind.CERTIFICATION.value, operator_id=op.id))
        db.commit()
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, "openid-stranger"))
    page = app.client.get("/h5/me")
    assert page.status_code == 200 and "李*英" not in page.text and 'id="withdraw"' not in page.text
    token = form_token_for(app, "openid-stranger")
    r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 404
    assert template_of(app)[0] is not None


def test_the_page_without_the_identity_cookie_goes_to_wechats_login(app: App) -> None:
    app.client.cookies.clear()
    r = app.client.get("/h5/me", follow_redirects=False)
    assert r.status_code == 302 and "oauth2/authorize" in r.headers["location"]
    assert "state=" + b"/h5/me".hex() in r.headers["location"]  # back to this page after the login
    assert "李*英" not in r.text


def test_the_previous_number_holders_account_sees_nothing_after_the_roster_change(app: App) -> None:
    """The roster gave the record another ID number after the certification: that account was the previous
    number's person (service/certification/current_person.py), not this one's."""
    certified(app)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        b.identity_since = utcnow()
        db.commit()
    page = app.client.get("/h5/me").text
    assert "李*英" not in page and 'id="none"' in page


def form_token_for(app: App, openid: str) -> str:
    return my_data.form_token(app.ctx, openid)


def test_a_withdrawal_without_the_pages_form_token_is_refused(app: App) -> None:
    """A form posted from another site (the cookie sent along) carries no token of this account's: 403."""
    certified(app)
    for data in ({}, {"form": "x"}, {"form": form_token_for(app, "openid-other")}):
        r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data=data, follow_redirects=False)
        assert r.status_code == 403, data
    assert template_of(app)[0] is not None


def test_a_session_in_flight_with_consent_does_not_enrol_after_the_withdrawal(app: App) -> None:
    """The race: the worker read the session's consent, ran the models; the person withdrew meanwhile. The accept
    certifies but stores no template (the consent is read again under the session's lock)."""
    certified(app, enrol=False)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        s = sessions.create_session(db, app.ctx, b, Channel.SELF, True, "test").session
        s.state, s.worker_id, s.queued_at = SessionState.PROCESSING, WORKER, utcnow()
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        db.commit()
        sid = s.id
    token = form_token(app.client.get("/h5/me").text)
    assert 'id="withdraw"' in app.client.get("/h5/me").text  # a consent pending in a session: withdrawable
    r = app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 303
    tpl = Template(np.ones(8, dtype=np.float32), MODEL)
    assert _apply(app.ctx, sid, WORKER, Outcome.ACCEPT, [], {"decision": "accept"}, tpl)
    with app.ctx.db() as db:
        assert db.scalar(select(Certification.id).where(Certification.session_id == sid)) is not None
    assert template_of(app) == (None, None, False)


def test_a_timed_out_session_continued_after_the_withdrawal_carries_no_consent(app: App) -> None:
    certified(app)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        old = sessions.create_session(db, app.ctx, b, Channel.SELF, True, "test").session
        old.state = SessionState.EXPIRED
        db.add(WeChatSessionLink(session_id=old.id, openid=OPENID))
        db.commit()
        old_id = old.id
    token = form_token(app.client.get("/h5/me").text)
    app.client.post(f"/h5/me/{app.beneficiary_id}/template/withdraw", data={"form": token}, follow_redirects=False)
    r = app.client.post(f"/h5/api/sessions/{old_id}/again")
    assert r.status_code == 200, r.text
    with app.ctx.db() as db:
        new = db.get(CertSession, r.json()["session_id"])
        assert new is not None and new.template_consent is False


def bound_relative(app: App, elder_id: int | None = None, client: str = operators.H5_CLIENT) -> str:
    """A verified relative (their own WeChat account, made by the H5 pages; or by `client`, a channel key's name
    `api:<8 hex>` for a bank's app that said this openid) bound to the test's person (or `elder_id`), the elder's
    consent recorded."""
    with app.ctx.db() as db:
        elder = db.get(Beneficiary, elder_id or app.beneficiary_id)
        assert elder is not None
        op = operators.login(db, app.ctx, "wechat", "openid-relative", client).operator
        relative = factories.id_number(region="110101", birth=dt.date(1975, 1, 2))
        operators.mark_verified(op, app.ctx.keyring.id_hash(relative), relative[:4] + "**", "王建国")
        db.flush()
        number = app.ctx.keyring.decrypt_field(elder.id_enc, "beneficiary.id_number")
        row = bindings.bind(db, app.ctx, op, elder.name, number, "child")
        assert bindings.record_consent(db, row, ConsentMethod.STAFF_APPROVAL, "staff-007", "test") is None
        db.commit()
        return row.id


def test_the_elder_sees_and_ends_a_relatives_binding(app: App) -> None:
    certified(app)
    binding = bound_relative(app)
    page = app.client.get("/h5/me").text
    # The relationship and the relative's name masked (the elder tells relatives apart), never the full name.
    assert "子女 王*国" in page and "王建国" not in page
    r = app.client.post(
        f"/h5/me/{app.beneficiary_id}/bindings/{binding}/end", data={"form": form_token(page)}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/h5/me?done=binding"
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding)
        assert row is not None and row.status == BindingStatus.WITHDRAWN and row.ended_at is not None
    entries = audited(app, "proxy.binding.ended_by_elder")
    assert len(entries) == 1 and entries[0].detail["binding"] == binding
    again = app.client.post(
        f"/h5/me/{app.beneficiary_id}/bindings/{binding}/end", data={"form": form_token(page)}, follow_redirects=False
    )
    assert again.status_code == 404  # ended already: as an unknown one


def test_a_binding_of_someone_else_cannot_be_ended_from_the_page(app: App) -> None:
    certified(app)
    with app.ctx.db() as db:
        other = factories.beneficiary(db, app.ctx.keyring, name="赵大海", id_number=factories.id_number(seq=777))
        db.commit()
        other_id = other.id
    others = bound_relative(app, other_id)
    token = form_token(app.client.get("/h5/me").text)
    # Another person's binding under the person's own id, and under the other person's id: both unknown.
    for bid in (app.beneficiary_id, other_id):
        r = app.client.post(f"/h5/me/{bid}/bindings/{others}/end", data={"form": token}, follow_redirects=False)
        assert r.status_code == 404
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, others)
        assert row is not None and row.status == BindingStatus.ACTIVE


def test_the_start_and_result_pages_link_to_the_page(app: App) -> None:
    sid = certified(app)
    assert 'href="/h5/me"' in app.client.get("/h5/").text
    assert 'href="/h5/me"' in app.client.get(f"/h5/result/{sid}").text


def relative_with_a_template(app: App, binding: str) -> str:
    """The operator of `binding`, given a stored face template (as a real-name verification with consent keeps
    one): its id."""
    with app.ctx.db() as db:
        row = db.get(ProxyBinding, binding)
        assert row is not None
        op = db.get(ProxyOperator, row.operator_id)
        assert op is not None
        operators.store_template(app.ctx, op, np.ones(8, dtype=np.float32), MODEL)
        db.commit()
        return op.id


def test_a_relative_withdraws_their_own_template(app: App) -> None:
    """The relative ticked "同意保存我的人脸特征" at their real-name verification: from the same account's page they
    withdraw it, the template of every account of theirs goes, and nothing of the elder's is shown to them."""
    op_id = relative_with_a_template(app, bound_relative(app))
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, "openid-relative"))
    page = app.client.get("/h5/me").text
    assert 'id="relative-template"' in page and "李*英" not in page and 'id="withdraw"' not in page
    r = app.client.post("/h5/me/relative-template/withdraw", data={"form": form_token(page)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/h5/me?done=operator"
    with app.ctx.db() as db:
        who = db.get(ProxyOperatorIdentity, op_id)
        assert who is not None and (who.template, who.template_model, who.template_consent) == (None, None, False)
        assert who.verified_at is not None  # still verified: certifying for the elder goes on
    assert [e.target for e in audited(app, "proxy.operator.template.withdrawn")] == [op_id]
    assert 'id="relative-template"' not in app.client.get("/h5/me").text
    forged = app.client.post("/h5/me/relative-template/withdraw", data={"form": "x"}, follow_redirects=False)
    assert forged.status_code == 403


def test_a_channel_keys_account_for_the_same_openid_is_not_the_pages(app: App) -> None:
    """A bank's app (a channel key) made a relative's account for this openid and kept its user's face template: the
    app's openid is only what the app said, not shown to be this WeChat user's (Part BV). The page showed that
    template as this account's and its form deleted it; the page shows none now and the form answers as for an
    unknown account, the app's template kept."""
    op_id = relative_with_a_template(app, bound_relative(app, client="api:0badc0de"))
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, "openid-relative"))
    page = app.client.get("/h5/me").text
    assert 'id="relative-template"' not in page
    token = form_token_for(app, "openid-relative")  # the account's own form token: the post is its own
    r = app.client.post("/h5/me/relative-template/withdraw", data={"form": token}, follow_redirects=False)
    assert r.status_code == 404
    with app.ctx.db() as db:
        who = db.get(ProxyOperatorIdentity, op_id)
        assert who is not None and who.template is not None and who.template_consent is True
    assert audited(app, "proxy.operator.template.withdrawn") == []


def test_the_page_is_a_login_target() -> None:
    """Opened without the cookie (a menu entry, the next day), the page comes back after WeChat's login, not the
    start page."""
    assert safe_target("/h5/me") == "/h5/me"


def test_the_new_number_holder_sees_none_of_the_previous_holders_certifications(app: App) -> None:
    """The roster gave the record another ID number (a record handed to someone else): the person who certifies
    from then on sees their own certifications, not the previous number's person's days, nor the day that person
    consented to keep a face (service/certification/current_person.py; docs/security.md, Part AL)."""
    certified(app, openid="openid-previous-holder")  # certified on 2026-03-01, template kept with consent
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        b.identity_since = utcnow()  # the import: the template is cleared with the previous person's dates
        b.template, b.template_model, b.template_consent, b.valid_until = None, None, False, None
        db.commit()
    with app.ctx.db() as db:  # the new person certifies from their own phone, then enrols at the counter
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        s = sessions.create_session(db, app.ctx, b, Channel.SELF, False, "test").session
        s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow()
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        on, until = dt.date(2026, 11, 20), dt.date(2027, 11, 20)
        db.add(Certification(beneficiary_id=b.id, session_id=s.id, certified_on=on, valid_until=until, code="c-new"))
        b.valid_until = until
        factories.enrol_template(app.ctx.keyring, b, np.ones(8, dtype=np.float32), MODEL)
        db.commit()
    page = app.client.get("/h5/me").text
    assert "2026年11月20日" in page  # their own certification
    assert "2026年3月1日" not in page and "2027年3月1日" not in page  # none of the previous person's
    assert 'id="template-kept"' in page
