"""Recovery without starting over on the family pages, through the real app (SQLite, real storage): a failed
proxy certification, elder's consent or relative's own verification continues at the video step with the card
kept and the elder still named, as the same relative and binding, within the relative's daily limit; and the
family page at that limit leads to the assist request for the elder and the bureau's phone."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from service.certification import sessions
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, UploadKind, utcnow
from service.features.console.models import AssistRequest
from service.features.proxy import operators
from service.features.proxy import sessions as proxy_sessions
from service.features.proxy.models import (
    BindingStatus,
    ProxyBinding,
    ProxyClaim,
    ProxyOperator,
    ProxyOperatorIdentity,
    ProxySession,
    ProxySessionKind,
)
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, PHONE, App
from tests.service.features.wechat.h5.test_recovery import jpeg

RELATIVE = "王建国"
TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')


@dataclass
class Family:
    token: str  # the relative's operator token (the family page's API)
    operator_id: str
    binding_id: str
    relative_id: int  # the relative's own roster row (their verification session claims its number)


@pytest.fixture
def fam(app: App) -> Family:
    """OPENID's relative account, verified, bound (active) to the test's elder (李秀英)."""
    with app.ctx.db() as db:
        login = operators.login(db, app.ctx, "wechat", OPENID, operators.H5_CLIENT)
        op = login.operator
        # Born in 1976: a younger relative (the factory's own numbers are born in 1951 and never equal a fixed one).
        number = factories.id_number(birth=dt.date(1976, 5, 20), seq=77)
        relative = factories.beneficiary(db, app.ctx.keyring, name=RELATIVE, id_number=number)
        operators.mark_verified(op, relative.id_hash, relative.id_masked, RELATIVE)
        row = ProxyBinding(
            id=str(uuid.uuid4()),
            operator_id=op.id,
            beneficiary_id=app.beneficiary_id,
            relationship="child",
            status=BindingStatus.ACTIVE,
            failures=0,
            locked=False,
            flagged=False,
        )
        db.add(row)
        db.commit()
        return Family(login.token, op.id, row.id, relative.id)


def family_session(
    app: App,
    fam: Family,
    kind: ProxySessionKind = ProxySessionKind.CERTIFICATION,
    openid: str = OPENID,
    reasons: tuple[str, ...] = ("CHALLENGE_MISSING_ACTION",),
) -> str:
    """A rejected family session of `kind` as the family page opens it (the relative as requester, linked to
    the WeChat account) and the pipeline leaves it; the card stored through the real upload."""
    with app.ctx.db() as db:
        if kind is ProxySessionKind.VERIFICATION:  # no beneficiary: the relative's claim (issue 20)
            me = db.get(Beneficiary, fam.relative_id)
            op = db.get(ProxyOperator, fam.operator_id)
            assert me is not None and op is not None
            number = app.ctx.keyring.decrypt_field(me.id_enc, "beneficiary.id_number")
            s = proxy_sessions.open_verification(db, app.ctx, op, number, me.name, False).session
        else:
            b = db.get(Beneficiary, app.beneficiary_id)
            assert b is not None
            s = sessions.create_session(db, app.ctx, b, Channel.PROXY, False, f"operator:{fam.operator_id}").session
            db.add(
                ProxySession(session_id=s.id, kind=kind.value, operator_id=fam.operator_id, binding_id=fam.binding_id)
            )
        sessions.upload(db, app.ctx, s, UploadKind.ID_CARD, jpeg(), "image/jpeg", "card-" + s.id)
        s.state, s.decision, s.reasons, s.decided_at = SessionState.DECIDED, "reject", list(reasons), utcnow()
        db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        db.commit()
        return s.id


def again(app: App, session_id: str) -> Any:
    return app.client.post(f"/h5/api/sessions/{session_id}/again")


def set_binding(app: App, fam: Family, **fields: Any) -> None:
    factories.update(app.ctx, ProxyBinding, fam.binding_id, **fields)


def test_a_failed_proxy_video_continues_at_the_video_step_with_the_elder_named(app: App, fam: Family) -> None:
    old = family_session(app, fam)
    r = again(app, old)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["mode"], body["elder_name"], body["card_kept"]) == ("proxy", "李秀英", True)
    assert body["attempts_left"] == 2  # the relative's own limit: 3 a day, one spent
    auth = {"Authorization": f"Bearer {body['token']}"}
    status = app.client.get(f"/api/v1/sessions/{body['session_id']}", headers=auth).json()
    assert status["uploads"] == {"id_card": True, "video": False} and status["state"] == "open"
    with app.ctx.db() as db:
        new = db.get(CertSession, body["session_id"])
        assert new is not None and (new.beneficiary_id, new.channel) == (app.beneficiary_id, "proxy")
        assert new.id_card_key is not None and app.ctx.storage.get(new.id_card_key) == jpeg()
        ps = db.get(ProxySession, new.id)
        assert ps is not None and (ps.kind, ps.operator_id, ps.binding_id) == (
            "certification",
            fam.operator_id,
            fam.binding_id,
        )
        link = db.get(WeChatSessionLink, new.id)
        assert link is not None and link.openid == OPENID  # its result page and message come to this relative


def test_the_failed_result_page_offers_the_video_again_and_the_family_list(app: App, fam: Family) -> None:
    page = app.client.get(f"/h5/result/{family_session(app, fam)}")
    assert page.status_code == 200
    assert 'id="again"' in page.text and "无需再拍身份证" in page.text and 'id="back-family"' in page.text
    assert "为李秀英代办认证" in page.text  # the elder named
    assert "今天还可以再试 <strong>2</strong> 次" in page.text  # counted for the relative who asked


def test_a_failed_consent_video_continues_while_the_binding_awaits_consent(app: App, fam: Family) -> None:
    set_binding(app, fam, status=BindingStatus.PENDING_CONSENT)
    old = family_session(app, fam, ProxySessionKind.CONSENT)
    r = again(app, old)
    assert r.status_code == 200, r.text
    assert (r.json()["mode"], r.json()["elder_name"], r.json()["card_kept"]) == ("consent", "李秀英", True)
    with app.ctx.db() as db:
        ps = db.get(ProxySession, r.json()["session_id"])
        assert ps is not None and (ps.kind, ps.binding_id) == ("consent", fam.binding_id)
    # Approved at the counter meanwhile: nothing left to film.
    set_binding(app, fam, status=BindingStatus.ACTIVE)
    r = again(app, family_session(app, fam, ProxySessionKind.CONSENT))
    assert r.status_code == 409 and r.json()["error"]["code"] == "SESSION_STATE"
    assert r.json()["error"]["message"] == "家人已确认绑定,无需再录像确认。"


def test_a_failed_own_verification_continues_for_the_relative(app: App, fam: Family) -> None:
    with app.ctx.db() as db:  # not verified yet: the verification failed
        op = db.get(ProxyOperator, fam.operator_id)
        assert op is not None and op.identity is not None
        op.identity.verified_at = None
        db.commit()
    old = family_session(app, fam, ProxySessionKind.VERIFICATION)
    r = again(app, old)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "verify" and body["card_kept"] is True and "elder_name" not in body
    with app.ctx.db() as db:
        new = db.get(CertSession, body["session_id"])
        assert new is not None and (new.beneficiary_id, new.channel) == (None, "self")  # issue 20: no row
        claim = db.get(ProxyClaim, new.id)
        assert claim is not None and (claim.operator_id, claim.name) == (fam.operator_id, RELATIVE)
        ps = db.get(ProxySession, new.id)
        assert ps is not None and (ps.kind, ps.operator_id, ps.binding_id) == ("verification", fam.operator_id, None)
    # Verified since (e.g. the next try passed): an older failure is not continued.
    set_verified = family_session(app, fam, ProxySessionKind.VERIFICATION)
    with app.ctx.db() as db:
        op = db.get(ProxyOperator, fam.operator_id)
        assert op is not None and op.identity is not None
        op.identity.verified_at = utcnow()
        db.commit()
    r = again(app, set_verified)
    assert r.status_code == 409 and r.json()["error"]["message"] == "您已完成实名核验,请返回家人列表。"


def test_a_timed_out_proxy_session_continues_without_spending_a_try(app: App, fam: Family) -> None:
    old = family_session(app, fam)
    past = utcnow() - dt.timedelta(minutes=1)
    with app.ctx.db() as db:  # left open past its time (the relative put the phone down)
        s = db.get(CertSession, old)
        assert s is not None
        s.state, s.decision, s.reasons, s.decided_at = SessionState.OPEN, None, [], None
        s.expires_at = s.nonce_expires_at = past
        db.commit()
    r = again(app, old)
    assert r.status_code == 200, r.text
    assert (r.json()["mode"], r.json()["elder_name"], r.json()["card_kept"]) == ("proxy", "李秀英", True)
    assert r.json()["attempts_left"] == 3


def test_a_card_problem_asks_the_relative_for_a_new_photo(app: App, fam: Family) -> None:
    r = again(app, family_session(app, fam, reasons=("ID_TOO_BLURRY",)))
    assert r.status_code == 200 and r.json()["card_kept"] is False and r.json()["elder_name"] == "李秀英"


def test_the_relatives_daily_limit_and_the_binding_lock_are_those_of_the_family_page(app: App, fam: Family) -> None:
    family_session(app, fam)
    family_session(app, fam)
    last = family_session(app, fam)
    r = again(app, last)
    assert r.status_code == 429 and r.json()["error"]["code"] == "ATTEMPTS_EXCEEDED"
    assert r.json()["error"]["message"] == "今日认证次数已达上限,可申请人工审核"
    # The family page's own button meets the same limit: one rule (service/certification/attempts.py).
    auth = {"Authorization": f"Bearer {fam.token}"}
    opened = app.client.post(f"/api/v1/proxy/bindings/{fam.binding_id}/sessions", headers=auth)
    assert opened.status_code == 429 and opened.json()["error"]["code"] == "ATTEMPTS_EXCEEDED"
    page = app.client.get(f"/h5/result/{last}")
    assert 'id="again"' not in page.text and 'id="limit"' in page.text and f'href="tel:{PHONE}"' in page.text


def test_a_locked_binding_is_refused_with_its_reason(app: App, fam: Family) -> None:
    old = family_session(app, fam)
    set_binding(app, fam, locked=True)
    r = again(app, old)
    assert r.status_code == 423 and r.json()["error"]["code"] == "PROXY_BINDING_LOCKED"
    assert r.json()["error"]["message"] == "多次认证未通过,该绑定已锁定,请联系经办机构人工审核"


def test_only_the_relative_who_asked_and_only_while_bound(app: App, fam: Family) -> None:
    someone_elses = family_session(app, fam, openid="openid-other")
    r = again(app, someone_elses)
    assert r.status_code == 404 and r.json()["error"]["message"] == "未找到这次认证,请从公众号菜单重新进入。"
    old = family_session(app, fam)
    set_binding(app, fam, status=BindingStatus.ENDED, ended_at=utcnow())
    r = again(app, old)
    assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND"
    assert r.json()["error"]["message"] == "您已解除与这位家人的绑定,无法继续认证。"
    with app.ctx.db() as db:  # nothing was opened by the refusals
        assert len(db.scalars(select(CertSession)).all()) == len(db.scalars(select(ProxySession)).all()) == 2


def test_a_binding_the_roster_revoked_is_not_called_the_relatives_unbinding(app: App, fam: Family) -> None:
    """A roster change of the elder's ID number revokes the binding: the relative did not unbind, and is told
    what happened instead."""
    old = family_session(app, fam)
    set_binding(app, fam, status=BindingStatus.REVOKED, ended_at=utcnow())
    r = again(app, old)
    assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND"
    assert r.json()["error"]["message"] == "该老人的档案信息已变更,原绑定已失效,请重新绑定。"


def elders(app: App, fam: Family) -> dict[str, tuple[str, str]]:
    r = app.client.get("/h5/api/family/elders", headers={"Authorization": f"Bearer {fam.token}"})
    assert r.status_code == 200, r.text
    return {e["binding_id"]: (e["state"], e["text"]) for e in r.json()["elders"]}


def test_the_family_list_says_when_no_tries_are_left_today(app: App, fam: Family) -> None:
    assert elders(app, fam)[fam.binding_id][0] == "undated"
    for _ in range(3):
        family_session(app, fam)
    state, text = elders(app, fam)[fam.binding_id]
    assert state == "limit" and "今日认证次数已达上限" in text and "上门认证" in text
    set_binding(app, fam, locked=True)
    state, text = elders(app, fam)[fam.binding_id]
    assert state == "locked" and "已锁定" in text
    page = app.client.get("/h5/family")
    assert f'data-phone="{PHONE}"' in page.text  # the bureau's phone for the page's next step


def apply_form(app: App, path: str) -> tuple[str, str]:
    page = app.client.get(path)
    assert page.status_code == 200, page.text
    m = TOKEN_RE.search(page.text)
    assert m is not None, page.text
    return page.text, m.group(1)


def test_the_assist_request_for_a_bound_elder_from_the_family_page(app: App, fam: Family) -> None:
    page, token = apply_form(app, f"/h5/apply/binding/{fam.binding_id}")
    assert "为李秀英" in page and 'name="id_number"' not in page  # the elder comes from the binding
    data = {"token": token, "binding": fam.binding_id, "kind": "home_visit", "phone": "13800138000"}
    r = app.client.post("/h5/apply", data=data)
    assert r.status_code == 200 and 'id="apply-done"' in r.text and 'href="/h5/family"' in r.text
    with app.ctx.db() as db:
        [req] = db.scalars(select(AssistRequest)).all()
        assert (req.beneficiary_id, req.kind, req.openid, req.by_relative, req.session_id) == (
            app.beneficiary_id,
            "home_visit",
            OPENID,
            True,
            None,
        )


def test_only_the_relatives_own_live_binding_names_the_elder(app: App, fam: Family) -> None:
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, "openid-other"))
    assert app.client.get(f"/h5/apply/binding/{fam.binding_id}").status_code == 404  # another WeChat user
    _, token = apply_form(app, "/h5/apply")
    r = app.client.post("/h5/apply", data={"token": token, "binding": fam.binding_id, "kind": "home_visit"})
    assert r.status_code == 404
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, OPENID))
    set_binding(app, fam, status=BindingStatus.ENDED, ended_at=utcnow())
    assert app.client.get(f"/h5/apply/binding/{fam.binding_id}").status_code == 404  # unbound since
    with app.ctx.db() as db:
        assert db.scalars(select(AssistRequest)).all() == []


def test_a_channel_keys_account_for_the_same_openid_names_no_elder(app: App, fam: Family) -> None:
    """The relative's account for this openid is a bank's app's (a channel key made it): its openid is only what
    the app said, not shown to be this WeChat user's (Part BV), so its binding is not the family page's
    (`operators.h5_account`). The form named the elder and took a request as the relative's."""
    factories.update(app.ctx, ProxyOperator, fam.operator_id, client="api:0badc0de")
    assert app.client.get(f"/h5/apply/binding/{fam.binding_id}").status_code == 404
    _, token = apply_form(app, "/h5/apply")
    r = app.client.post("/h5/apply", data={"token": token, "binding": fam.binding_id, "kind": "home_visit"})
    assert r.status_code == 404
    with app.ctx.db() as db:
        assert db.scalars(select(AssistRequest)).all() == []


def test_a_failed_own_verification_page_is_about_the_real_name_check(app: App, fam: Family) -> None:
    """A relative's failed real-name check read "认证未通过" (its message says 实名核验未通过) and offered
    "申请人工审核或上门认证" to /h5/apply/<id>, which answers "未找到认证记录": the relative is nobody's pension."""
    factories.update(app.ctx, ProxyOperatorIdentity, fam.operator_id, verified_at=None)
    page = app.client.get(f"/h5/result/{family_session(app, fam, ProxySessionKind.VERIFICATION)}").text
    assert re.search(r"<h1[^>]*>实名核验未通过</h1>", page) and "认证未通过" not in page.replace("实名核验未通过", "")
    assert "/h5/apply" not in page and "上门认证" not in page
    assert f"tel:{PHONE}" in page and "/h5/family" in page
