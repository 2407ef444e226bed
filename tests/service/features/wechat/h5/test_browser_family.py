"""The family pages' last dead ends, in Debian's Chromium with the fake camera against the real app and the fake
WeChat server (tests/service/features/wechat/h5/browser_flow.py): a relative's failed proxy video is recorded
again from the video step, the elder still named and no card taken again; and the family page at the relative's
daily limit leads to the assist request for the elder (and the bureau's phone), submitted from there; a relative
who uses only these pages gets the certificate copy of an elder they certify for, and a withdrawn app's relative
is told the ways left.
Screenshots: PENSION_CERT_SCREENSHOTS_DIR/h5/family-*.png."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Request
from sqlalchemy import select

from pipelines.reasons import ReasonCode
from service.certification import catalog, sessions
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, UploadKind, utcnow
from service.features.console.alt_cert import certify_alternative
from service.features.console.models import AssistRequest
from service.features.proxy import operators
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxySession, ProxySessionKind
from service.features.wechat.h5.family import STOPPED_TEXT
from service.features.wechat.models import WeChatSessionLink
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.h5.browser_flow import (
    BUREAU_PHONE,
    PHONE,
    Site,
    assert_result_page,
    block_jssdk,
    open_browser,
    open_site,
    shot,
    video_then_result,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Site]:
    with open_site(tmp_path_factory.mktemp("h5"), data_dir) as s:
        yield s


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Browser]:
    with open_browser(tmp_path_factory.mktemp("camera"), data_dir) as b:
        yield b


def bound_relative(site: Site, openid: str, elder_id: int) -> tuple[str, str]:
    """(operator id, binding id): `openid`'s relative account, verified, bound (active) to the elder."""
    with site.ctx.db() as db:
        op = operators.login(db, site.ctx, "wechat", openid, operators.H5_CLIENT).operator  # as the H5 pages
        operators.mark_verified(op, "relative-" + openid, "420***********0011", "王建国")
        row = ProxyBinding(
            id=str(uuid.uuid4()),
            operator_id=op.id,
            beneficiary_id=elder_id,
            relationship="child",
            status=BindingStatus.ACTIVE,
            failures=0,
            locked=False,
            flagged=False,
        )
        db.add(row)
        db.commit()
        return op.id, row.id


def failed_proxy_sessions(
    site: Site, openid: str, operator_id: str, binding_id: str, card: bytes | None, rejects: int = 1
) -> str:
    """`rejects` proxy certifications of the binding's elder by the relative, rejected today on a video reason
    (the elder's card stored through the real upload), linked to `openid`; returns the last one's id."""
    last = ""
    with site.ctx.db() as db:
        row = db.get(ProxyBinding, binding_id)
        assert row is not None
        elder = db.get(Beneficiary, row.beneficiary_id)
        assert elder is not None
        for _ in range(rejects):
            s = sessions.create_session(db, site.ctx, elder, Channel.PROXY, False, f"operator:{operator_id}").session
            if card is not None:
                ctype = "image/png" if card.startswith(b"\x89PNG") else "image/jpeg"
                sessions.upload(db, site.ctx, s, UploadKind.ID_CARD, card, ctype, "card-" + s.id)
            s.state, s.decision, s.decided_at = SessionState.DECIDED, "reject", utcnow()
            s.reasons = [ReasonCode.CHALLENGE_MISSING_ACTION.value]
            kind = ProxySessionKind.CERTIFICATION
            db.add(ProxySession(session_id=s.id, kind=kind, operator_id=operator_id, binding_id=binding_id))
            db.add(WeChatSessionLink(session_id=s.id, openid=openid))
            last = s.id
        db.commit()
    return last


