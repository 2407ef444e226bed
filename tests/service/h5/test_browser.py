"""The H5 pages in a real browser: Playwright driving Debian's /usr/bin/chromium with a fake camera fed from a
.y4m made (at test time) from a real selfie video of the dev data, against the real app served by uvicorn
(SQLite, in-process worker running the real pipeline) and the local fake WeChat server.

Self flow: the OAuth redirect from the fake WeChat server, consent, a bad card photo (instant OCR feedback),
the card, the recorded challenge video, the result page. Proxy flow: a verified relative binds an elder,
staff approve the binding, the relative certifies the elder. Screenshots go to PENSION_CERT_SCREENSHOTS_DIR
(default bench/results/screenshots/h5, git-ignored: they show dev-data faces)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Route, ViewportSize, sync_playwright
from sqlalchemy import select

from pipelines.id_card.synthetic import CardFields
from pipelines.reasons import ReasonCode
from service.api import create_app
from service.context import ServiceContext
from service.db.models import CertSession
from service.db.proxy_models import ProxyBinding, ProxyOperator
from service.h5.cardcheck import RETAKE
from tests.browser import CHROMIUM, FAKE_CAMERA_ARGS, SCREENSHOTS, serve_in_thread
from tests.browser import CHROMIUM_ARGS as BASE_ARGS
from tests.service import factories
from tests.service.conftest import ADMIN_API_KEY
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, card_for_video
from tests.service.wechat.conftest import wechat_settings
from tests.service.wechat.fake_wechat import FakeWeChat

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [*BASE_ARGS, *FAKE_CAMERA_ARGS]
SHOTS = SCREENSHOTS / "h5"
PHONE: ViewportSize = {"width": 390, "height": 844}
DECIDED_TEXT = {"accept": "认证通过", "review": "已转人工审核", "reject": "认证未通过"}
ACCEPTED_BY_KIND = {"verification": "实名核验通过", "consent": "家人已确认"}
RETAKE_MESSAGES = {c.message_zh for c in (*RETAKE, ReasonCode.ID_NUMBER_MISMATCH, ReasonCode.MEDIA_CORRUPT)}


@dataclass
class Site:
    base: str
    ctx: ServiceContext
    fake: FakeWeChat
    card: bytes
    fields: CardFields
    elder_card: bytes
    elder_fields: CardFields
    relative_card: bytes
    relative_fields: CardFields


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_y4m(video: Path, out: Path, lead_s: float = 3.0, fps: int = 15, size: tuple[int, int] = (320, 240)) -> Path:
    """The dev video as a raw Y4M camera feed: `lead_s` of its first frame (the page's countdown), then the
    video itself, so the recording after the countdown sees the actions from the start."""
    frames: list[np.ndarray] = []
    with av.open(str(video)) as container:
        next_t = 0.0
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t + 1e-6 < next_t:
                continue
            next_t += 1.0 / fps
            frames.append(cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_AREA))
    frames = [frames[0]] * int(lead_s * fps) + frames
    w, h = size
    with out.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for f in frames:
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("h5")
    port = free_port()
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    elder_card, elder_fields = card_for_video(data_dir, LIVE_VIDEO, seed=23)
    relative_card, relative_fields = card_for_video(data_dir, LIVE_VIDEO, seed=41)
    with FakeWeChat() as fake:
        settings = wechat_settings(
            fake,
            root,
            database_url=f"sqlite:///{root / 'h5.db'}",
            public_base_url=f"http://127.0.0.1:{port}",
            worker_mode="thread",
            h5_card_check=True,
            challenge_actions=list(LIVE_ACTIONS),
            poll_interval_s=0.2,
        )
        ctx = ServiceContext(settings)
        with ctx.db() as db:
            factories.beneficiary(db, ctx.keyring, id_number=fields.id_number, name=fields.name)
            factories.beneficiary(db, ctx.keyring, id_number=elder_fields.id_number, name=elder_fields.name)
        app = create_app(ctx=ctx)
        with serve_in_thread(app, port, log_level="warning"):
            yield Site(
                f"http://127.0.0.1:{port}", ctx, fake, card, fields, elder_card, elder_fields, relative_card,
                relative_fields,
            )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Browser]:
    y4m = make_y4m(data_dir / LIVE_VIDEO, tmp_path_factory.mktemp("camera") / "camera.y4m")
    with sync_playwright() as p:
        args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={y4m}"]
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def write(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def not_a_card(data_dir: Path) -> bytes:
    """A selfie frame of the dev video: a photo of a face, not of an ID card."""
    with av.open(str(data_dir / LIVE_VIDEO)) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="bgr24")
    ok, buf = cv2.imencode(".jpg", frame)
    assert ok
    return buf.tobytes()


def wait_until(page: Page, check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll from Python: the pages' CSP forbids the eval that Playwright's wait_for_function needs."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        page.wait_for_timeout(200)


def card_then_video(page: Page, site: Site, card: str, name: str, drop_first_upload: bool = False) -> str:
    dropped: list[str] = []
    if drop_first_upload:
        # The network fails during the first video upload: the page keeps the recording and offers a retry.
        def once(route: Route) -> None:
            if not dropped:
                dropped.append(route.request.headers.get("idempotency-key", ""))
                route.abort("connectionreset")
            else:
                assert route.request.headers.get("idempotency-key") == dropped[0]  # the same upload, resent
                route.continue_()

        page.route("**/api/v1/sessions/*/video", once)
    page.set_input_files("#card-file", card)
    page.wait_for_selector("#step-video:not([hidden])", timeout=120_000)
    wait_until(page, lambda: page.evaluate("() => document.getElementById('preview').readyState") >= 2, 30, "camera")
    shot(page, f"{name}-video")
    page.click("#record")
    page.wait_for_timeout(4500)  # countdown done, first action on screen
    shot(page, f"{name}-recording")
    if drop_first_upload:
        page.wait_for_selector("#retry:not([hidden])", timeout=60_000)
        assert "视频已保留" in page.inner_text("#video-feedback")
        shot(page, f"{name}-retry")
        page.click("#retry")
    page.wait_for_url("**/h5/result/**", timeout=300_000)
    shot(page, f"{name}-result")
    return page.url.rsplit("/", 1)[1]


def assert_result_page(page: Page, site: Site, session_id: str, kind: str | None = None) -> None:
    with site.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.decision in DECIDED_TEXT, (s.state if s else None, s.last_error if s else None)
        decision = s.decision
    result = page.locator("#result")
    assert result.get_attribute("data-decision") == decision
    expected = DECIDED_TEXT[decision]
    if decision == "accept":
        expected = ACCEPTED_BY_KIND.get(kind or "", expected)
    assert expected in page.inner_text("#result h1")


def test_self_certification_in_wechat(site: Site, browser: Browser, data_dir: Path, tmp_path: Path) -> None:
    site.fake.state.browser_openid = "openid-pensioner"
    context = browser.new_context(viewport=PHONE, locale="zh-CN", user_agent="Mozilla/5.0 (Linux; Android 13) Mobile")
    page = context.new_page()
    page.goto(site.base + "/h5/")  # the menu link: OAuth redirect via the fake WeChat server and back
    page.wait_for_selector("#self")
    assert page.url.split("#")[0] == site.base + "/h5/"  # WeChat keeps its #wechat_redirect fragment
    shot(page, "self-start")

    page.click("#self")
    page.fill("#name", site.fields.name)
    page.fill("#id-number", site.fields.id_number)
    page.click("#consent-next")
    assert "请先勾选" in page.inner_text("#consent-feedback")  # consent is required
    page.check("#consent")
    page.check("#template-consent")
    shot(page, "self-consent")
    page.click("#consent-next")
    page.wait_for_selector("#step-card:not([hidden])")

    page.set_input_files("#card-file", write(tmp_path, "selfie.jpg", not_a_card(data_dir)))
    wait_until(page, lambda: page.inner_text("#card-feedback") not in ("", "正在识别,请稍候…"), 120, "OCR feedback")
    feedback = page.inner_text("#card-feedback")
    assert feedback in RETAKE_MESSAGES, feedback
    assert page.locator("#step-card").is_visible()  # still on the card step: nothing was stored
    shot(page, "self-card-error")

    session_id = card_then_video(page, site, write(tmp_path, "card.jpg", site.card), "self")
    assert_result_page(page, site, session_id)
    context.close()


def test_proxy_certification_by_a_relative(site: Site, browser: Browser, tmp_path: Path) -> None:
    site.fake.state.browser_openid = "openid-relative"
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(site.base + "/h5/")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.click("#family")
    page.wait_for_selector("#verify-first:not([hidden])")  # not verified yet: own real-name check first
    shot(page, "proxy-verify-first")

    # The relative's own real-name verification through the same card and video steps.
    page.fill("#op-name", site.relative_fields.name)
    page.fill("#op-id", site.relative_fields.id_number)
    page.click("#op-verify")
    page.wait_for_selector("#step-card:not([hidden])")
    card = write(tmp_path, "relative.jpg", site.relative_card)
    verification_id = card_then_video(page, site, card, "proxy-verify")
    assert_result_page(page, site, verification_id, kind="verification")
    with site.ctx.db() as db:
        op = db.scalar(select(ProxyOperator).where(ProxyOperator.channel == "wechat"))
        assert op is not None and op.verified_at is not None, "the relative's verification was not accepted"
    page.click("a[href='/h5/family']")
    page.wait_for_selector("#bind-form:not([hidden])")
    page.fill("#elder-name", site.elder_fields.name)
    page.fill("#elder-id", site.elder_fields.id_number)
    page.select_option("#relationship", "child")
    page.click("#bind")
    page.wait_for_selector("li.binding")
    status = page.locator("li.binding").first.get_attribute("data-status")
    assert status in ("pending_consent", "active")
    shot(page, "proxy-bindings")

    if status == "pending_consent":
        with site.ctx.db() as db:
            binding_id = db.scalar(select(ProxyBinding.id).where(ProxyBinding.operator_id == op.id))
        r = page.request.post(
            f"{site.base}/api/v1/proxy/bindings/{binding_id}/consent",
            headers={"X-API-Key": ADMIN_API_KEY},
            data={"method": "staff_approval", "staff_id": "counter-07"},
        )
        assert r.ok, r.text()
        page.reload()
    page.click("button.certify-elder")
    page.wait_for_selector("#step-card:not([hidden])")
    card = write(tmp_path, "elder.jpg", site.elder_card)
    session_id = card_then_video(page, site, card, "proxy", drop_first_upload=True)
    assert_result_page(page, site, session_id)
    with site.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.channel == "proxy"
    assert errors == []
    context.close()
