"""From the daily-limit screen to a submitted manual-review request, in Debian's Chromium against the real app
served by uvicorn (SQLite, the fake WeChat server). The browser carries the H5 cookie (the OAuth round trip has
its own browser test). Screenshots: PENSION_CERT_SCREENSHOTS_DIR/h5/assist-*.png."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select

import service.schema
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Channel, SessionState, utcnow
from service.certification.sessions import create_session
from service.features.console.auth import hash_password
from service.features.console.models import AssistRequest, StaffUser
from service.features.install import install_features
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, serve_in_thread
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat

pytestmark = pytest.mark.slow
OPENID = "openid-assist-browser"
PASSWORD = "correct-horse-battery"
SHOTS = SCREENSHOTS / "h5"


@dataclass
class Site:
    base: str
    ctx: ServiceContext
    session_id: str  # the last of the person's rejected sessions today
    beneficiary_id: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with FakeWeChat() as fake:
        settings = wechat_settings(
            fake,
            tmp_path,
            database_url=f"sqlite:///{tmp_path / 'h5.db'}",
            failures_per_day=3,
            bureau_phone="027-12345678",
        )
        ctx = install_features(ServiceContext(settings, schema=service.schema.metadata))
        with ctx.db() as db:
            b = factories.beneficiary(db, ctx.keyring, name="赵桂兰", id_number=factories.id_number(seq=482))
            sid = ""
            for _ in range(3):  # three rejections today: the daily limit
                s = create_session(db, ctx, b, Channel.SELF, False, "test").session
                # A reason staff may overrule, the video stored: the form offers 人工审核 (assist_video.reviewable).
                s.state, s.decision, s.reasons = SessionState.DECIDED, "reject", ["CHALLENGE_MISSING_ACTION"]
                s.decided_at, sid, s.video_key = utcnow(), s.id, f"sessions/{s.id}/video"
                db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
            db.add(
                StaffUser(
                    username="rev1", display_name="审核员甲", role="reviewer", password_hash=hash_password(PASSWORD)
                )
            )
            bid = b.id
        port = free_port()
        with serve_in_thread(create_app(ctx=ctx), port, log_level="warning"):
            yield Site(f"http://127.0.0.1:{port}", ctx, sid, bid)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_from_the_daily_limit_to_a_submitted_request(site: Site) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(site.ctx, OPENID), "url": site.base}])
        page = context.new_page()
        page.goto(f"{site.base}/h5/result/{site.session_id}")
        assert "今日认证次数已达上限" in page.inner_text("#limit")
        link = page.locator(".apply-link")
        assert link.is_visible() and link.get_attribute("href") == f"/h5/apply/{site.session_id}"
        shot(page, "assist-limit")
        link.click()
        page.wait_for_selector("#apply-form")
        assert "为赵桂兰" in page.inner_text("#apply-who")
        page.check("input[value=manual_review]")
        page.fill("input[name=phone]", "13800138000")
        page.fill("input[name=note]", "下午在家")
        shot(page, "assist-form")
        page.click("#apply-submit")
        page.wait_for_selector("#apply-done")
        assert page.inner_text("#apply-done") == "已提交"
        assert "13800138000" in page.inner_text("#apply")
        shot(page, "assist-submitted")

        # The bureau's side: the request in the console list, the certification form pre-filled from it.
        staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
        staff.goto(f"{site.base}/console/login")
        staff.fill("#username", "rev1")
        staff.fill("#password", PASSWORD)
        staff.click("#login")
        staff.click("#nav-requests")
        assert "赵桂兰" in staff.inner_text("#open-requests") and "人工审核" in staff.inner_text("#open-requests")
        shot(staff, "assist-console-list")
        staff.click("#open-requests a.handle")
        # The call-back number on the page, not in the note the certification keeps for ever (Part BU).
        assert "13800138000" in staff.inner_text("body")
        note = staff.input_value("#alt-form textarea")
        assert "依据公众号申请 #" in note and "13800138000" not in note
        shot(staff, "assist-console-request")
        staff.check("#alt-form input[value=counter]")
        staff.click("#alt-form button[type=submit]")
        staff.wait_for_selector("#outcome")
        assert "已完成认证" in staff.inner_text("#outcome")
        browser.close()
    with site.ctx.db() as db:
        [req] = db.scalars(select(AssistRequest)).all()
        assert (req.beneficiary_id, req.kind, req.phone, req.session_id, req.status, req.outcome) == (
            site.beneficiary_id,
            "manual_review",
            "13800138000",
            site.session_id,
            "closed",
            "certified",
        )
        b = db.get(Beneficiary, site.beneficiary_id)
        assert b is not None and b.valid_until is not None