def test_a_failed_proxy_video_is_recorded_again_with_the_elder_named(site: Site, browser: Browser) -> None:
    openid = "openid-family-again"
    with site.ctx.db() as db:
        elder_id = sessions.find_beneficiary(db, site.ctx, None, site.elder_fields.id_number).id
    operator_id, binding_id = bound_relative(site, openid, elder_id)
    failed = failed_proxy_sessions(site, openid, operator_id, binding_id, site.elder_card)
    elder = site.elder_fields.name
    site.fake.state.browser_openid = openid
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    block_jssdk(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    cards: list[str] = []

    def card_upload(request: Request) -> None:
        if "/card" in request.url or "/card-read" in request.url:
            cards.append(request.url)

    page.on("request", card_upload)
    page.goto(f"{site.base}/h5/result/{failed}")  # the result message's link: OAuth, then the failed result
    page.wait_for_selector("#result")
    assert "认证未通过" in page.inner_text("#result h1") and page.inner_text("#who") == f"为{elder}代办认证"
    assert "今天还可以再试 2 次" in page.inner_text("#attempts-left")  # the relative's own tries
    assert page.inner_text("#again") == "重新录制视频(无需再拍身份证)" and page.is_visible("#back-family")
    shot(page, "family-again-failed")

    page.click("#again")
    page.wait_for_selector("#step-video:not([hidden])")
    assert "mode=proxy" in page.url
    assert not page.is_visible("#step-card") and not page.is_visible("#step-consent")  # no card again
    assert page.inner_text("#who") == f"正在为{elder}认证" and f"为{elder}认证" in page.inner_text("#step-video")
    assert page.inner_text("#attempts") == "今天还可以尝试 2 次。"
    shot(page, "family-again-video")
    session_id = video_then_result(page, "family-again")
    assert session_id != failed
    assert_result_page(page, site, session_id)
    assert elder in page.inner_text("#who")
    assert cards == [] and errors == []  # the elder's card was never taken or sent again
    with site.ctx.db() as db:
        s, old = db.get(CertSession, session_id), db.get(CertSession, failed)
        assert s is not None and old is not None and s.channel == "proxy"
        assert s.id_card_sha256 is not None and s.id_card_sha256 == old.id_card_sha256  # the same card, kept
        ps = db.get(ProxySession, session_id)
        assert ps is not None and (ps.kind, ps.operator_id, ps.binding_id) == (
            "certification",
            operator_id,
            binding_id,
        )
    context.close()


def test_the_family_page_at_the_daily_limit_leads_to_the_assist_request(site: Site, browser: Browser) -> None:
    openid = "openid-family-limit"
    with site.ctx.db() as db:
        elder = factories.beneficiary(db, site.ctx.keyring, name="孙淑珍", id_number=factories.id_number(seq=483))
        db.commit()
        elder_id = elder.id
    operator_id, binding_id = bound_relative(site, openid, elder_id)
    failed_proxy_sessions(site, openid, operator_id, binding_id, None, rejects=2)
    site.fake.state.browser_openid = openid
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.base + "/h5/family")
    page.wait_for_selector("li.binding .elder-status")
    assert page.is_visible("li.binding button.certify-elder") and not page.is_visible("li.binding .limit-box")

    # The third failure happens elsewhere (another phone) while the list is open: the button meets the limit.
    failed_proxy_sessions(site, openid, operator_id, binding_id, None)
    page.click("li.binding button.certify-elder")
    page.wait_for_selector("li.binding .limit-box")
    assert page.inner_text("li.binding .limit-text") == "今日认证次数已达上限,可申请人工审核"
    assert not page.is_visible("li.binding button.certify-elder")
    apply = page.locator("li.binding a.apply-elder")
    assert apply.is_visible() and apply.inner_text() == "为孙淑珍申请人工审核或上门认证"
    assert apply.get_attribute("href") == f"/h5/apply/binding/{binding_id}"
    assert page.get_attribute("li.binding a.call-bureau", "href") == f"tel:{BUREAU_PHONE}"
    shot(page, "family-limit-refused")

    page.reload()  # the next visit says so at once, under the elder's name
    page.wait_for_selector("li.binding .limit-box")
    status = page.locator("li.binding .elder-status")
    assert status.get_attribute("data-state") == "limit" and "上门认证" in status.inner_text()
    assert not page.is_visible("li.binding button.certify-elder") and page.is_visible("li.binding a.apply-elder")
    shot(page, "family-limit")

    page.click("li.binding a.apply-elder")
    page.wait_for_selector("#apply-form")
    assert "为孙淑珍" in page.inner_text("#apply-who")
    page.check("input[value=home_visit]")
    page.fill("input[name=phone]", "13900139000")
    shot(page, "family-limit-apply")
    page.click("#apply-submit")
    page.wait_for_selector("#apply-done")
    assert page.get_attribute("#apply a.btn.primary", "href") == "/h5/family"  # back to the family list
    shot(page, "family-limit-applied")
    assert errors == []
    context.close()
    with site.ctx.db() as db:
        [req] = db.scalars(select(AssistRequest).where(AssistRequest.beneficiary_id == elder_id)).all()
        assert (req.kind, req.phone, req.by_relative, req.session_id) == ("home_visit", "13900139000", True, None)


