"""Who may read a person's roster status (a recorded death) from the H5 pages' failed-result screen: the assistance
form and "继续认证" follow one rule (service/features/wechat/h5/roster_told.py). The person's own account (a self
certification of the current person accepted from it, not revoked) and a relative whose binding was accepted are
told; whoever only typed a name and number (a self session, a pending binding) is answered as for an unknown
record. Through the real app (SQLite file, the fake WeChat server); docs/security.md Part BP."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from service.certification.models import AuditEntry, Beneficiary, BeneficiaryStatus, Certification, CertSession, utcnow
from service.features.proxy.operators import H5_CLIENT, channel_hashes
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatUser
from tests.service import factories
from tests.service.features.wechat.h5 import test_assist_requests
from tests.service.features.wechat.h5.test_assist_requests import (
    NAME,
    OPENID,
    OTHER,
    World,
    apply,
    error_of,
    failed_session,
    open_requests,
)

w = test_assist_requests.w  # the fixture: the real app, one person on the roster

UNKNOWN = "姓名与身份证号不一致,或不在本地待遇人员名册中"
DECEASED = "该人员已登记死亡,不能申请"


def _record_death(w: World) -> str:
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        b.status = BeneficiaryStatus.DECEASED
        return b.external_id


def _accepted(w: World, sid: str, days_ago: int = 0) -> None:
    """The self session `sid` accepted (the person's face matched), `days_ago` days ago."""
    with w.ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        s.decision = "accept"
        s.created_at = utcnow() - dt.timedelta(days=days_ago)


def _active_binding_of(w: World, openid: str, client: str = H5_CLIENT) -> None:
    """`openid`'s relative's account made by `client` (the H5 pages' family account by default; a channel key's
    name `api:<8 hex>` for a bank's app that said this openid) bound to the person, the binding accepted."""
    with w.ctx.db() as db:
        hashed = channel_hashes(w.ctx, "wechat", openid)[0]
        factories.relative_binding(db, w.beneficiary_id, channel_hash=hashed, consent_at=utcnow(), client=client)


def _refusals(w: World, action: str) -> list[tuple[str, str]]:
    with w.ctx.db() as db:
        return [
            (e.target, e.detail["reason"]) for e in db.scalars(select(AuditEntry).where(AuditEntry.action == action))
        ]


def test_continuing_a_strangers_session_tells_nothing_of_a_death(w: World) -> None:
    """A self session opened by typing a name and number, failed; the person is then recorded deceased. "继续认证"
    on the same screen answered 409 BENEFICIARY_DECEASED ("已登记死亡"): it answers like another user's session
    now, and staff read the reason in the audit."""
    sid, theirs = failed_session(w), failed_session(w, OTHER)
    external_id = _record_death(w)
    r = w.client.post(f"/h5/api/sessions/{sid}/again")
    not_theirs = w.client.post(f"/h5/api/sessions/{theirs}/again")
    assert r.status_code == not_theirs.status_code == 404, r.text
    assert r.json()["error"] == not_theirs.json()["error"]
    assert "死亡" not in r.text
    assert _refusals(w, "h5.session.refused") == [(external_id, "deceased")]


def test_continuing_is_told_of_a_death_by_the_persons_own_account_or_an_accepted_relative(w: World) -> None:
    """The person's own account, or a relative whose binding was accepted filming the elder with the self flow on
    their own phone, reads why the session cannot continue."""
    own, relative = failed_session(w), failed_session(w, OTHER)
    _accepted(w, failed_session(w), days_ago=1)
    _active_binding_of(w, OTHER)
    _record_death(w)
    r = w.client.post(f"/h5/api/sessions/{own}/again")
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED", r.text
    w.client.cookies.set(identity.COOKIE, identity.mint(w.ctx, OTHER))
    r = w.client.post(f"/h5/api/sessions/{relative}/again")
    assert r.status_code == 409 and r.json()["error"]["code"] == "BENEFICIARY_DECEASED", r.text
    assert _refusals(w, "h5.session.refused") == []


def test_a_relative_with_an_accepted_binding_is_told_on_the_self_flows_form(w: World) -> None:
    """A relative bound to the elder (accepted) who filmed them with the self flow: the form's refusal names the
    death, as on the family page's form (it said "unknown")."""
    sid = failed_session(w)
    _active_binding_of(w, OPENID)
    _record_death(w)
    status, text = apply(w, sid)
    assert status == 409 and error_of(text) == DECEASED, (status, error_of(text))


def test_a_channel_keys_account_for_the_same_openid_is_not_told(w: World) -> None:
    """A bank's app (a channel key) made a relative's account for this openid and its binding to the elder was
    accepted: the app's openid is only what the app said, not shown to be this WeChat user's (Part BV), so the H5
    pages' own account is the one that counts (`operators.h5_account`). The form and "继续认证" said
    "已登记死亡" to whoever holds the WeChat login of that openid; they answer as for an unknown record now."""
    sid = failed_session(w)
    _active_binding_of(w, OPENID, client="api:0badc0de")
    external_id = _record_death(w)
    status, text = apply(w, sid)
    assert status == 404 and error_of(text) == UNKNOWN, (status, error_of(text))
    r = w.client.post(f"/h5/api/sessions/{sid}/again")
    assert r.status_code == 404 and "死亡" not in r.text, r.text
    assert _refusals(w, "assist.refused") == [(external_id, "deceased")]
    assert "死亡" not in _result_page(w, sid, OPENID)


def test_the_persons_own_account_is_told_on_the_plain_form(w: World) -> None:
    """The person's own account on /h5/apply (no session: the form asks who; a person recorded deceased is not
    offered as the last one, `requests._last_person`) typing the person's name and number reads why; the form of
    an account that only typed the person's name and number to open a session still tells nothing."""
    _accepted(w, failed_session(w), days_ago=1)
    with w.ctx.db() as db:
        db.add_all([WeChatUser(openid=o, beneficiary_id=w.beneficiary_id) for o in (OPENID, OTHER)])
    external_id = _record_death(w)
    typed = {"name": NAME, "id_number": factories.id_number(seq=7)}
    status, text = apply(w, **typed)
    assert status == 409 and error_of(text) == DECEASED, (status, error_of(text))
    w.client.cookies.set(identity.COOKIE, identity.mint(w.ctx, OTHER))
    status, text = apply(w, **typed)
    assert status == 404 and error_of(text) == UNKNOWN
    assert _refusals(w, "assist.refused") == [(external_id, "deceased")]


def test_an_account_that_certified_the_records_previous_person_is_not_told(w: World) -> None:
    """The account certified the record's previous person (accepted); the roster then gave the record another ID
    number. A session it opens for the new person (by typing the new name and number) is a stranger's: it was told
    of the new person's death."""
    _accepted(w, failed_session(w), days_ago=30)
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        b.identity_since = utcnow() - dt.timedelta(days=1)
    sid = failed_session(w)
    external_id = _record_death(w)
    status, text = apply(w, sid)
    assert status == 404 and error_of(text) == UNKNOWN, (status, error_of(text))
    assert w.client.post(f"/h5/api/sessions/{sid}/again").status_code == 404
    assert open_requests(w) == []
    assert _refusals(w, "assist.refused") == [(external_id, "deceased")]


def test_an_account_whose_certification_of_the_person_was_revoked_is_not_told(w: World) -> None:
    """A certification from this account accepted and then revoked (found fraudulent): the account was not shown
    to be the person's."""
    old = failed_session(w)
    _accepted(w, old, days_ago=1)
    today = dt.date.today()
    with w.ctx.db() as db:
        db.add(
            Certification(
                beneficiary_id=w.beneficiary_id,
                session_id=old,
                certified_on=today,
                valid_until=today + dt.timedelta(days=365),
                code="revoked-" + old[:8],
                revoked_at=utcnow(),
            )
        )
    sid = failed_session(w)
    _record_death(w)
    status, text = apply(w, sid)
    assert status == 404 and error_of(text) == UNKNOWN, (status, error_of(text))
    assert w.client.post(f"/h5/api/sessions/{sid}/again").status_code == 404


def _result_page(w: World, sid: str, openid: str) -> str:
    w.client.cookies.set(identity.COOKIE, identity.mint(w.ctx, openid))
    page = w.client.get(f"/h5/result/{sid}")
    assert page.status_code == 200, page.text
    return str(page.text)


def test_a_strangers_result_page_names_no_death(w: World) -> None:
    """A self session opened by typing, its video queued; the roster records the death meanwhile and the worker's
    accept becomes a reject for BENEFICIARY_DECEASED. The result page the WeChat message links to said
    "该人员已登记死亡,无法认证" (and offered a retake "继续认证" then refused as an unknown session). Now: a plain
    "认证未通过", the same page as a reason nobody may read, no try offered; the person's own account and an
    accepted relative read why, and are not offered a try that cannot succeed either."""
    stranger, own, relative = failed_session(w, OTHER), failed_session(w), failed_session(w, "openid-relative")
    unknown = failed_session(w, OTHER)
    _accepted(w, failed_session(w), days_ago=1)  # OPENID: the person's own account
    _active_binding_of(w, "openid-relative")
    for sid in (stranger, own, relative):
        factories.update(w.ctx, CertSession, sid, reasons=["BENEFICIARY_DECEASED"])
    factories.update(w.ctx, CertSession, unknown, reasons=["NO_SUCH_CODE"])  # a reason with no citizen text
    _record_death(w)
    page = _result_page(w, stranger, OTHER)
    assert "死亡" not in page and "认证未通过" in page
    assert 'id="again"' not in page and 'id="attempts-left"' not in page and "重新认证" not in page
    assert page.replace(stranger, "-") == _result_page(w, unknown, OTHER).replace(unknown, "-")
    for sid, openid in ((own, OPENID), (relative, "openid-relative")):
        page = _result_page(w, sid, openid)
        assert "该人员已登记死亡,无法认证" in page, openid
        assert 'id="again"' not in page and 'id="attempts-left"' not in page, openid
