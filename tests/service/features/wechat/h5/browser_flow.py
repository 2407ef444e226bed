"""What the H5 browser tests share: the real app served by uvicorn (SQLite, in-process worker running the real
pipeline) against the local fake WeChat server, and Debian's Chromium with a fake camera fed from a .y4m made
(at test time) from a real selfie video of the dev data; the steps every flow takes (card, video, result).
Each test module opens its own site and browser (module-scoped fixtures calling `open_site` / `open_browser`).
Screenshots go to PENSION_CERT_SCREENSHOTS_DIR (default bench/results/screenshots/h5, git-ignored: they show
dev-data faces)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from playwright.sync_api import Browser, BrowserContext, Page, Route, ViewportSize

import service.schema
from pipelines.id_card.synthetic import CardFields
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import CertSession
from tests.browser import FAKE_CAMERA_ARGS, SCREENSHOTS, launched_chromium, serve_in_thread
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, card_for_video
from tests.service.servers import free_port

# The spoken prompts play without a tap in the test (a phone needs the first tap, which every flow starts with).
CAMERA_ARGS = [*FAKE_CAMERA_ARGS, "--autoplay-policy=no-user-gesture-required"]
SHOTS = SCREENSHOTS / "h5"
PHONE: ViewportSize = {"width": 390, "height": 844}
DECIDED_TEXT = {"accept": "认证通过", "review": "已转人工审核", "reject": "认证未通过"}
ACCEPTED_BY_KIND = {"verification": "实名核验通过", "consent": "家人已确认"}
BUREAU_PHONE = "027-12345678"
JSSDK = "https://res.wx.qq.com/**"


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


def make_y4m(video: Path, out: Path, lead_s: float = 3.0, fps: int = 15, size: tuple[int, int] = (320, 240)) -> Path:
    """The dev video as a raw Y4M camera feed: `lead_s` of its first frame (the page's countdown), then the
    video itself, so the recording after the countdown sees the actions from the start, then the video backwards.
    Chromium plays the file in a loop: played back to its first frame, the feed never jumps from the video's last
    frame to its first. A take of the fixed timing (5 s an action: 15 s) is longer than the video (11.7 s), and a
    jump inside it read as another face (FACE_CHANGED_IN_VIDEO) when CI's load moved the take's start."""
    frames: list[np.ndarray] = []
    with av.open(str(video)) as container:
        next_t = 0.0
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t + 1e-6 < next_t:
                continue
            next_t += 1.0 / fps
            frames.append(cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_AREA))
    frames = [frames[0]] * int(lead_s * fps) + frames + frames[-2:0:-1]
    w, h = size
    with out.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for f in frames:
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


@contextmanager
def open_site(root: Path, data_dir: Path) -> Iterator[Site]:
    """The app on a free port, with the self-certifying person and the elder (by their cards) on the roster."""
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
            bureau_phone=BUREAU_PHONE,
            # The fixed-time capture (the page's flow where the in-page guidance cannot run): the fake camera
            # plays a clip whose actions come at fixed times whatever the prompts say, so a guided recording
            # (started when the face is steady, cut after the last confirmed action) would start at an
            # arbitrary point of it. The guided capture has its own tests: test_browser_guidance.py.
            web_dir=root / "no-web-bundle",
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with ctx.db() as db:
            factories.beneficiary(db, ctx.keyring, id_number=fields.id_number, name=fields.name)
            factories.beneficiary(db, ctx.keyring, id_number=elder_fields.id_number, name=elder_fields.name)
        app = create_app(ctx=ctx)
        with serve_in_thread(app, port, log_level="warning"):
            yield Site(
                f"http://127.0.0.1:{port}",
                ctx,
                fake,
                card,
                fields,
                elder_card,
                elder_fields,
                relative_card,
                relative_fields,
            )


@contextmanager
def open_browser(camera_dir: Path, data_dir: Path) -> Iterator[Browser]:
    y4m = make_y4m(data_dir / LIVE_VIDEO, camera_dir / "camera.y4m")
    with launched_chromium(*CAMERA_ARGS, f"--use-file-for-fake-video-capture={y4m}") as b:
        yield b


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def write(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def wait_until(page: Page, check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll from Python: the pages' CSP forbids the eval that Playwright's wait_for_function needs."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        page.wait_for_timeout(200)


def card_then_video(page: Page, site: Site, card: str, name: str, drop_first_upload: bool = False) -> str:
    page.set_input_files("#card-file", card)
    page.wait_for_selector("#step-video:not([hidden])", timeout=120_000)
    return video_then_result(page, name, drop_first_upload)


def video_then_result(page: Page, name: str, drop_first_upload: bool = False) -> str:
    """From the video step: record the challenge with the fake camera, wait for the result page."""
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
        decision, reasons = s.decision, s.reasons
    result = page.locator("#result")
    assert result.get_attribute("data-decision") == decision
    expected = DECIDED_TEXT[decision]
    if decision == "accept":
        expected = ACCEPTED_BY_KIND.get(kind or "", expected)
    heading = page.inner_text("#result h1")
    assert expected in heading, (decision, reasons, heading)  # the reasons say why a take was not accepted


def block_jssdk(context: BrowserContext) -> list[str]:
    """WeChat's JS-SDK script (no network here): recorded and refused, as outside WeChat it does nothing."""
    seen: list[str] = []

    def refuse(route: Route) -> None:
        seen.append(route.request.url)
        route.abort()

    context.route(JSSDK, refuse)
    return seen