def test_lapsed_bindings_read_in_chinese_without_an_unbind_and_a_result_speaks_its_heading(
    site: Site, browser: Browser
) -> None:
    """The family list printed "· expired" / "· revoked" with an unbind control that could only fail; now the
    server's words (status_zh) and no control on an ended binding. The result page spoke its decision
    ("认证未通过,可以再试一次" over "暂时无法完成核验"); it now speaks the prompt its heading names."""
    openid = "openid-family-lapsed"
    with site.ctx.db() as db:
        elders = [
            factories.beneficiary(db, site.ctx.keyring, name=n, id_number=factories.id_number(seq=500 + i)).id
            for i, n in enumerate(("周桂英", "吴秀兰"))
        ]
        db.commit()
    with site.ctx.db() as db:  # the account as the H5 pages make it (their client), verified
        op = operators.login(db, site.ctx, "wechat", openid, operators.H5_CLIENT).operator
        operators.mark_verified(op, "relative-" + openid, "420***********0012", "王建国")
        lapsed = (BindingStatus.EXPIRED, BindingStatus.REVOKED)
        rows = [
            ProxyBinding(
                id=str(uuid.uuid4()),
                operator_id=op.id,
                beneficiary_id=elder,
                relationship="child",
                status=status,
                failures=0,
                locked=False,
                flagged=False,
                ended_at=utcnow() if status in lapsed else None,
            )
            for elder, status in ((elders[0], BindingStatus.ACTIVE), (elders[1], lapsed[0]), (elders[1], lapsed[1]))
        ]
        db.add_all(rows)
        active_id = rows[0].id
        first = db.get(Beneficiary, elders[0])
        assert first is not None
        s = sessions.create_session(db, site.ctx, first, Channel.SELF, False, "test").session
        s.state, s.decided_at = SessionState.FAILED, utcnow()
        db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        db.commit()
        failed = s.id
    site.fake.state.browser_openid = openid
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(site.base + "/h5/family")
    page.wait_for_selector("li.binding")
    listed = page.locator("li.binding")
    assert listed.count() == 3
    for i in range(3):
        li = listed.nth(i)
        status, text = li.get_attribute("data-status"), li.inner_text()
        assert not re.search(r"[A-Za-z]", text), text
        assert (li.locator(".unbind").count() == 0) is (status != "active"), (status, text)
    assert page.locator(f'li.binding[data-binding="{active_id}"] .unbind').count() == 1
    assert page.locator("li.binding.ended").count() == 2 and "重新绑定" in page.inner_text("li.binding.ended")
    page.goto(f"{site.base}/h5/result/{failed}")
    page.wait_for_selector("#result h1")
    assert page.inner_text("#result h1") == "暂时无法完成核验"
    assert page.evaluate("document.body.dataset.spoken") == "failed"
    context.close()


def test_a_certified_elders_copy_is_linked_from_the_family_page(site: Site, browser: Browser) -> None:
    openid = "openid-family-copy"
    with site.ctx.db() as db:  # the elder certified at the counter today: in force
        elder = factories.beneficiary(db, site.ctx.keyring, name="赵玉兰", id_number=factories.id_number(seq=611))
        certify_alternative(db, site.ctx, elder, "counter", local_today(site.ctx.settings), None, {})
        db.commit()
        elder_id = elder.id
    _, binding_id = bound_relative(site, openid, elder_id)
    site.fake.state.browser_openid = openid
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(site.base + "/h5/family")
    page.wait_for_selector("li.binding .elder-status")
    copy = page.locator("li.binding a.certificate-elder")
    assert copy.inner_text() == "查看赵玉兰的认证凭证(可保存、打印,带核验二维码)"
    assert copy.get_attribute("href") == f"/h5/family/bindings/{binding_id}/certificate.png"
    shot(page, "family-certificate-link")
    with page.expect_response(lambda r: r.url.endswith("/certificate.png")) as got:
        copy.click()
    r = got.value
    assert r.status == 200 and r.headers["content-type"] == "image/png"


