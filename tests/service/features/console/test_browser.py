"""The console in a real browser: Playwright driving Debian's /usr/bin/chromium (never a downloaded browser)
against the real app served by uvicorn on 127.0.0.1, with the embedded SQLite backend.

A reviewer logs in, claims a borderline case made by the real pipeline from real media, sees the card
portrait and the video frames, accepts it, and sees the beneficiary resumed; a reviewer cannot manage users;
a proxy rejection waits for a supervisor. Screenshots of the review page and the dashboard are saved to
PENSION_CERT_SCREENSHOTS_DIR (default bench/results/screenshots).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser, Page

import service.schema
from pipelines.decision.runner import Certifier
from pipelines.reasons import ReasonCode
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, Channel, SessionState
from service.certification.sessions import create_session
from service.features.console.auth import Role
from service.features.console.models import StaffUser
from service.features.install import install_features
from tests.browser import SCREENSHOTS, launched_chromium, serve_in_thread
from tests.service import factories
from tests.service.conftest import make_settings
from tests.service.features.console.conftest import PASSWORD, Sample, _hash, make_case

pytestmark = pytest.mark.slow

SHOTS = SCREENSHOTS


@dataclass
class Site:
    base: str
    ctx: ServiceContext
    case_id: str
    beneficiary_id: int
    proxy_case_id: str
    personal: list[str]  # strings that must never appear in a URL or a log line


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def logs() -> Iterator[ListHandler]:
    handler = ListHandler()
    names = ["", "uvicorn", "uvicorn.access", "uvicorn.error", "service"]
    for name in names:
        logging.getLogger(name).addHandler(handler)
    old = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    yield handler
    logging.getLogger().setLevel(old)
    for name in names:
        logging.getLogger(name).removeHandler(handler)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, strict_certifier: Certifier, sample: Sample, logs: ListHandler
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("browser")
    settings = make_settings(root, database_url=f"sqlite:///{root / 'console.db'}")
    ctx = install_features(ServiceContext(settings, schema=service.schema.metadata))
    with ctx.db() as db:
        for name, role in (("rev1", Role.REVIEWER), ("sup1", Role.SUPERVISOR), ("admin", Role.ADMIN)):
            db.add(StaffUser(username=name, display_name=f"{name}-姓名", role=role.value, password_hash=_hash()))
    case_id, bid = make_case(ctx, strict_certifier, sample)
    with ctx.db() as db:
        # A proxy session whose job failed for good: it waits in the queue for a person.
        other = factories.beneficiary(db, ctx.keyring, name="李桂兰")
        s = create_session(db, ctx, other, Channel.PROXY, consent=False, actor="test").session
        s.state, s.last_error = SessionState.FAILED, "OperationalError: database unavailable"
        proxy_id, other_ext = s.id, other.external_id
    personal = [sample.fields.id_number, sample.fields.name, "李桂兰", other_ext]
    app = create_app(ctx=ctx)
    port = free_port()
    # The access log is on: the test checks that no personal data reaches it.
    with serve_in_thread(app, port, log_level="info", access_log=True):
        yield Site(f"http://127.0.0.1:{port}", ctx, case_id, bid, proxy_id, personal)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as b:
        yield b


def login(page: Page, site: Site, username: str) -> None:
    page.goto(site.base + "/console/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url("**/console/queue")


def logout(page: Page) -> None:
    page.click("header form button")
    page.wait_for_url("**/console/login")


def test_review_flow_in_the_browser(site: Site, browser: Browser, logs: ListHandler) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))

    login(page, site, "rev1")
    row = page.locator(f'tr[data-session="{site.case_id}"]')
    assert ReasonCode.SPOOF_SUSPECTED.staff_zh in row.inner_text()  # the reason, in Chinese
    page.goto(f"{site.base}/console/beneficiaries/{site.beneficiary_id}")
    assert page.inner_text("#status") == "暂停发放"

    page.goto(site.base + "/console/queue")
    page.locator(f'tr[data-session="{site.case_id}"] button.claim').click()
    page.wait_for_url(f"**/console/cases/{site.case_id}")
    page.wait_for_load_state("networkidle")
    images = page.locator("section.images img")
    assert images.count() >= 2  # the card portrait and at least one best frame
    for i in range(images.count()):
        width = images.nth(i).evaluate("img => img.complete ? img.naturalWidth : 0")
        assert width > 0, images.nth(i).get_attribute("src")
    assert "证件照比对相似度" in page.inner_text("#scores")
    page.screenshot(path=str(SHOTS / "review.png"), full_page=True)

    page.check('input[name="decision"][value="accept"]')
    page.fill("#reason", "证件照与视频为同一人，动作完整，活体分数接近阈值但正常")
    page.click("#submit-decision")
    assert page.inner_text("#message") == "已完成审核"
    page.goto(f"{site.base}/console/beneficiaries/{site.beneficiary_id}")
    assert page.inner_text("#status") == "正常"
    assert page.inner_text("#cycle") == "已认证"

    # A reviewer cannot manage users: no menu entry, and the page itself refuses.
    assert page.locator("nav >> text=用户管理").count() == 0
    resp = page.goto(site.base + "/console/users")
    assert resp is not None and resp.status == 403 and "需要管理员权限" in page.inner_text("#message")

    # A reviewer's rejection of a proxy session only proposes; a supervisor settles it.
    page.goto(site.base + "/console/queue")
    page.locator(f'tr[data-session="{site.proxy_case_id}"] button.claim').click()
    page.check('input[name="decision"][value="reject"]')
    page.fill("#reason", "代办人无法说明与本人关系")
    page.click("#submit-decision")
    assert page.inner_text("#message") == "已提交，等待主管复核"
    page.goto(site.base + "/console/queue")
    assert "待主管复核" in page.locator(f'tr[data-session="{site.proxy_case_id}"]').inner_text()
    with site.ctx.db() as db:
        s = db.get(CertSession, site.proxy_case_id)
        assert s is not None and s.state == SessionState.FAILED and s.decision is None
    logout(page)

    login(page, site, "sup1")
    page.locator(f'tr[data-session="{site.proxy_case_id}"] button.claim').click()
    assert "代办人无法说明与本人关系" in page.inner_text("#pending")
    page.check('input[name="decision"][value="reject"]')
    page.fill("#reason", "复核：同意不通过，请本人到柜台认证")
    page.click("#submit-decision")
    assert page.inner_text("#message") == "已完成审核"
    with site.ctx.db() as db:
        s = db.get(CertSession, site.proxy_case_id)
        assert s is not None and s.decision == "reject"

    page.goto(site.base + "/console/dashboard")
    assert page.locator("#chart-regions svg rect").count() > 0
    assert page.inner_text("#backlog") == "0"
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    context.close()

    # Nothing personal in any URL the browser requested, nor in any log line of the run.
    for url in urls:
        text = unquote(url)
        assert not any(p in text for p in site.personal), url
    logged = "\n".join(logs.lines)
    assert '"GET /console/queue HTTP/1.1" 200' in logged  # the access log was captured
    assert not any(p in logged for p in site.personal)
    with site.ctx.db() as db:
        b = db.get(Beneficiary, site.beneficiary_id)
        assert b is not None and b.status == "active"
    assert (SHOTS / "review.png").stat().st_size > 10_000 and (SHOTS / "dashboard.png").stat().st_size > 5_000
