"""A reviewer working through the queue in a real browser (Debian's Chromium via Playwright, the real app on
127.0.0.1): "领取下一件", keyboard shortcuts that only choose a decision (they never submit), the decision, then
"下一件" to the next open case. Screenshots of the queue and the case page go to PENSION_CERT_SCREENSHOTS_DIR
(default bench/results/screenshots): queue.png and case.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page

import service.schema
from pipelines.decision.runner import Certifier
from pipelines.reasons import ReasonCode
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import CertSession, Channel, SessionState
from service.certification.sessions import create_session
from service.features.console.auth import Role
from service.features.console.models import StaffUser
from service.features.install import install_features
from tests.browser import SCREENSHOTS, launched_chromium, serve_in_thread
from tests.service import factories
from tests.service.conftest import make_settings
from tests.service.features.console.conftest import PASSWORD, Sample, _hash, make_case
from tests.service.servers import free_port

pytestmark = pytest.mark.slow


@dataclass
class Site:
    base: str
    ctx: ServiceContext
    review_id: str
    failed_id: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, strict_certifier: Certifier, sample: Sample) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("browser-review")
    ctx = install_features(
        ServiceContext(
            make_settings(root, database_url=f"sqlite:///{root / 'console.db'}"), schema=service.schema.metadata
        )
    )
    with ctx.db() as db:
        db.add(StaffUser(username="rev1", display_name="rev1-姓名", role=Role.REVIEWER.value, password_hash=_hash()))
    review_id, _ = make_case(ctx, strict_certifier, sample)
    with ctx.db() as db:
        # A newer case behind it: a job that failed for good, for a beneficiary of 湖北省武汉市武昌区.
        other = factories.beneficiary(db, ctx.keyring, name="李桂兰", region="420106")
        s = create_session(db, ctx, other, Channel.SELF, consent=False, actor="test").session
        s.state, s.last_error = SessionState.FAILED, "OperationalError: database unavailable"
        failed_id = s.id
    port = free_port()
    with serve_in_thread(create_app(ctx=ctx), port, log_level="warning"):
        yield Site(f"http://127.0.0.1:{port}", ctx, review_id, failed_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as b:
        yield b


def press_access_key(page: Page, key: str) -> None:
    """Alt+key as a real keyboard delivers it to the page. (Playwright's keyboard.press drops the unmodified
    text while Alt is held, and Chromium matches access keys on exactly that text, so it never sees one.)"""
    cdp = page.context.new_cdp_session(page)
    event = {"modifiers": 1, "key": key, "code": f"Key{key.upper()}", "windowsVirtualKeyCode": ord(key.upper())}
    cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "unmodifiedText": key, **event})
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **event})
    cdp.detach()


def test_next_case_and_keyboard_shortcuts(site: Site, browser: Browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(site.base + "/console/login")
    page.fill("#username", "rev1")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url("**/console/queue")

    row = page.locator(f'tr[data-session="{site.review_id}"]').inner_text()
    assert ReasonCode.SPOOF_SUSPECTED.staff_zh in row and "CST" in row
    assert "湖北省武汉市武昌区" in page.locator(f'tr[data-session="{site.failed_id}"]').inner_text()
    page.screenshot(path=str(SCREENSHOTS / "queue.png"), full_page=True)

    # "领取下一件" claims the oldest open case and opens it.
    page.click("#next-case")
    page.wait_for_url(f"**/console/cases/{site.review_id}")
    page.wait_for_load_state("networkidle")
    assert "Alt+A" in page.inner_text("#decide-form") and "不会提交" in page.inner_text("#shortcut-hint")
    assert "复核区" in page.inner_text("#scores")

    # A shortcut only chooses: Alt+R picks 不通过, Alt+A then picks 通过; nothing is submitted.
    press_access_key(page, "r")
    assert page.is_checked('input[name="decision"][value="reject"]')
    press_access_key(page, "a")
    assert page.is_checked('input[name="decision"][value="accept"]')
    assert page.url.endswith(f"/console/cases/{site.review_id}")
    # Enter without a reason does not decide either: the reason is required.
    page.keyboard.press("Enter")
    assert page.url.endswith(f"/console/cases/{site.review_id}")
    with site.ctx.db() as db:
        s = db.get(CertSession, site.review_id)
        assert s is not None and s.decision == "review"
    press_access_key(page, "w")
    assert page.evaluate("document.activeElement.id") == "reason"
    page.keyboard.type("证件照与视频为同一人，动作完整")
    page.screenshot(path=str(SCREENSHOTS / "case.png"), full_page=True)
    page.click("#submit-decision")
    assert page.inner_text("#message") == "已完成审核"
    with site.ctx.db() as db:
        s = db.get(CertSession, site.review_id)
        assert s is not None and s.decision == "accept"

    # "下一件" (Alt+N) goes on to the next open case, claimed.
    press_access_key(page, "n")
    page.wait_for_url(f"**/console/cases/{site.failed_id}")
    assert "处理失败" in page.inner_text("#why")
    assert page.locator("#decide-form").count() == 1
    context.close()
    assert (SCREENSHOTS / "queue.png").stat().st_size > 5_000 and (SCREENSHOTS / "case.png").stat().st_size > 10_000
