"""The family page in Debian's Chromium against the real app and the fake WeChat server (browser_flow.py): a relative
who uses only these pages gets the certificate copy of an elder they certify for (family.py); a relative whose
account is a withdrawn app's is told the ways left, with the bureau's phone (operators.client_in_force).
Screenshots: PENSION_CERT_SCREENSHOTS_DIR/h5/family-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from service.certification import catalog
from service.features.console.alt_cert import certify_alternative
from service.features.proxy import operators
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.h5.browser_flow import BUREAU_PHONE, PHONE, Site, open_browser, open_site, shot
from tests.service.features.wechat.h5.test_browser_family import bound_relative

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Site]:
    with open_site(tmp_path_factory.mktemp("h5"), data_dir) as s:
        yield s


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Browser]:
    with open_browser(tmp_path_factory.mktemp("camera"), data_dir) as b:
        yield b


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