def test_an_elder_the_roster_stopped_keeps_the_link_to_a_valid_certificate(site: Site, browser: Browser) -> None:
    """Transferred out (the roster stopped paying them here): the line says so and, while the elder's certification
    is in force, still links its copy (the new bureau may ask for it); an elder stopped, never certified: no link."""
    openid = "openid-family-stopped"
    with site.ctx.db() as db:
        moved = factories.beneficiary(db, site.ctx.keyring, name="孙秀珍", id_number=factories.id_number(seq=621))
        certify_alternative(db, site.ctx, moved, "counter", local_today(site.ctx.settings), None, {})
        never = factories.beneficiary(db, site.ctx.keyring, name="孙德福", id_number=factories.id_number(seq=622))
        moved.roster_status = never.roster_status = "suspended"
        db.commit()
        moved_id, never_id = moved.id, never.id
    _, moved_binding = bound_relative(site, openid, moved_id)
    _, never_binding = bound_relative(site, openid, never_id)
    site.fake.state.browser_openid = openid
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(site.base + "/h5/family")
    page.wait_for_selector(f'li.binding[data-binding="{never_binding}"] .elder-status')
    moved_li = page.locator(f'li.binding[data-binding="{moved_binding}"]')
    assert moved_li.locator(".elder-status").inner_text() == STOPPED_TEXT
    copy = moved_li.locator("a.certificate-elder")  # the lines are written together: all there, or none
    assert copy.count() == 1 and copy.get_attribute("href") == f"/h5/family/bindings/{moved_binding}/certificate.png"
    never_li = page.locator(f'li.binding[data-binding="{never_binding}"]')
    assert never_li.locator(".elder-status").inner_text() == STOPPED_TEXT
    assert never_li.locator("a.certificate-elder").count() == 0
    shot(page, "family-stopped-certificate-link")
    with page.expect_response(lambda r: r.url.endswith("/certificate.png")) as got:
        copy.click()
    assert got.value.status == 200 and got.value.headers["content-type"] == "image/png"


def test_a_withdrawn_apps_relative_is_told_the_ways_left(site: Site, browser: Browser) -> None:
    openid = "openid-family-withdrawn-app"
    with site.ctx.db() as db:  # an account a channel key no longer in API_KEYS made for this openid
        operators.login(db, site.ctx, "wechat", openid, "api:0badc0de")
        db.commit()
    site.fake.state.browser_openid = openid
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    page.goto(site.base + "/h5/family")
    page.wait_for_selector("#family-app a.call-bureau")
    assert page.inner_text("#family-feedback") == catalog.message_zh(operators.PROXY_ACCOUNT_APP_WITHDRAWN)
    assert page.get_attribute("#family-app a.call-bureau", "href") == f"tel:{BUREAU_PHONE}"
    assert not page.is_visible("#bind-form") and not page.is_visible("#verify-first")
    shot(page, "family-app-withdrawn")


def test_the_bind_forms_typed_text_is_kept_through_a_login_run_out(site: Site, browser: Browser) -> None:
    """The relative types the elder's name, number and relationship; meanwhile their operator token stops answering
    (here: a login from another device, one device at a time; an expired token or WeChat cookie reads the same, 401
    UNAUTHORIZED). The page re-entered itself and the typed text was gone. It is filled back in after the reload,
    kept in the tab only (never in the URL) and only once, and the bind then goes through."""
    openid = "openid-family-typed"
    with site.ctx.db() as db:
        bound = factories.beneficiary(db, site.ctx.keyring, name="钱桂英", id_number=factories.id_number(seq=512))
        number = factories.id_number(seq=513)
        factories.beneficiary(db, site.ctx.keyring, name="钱德明", id_number=number)
        db.commit()
        bound_id = bound.id
    bound_relative(site, openid, bound_id)
    site.fake.state.browser_openid = openid
    page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.base + "/h5/family")
    page.wait_for_selector("#bind-form", state="visible")
    page.fill("#elder-name", "钱德明")
    page.fill("#elder-id", number)
    page.select_option("#relationship", "spouse")
    with site.ctx.db() as db:  # another device logs in: this page's token stops answering
        operators.login(db, site.ctx, "wechat", openid, operators.H5_CLIENT)
        db.commit()
    with page.expect_navigation():
        page.click("#bind")
    page.wait_for_selector("#bind-form", state="visible")
    assert (page.input_value("#elder-name"), page.input_value("#elder-id")) == ("钱德明", number)
    assert page.input_value("#relationship") == "spouse"
    assert number not in page.url and page.evaluate("sessionStorage.getItem('h5familyform')") is None
    page.click("#bind")
    page.wait_for_selector("li.binding[data-status=pending_consent]")
    assert errors == []
    with site.ctx.db() as db:
        elder = sessions.find_beneficiary(db, site.ctx, None, number)
        [row] = db.scalars(select(ProxyBinding).where(ProxyBinding.beneficiary_id == elder.id)).all()
        assert (row.relationship, row.status) == ("spouse", BindingStatus.PENDING_CONSENT)
