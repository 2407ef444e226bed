"""The video step as a pensioner meets it, in Debian's Chromium with its fake camera (a moving test pattern)
against the real app (uvicorn, SQLite, the fake WeChat server): a phone call or a WeChat notification sends the
page to the background mid-take, the camera is taken by another app, the phone is turned sideways, the camera
answers slowly or not at all (permission refused, in use elsewhere), the upload is refused or stalls.

A take that was interrupted is thrown away, never uploaded (its frozen or black stretch would only be refused
by the server as a failed attempt), and the page says in Chinese what happened and offers the take again; the
next full take is uploaded once. The video upload is answered by the test (page.route): what is checked is what
the page sends, not the analysis. No page error (uncaught exception) on any of these paths."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Route, ViewportSize

import service.schema
from service.adapters.http.app import create_app
from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, UploadKind
from service.features.wechat.h5 import identity, recovery
from tests.browser import FAKE_CAMERA_ARGS, launched_chromium, serve_in_thread
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.h5.browser_flow import wait_until
from tests.service.servers import free_port

pytestmark = pytest.mark.slow
OPENID = "openid-interrupted"
# One fixed-time action (the page's take: a 3-s countdown, then 5 s per action, h5-capture.js FIXED_ACTION_S): what
# is tested here is how a take ends (interrupted, uploaded, refused), not the actions, and every take waited out is
# seconds of the suite.
ACTIONS = ["turn_left"]
TAKE_S = 3 + 5 * len(ACTIONS)
RECORDING = "#action-text:has-text('请向左转头')"  # the first action on screen: the recorder is running
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class Site:
    base: str
    ctx: ServiceContext
    beneficiary_id: int
    fake: FakeWeChat


@dataclass
class Video:
    """The page's video uploads (Idempotency-Key of each, and when it came), answered by `answers` in turn
    (then 202)."""

    keys: list[str] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # time.monotonic() of each upload
    answers: list[tuple[int, dict[str, object]] | None] = field(default_factory=list)  # None: never answered

    def __call__(self, route: Route) -> None:
        self.keys.append(route.request.headers.get("idempotency-key", ""))
        self.at.append(time.monotonic())
        answer = self.answers.pop(0) if self.answers else (202, {"state": "queued"})
        if answer is None:
            return  # left pending: the connection stalls
        status, body = answer
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("interrupted")
    with FakeWeChat() as fake:
        port = free_port()
        settings = wechat_settings(
            fake,
            root,
            database_url=f"sqlite:///{root / 'h5.db'}",
            public_base_url=f"http://127.0.0.1:{port}",
            challenge_actions=ACTIONS,
            web_dir=root / "no-web-bundle",  # the fixed-time capture (no in-page guidance)
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with ctx.db() as db:
            bid = factories.beneficiary(db, ctx.keyring, name="王淑芬", id_number=factories.id_number(seq=733)).id
            db.commit()
        with serve_in_thread(create_app(ctx=ctx), port, log_level="warning"):
            yield Site(f"http://127.0.0.1:{port}", ctx, bid, fake)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium(*FAKE_CAMERA_ARGS, "--autoplay-policy=no-user-gesture-required") as b:
        yield b


def card_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (856, 540), (200, 190, 170)).save(buf, "JPEG")
    return buf.getvalue()


def handed_session(site: Site) -> str:
    """A self session with its card already in (as after "继续认证"), as the page is handed it: JSON."""
    with site.ctx.db() as db:
        b = db.get(Beneficiary, site.beneficiary_id)
        assert b is not None
        new = recovery.start_self_session(db, site.ctx, b, OPENID, False)
        db.commit()
        card = card_jpeg()
        sessions.upload(db, site.ctx, new.session, UploadKind.ID_CARD, card, "image/jpeg", "card-" + new.session.id)
        answer = recovery.session_answer(db, site.ctx, new)
        db.commit()
    return json.dumps({**answer, "card_kept": True})


@dataclass
class Capture:
    page: Page
    video: Video
    errors: list[str]


@pytest.fixture
def capture(site: Site, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Capture]:
    """The capture page at its video step; `init` (a marker-free parameter) scripts run before the page's own."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(site.ctx, OPENID), "url": site.base}])
    context.route("https://res.wx.qq.com/**", lambda route: route.abort())
    init = getattr(request, "param", None)
    if init:
        context.add_init_script(init)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    video = Video()
    page.route("**/api/v1/sessions/*/video", video)
    page.goto(site.base + "/h5/")
    page.evaluate("s => sessionStorage.setItem('h5session', s)", handed_session(site))
    page.goto(site.base + "/h5/certify?mode=self")
    page.wait_for_selector("#step-video:not([hidden])")
    yield Capture(page, video, errors)
    context.close()


def camera_ready(page: Page) -> None:
    wait_until(page, lambda: page.evaluate("() => document.getElementById('preview').readyState") >= 2, 30, "camera")
    page.wait_for_selector("#record:not([hidden])", timeout=10_000)


def recording(page: Page) -> None:
    """After the tap: the countdown done, the recorder running (the first action's prompt on screen)."""
    page.wait_for_selector(RECORDING, timeout=15_000)


def retake_offered(c: Capture, words: str) -> None:
    """The take thrown away: nothing uploaded, the reason said, and "开始录制" back with the camera on. That it
    is not uploaded later either (when it would have ended) is checked by the next take: full_take_uploads_once."""
    page = c.page
    page.wait_for_selector("#record:not([hidden])", timeout=15_000)
    assert words in page.inner_text("#video-feedback"), page.inner_text("#video-feedback")
    camera_ready(page)
    assert c.video.keys == [], "an interrupted take was uploaded"
    assert page.is_visible("#record") and not page.is_visible("#upload-progress")


def full_take_uploads_once(c: Capture) -> None:
    """A tap, a whole take, one upload. That upload comes no sooner than a whole take after the tap, so an
    interrupted take before it (tapped seconds earlier) would have ended, and been uploaded, before it: it was not
    (one upload only, and not an early one)."""
    page = c.page
    camera_ready(page)
    tapped = time.monotonic()
    page.click("#record")
    wait_until(page, lambda: len(c.video.keys) >= 1, TAKE_S + 20, "the new take uploaded")
    page.wait_for_selector("#step-wait:not([hidden])", timeout=10_000)
    assert len(c.video.keys) == 1
    assert c.video.at[0] - tapped >= TAKE_S - 0.5, "uploaded before this take could have ended: an earlier take's"
    assert c.errors == []


HIDE = """hidden => {
  if (hidden) {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
  } else { delete document.visibilityState; delete document.hidden; }
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.mark.parametrize("during", ["countdown", "recording"])
def test_a_phone_call_mid_take_throws_the_take_away_and_asks_again(capture: Capture, during: str) -> None:
    """A call (or WeChat switched away) during the countdown or the recording: the camera freezes or goes black
    in the background; that take is not uploaded, and back on the page the take is offered again."""
    page = capture.page
    camera_ready(page)
    page.click("#record")
    if during == "countdown":
        page.wait_for_timeout(1500)
    else:
        recording(page)
        page.wait_for_timeout(500)
    page.evaluate(HIDE, True)
    page.wait_for_timeout(2000)  # the call
    page.evaluate(HIDE, False)
    retake_offered(capture, "重新录制")
    assert "打断" in page.inner_text("#video-feedback")
    full_take_uploads_once(capture)


def test_the_camera_lost_mid_recording_is_not_uploaded(capture: Capture) -> None:
    """The camera taken by another app (or its permission revoked) mid-recording: the track ends."""
    page = capture.page
    camera_ready(page)
    page.click("#record")
    recording(page)
    page.wait_for_timeout(500)
    page.evaluate("""() => document.getElementById("preview").srcObject.getVideoTracks().forEach((t) => {
      t.stop(); t.dispatchEvent(new Event("ended")); })""")
    retake_offered(capture, "摄像头")
    full_take_uploads_once(capture)


def test_turning_the_phone_sideways_mid_recording_asks_for_it_upright(capture: Capture) -> None:
    page = capture.page
    camera_ready(page)
    page.click("#record")
    recording(page)
    page.wait_for_timeout(500)
    page.set_viewport_size({"width": PHONE["height"], "height": PHONE["width"]})
    page.wait_for_selector("#record:not([hidden])", timeout=15_000)
    assert "竖" in page.inner_text("#video-feedback")
    page.set_viewport_size(PHONE)
    retake_offered(capture, "重新录制")
    full_take_uploads_once(capture)


SLOW_CAMERA = """(() => {
  const md = navigator.mediaDevices, orig = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => new Promise((r) => setTimeout(r, 4000)).then(() => orig(c));
})();"""


@pytest.mark.parametrize("capture", [SLOW_CAMERA], indirect=True, ids=["slow-camera"])
def test_a_tap_before_the_camera_is_on_does_not_break_the_page(capture: Capture) -> None:
    """An old phone's camera takes seconds to start; "开始录制" tapped at once used to record a stream that was
    not there yet (a TypeError, the page stuck on an empty countdown)."""
    page = capture.page
    if page.is_visible("#record"):
        page.click("#record")
    camera_ready(page)  # the camera on at last (its 4 s); an early tap's error shows here or after the take
    assert capture.errors == []
    full_take_uploads_once(capture)


REFUSED_ONCE = """(() => {
  const md = navigator.mediaDevices, orig = md.getUserMedia.bind(md); let n = 0;
  md.getUserMedia = (c) => (n++ === 0 ? Promise.reject(new DOMException("no", "NAME")) : orig(c));
})();"""


def refused_once(name: str) -> str:
    """getUserMedia refused once with the DOMException `name`, then the camera as usual."""
    return REFUSED_ONCE.replace("NAME", name)


@pytest.mark.parametrize(
    ("capture", "words"),
    [(refused_once("NotAllowedError"), "允许"), (refused_once("NotReadableError"), "其他应用")],
    indirect=["capture"],
    ids=["permission-denied", "camera-in-use"],
)
def test_a_camera_refused_says_why_and_tries_again(capture: Capture, words: str) -> None:
    page = capture.page
    page.wait_for_selector("#camera-retry:not([hidden])", timeout=10_000)
    assert words in page.inner_text("#video-feedback")
    assert page.is_visible("#video-fallback")  # the phone's own camera app remains a way
    page.click("#camera-retry")
    camera_ready(page)
    assert not page.is_visible("#camera-retry") and page.inner_text("#video-feedback") == ""
    full_take_uploads_once(capture)


def test_a_refused_video_can_be_recorded_again(capture: Capture) -> None:
    """The server refuses the clip (unreadable, too short): "请重新录制", and "开始录制" is there to do it."""
    page = capture.page
    capture.video.answers = [(422, {"error": {"code": "MEDIA_CORRUPT", "message": "视频无法识别,请重新录制"}})]
    camera_ready(page)
    page.click("#record")
    wait_until(page, lambda: len(capture.video.keys) == 1, TAKE_S + 20, "the first take uploaded")
    page.wait_for_selector("#record:not([hidden])", timeout=15_000)
    assert "视频无法识别" in page.inner_text("#video-feedback")
    camera_ready(page)
    page.click("#record")
    wait_until(page, lambda: len(capture.video.keys) == 2, TAKE_S + 20, "the second take uploaded")
    page.wait_for_selector("#step-wait:not([hidden])", timeout=10_000)
    assert capture.video.keys[0] != capture.video.keys[1]  # a new recording, a new key
    assert capture.errors == []


def test_a_stalled_upload_offers_the_retry_with_the_same_recording(capture: Capture) -> None:
    """The connection dies silently (no error, no answer): after the page's stall limit the retry is offered,
    and the retry sends the same recording under the same Idempotency-Key (stored once)."""
    page = capture.page
    capture.video.answers = [None]
    page.evaluate("() => { document.getElementById('app').dataset.uploadStallS = '3'; }")  # 45 s on a phone
    camera_ready(page)
    page.click("#record")
    wait_until(page, lambda: len(capture.video.keys) == 1, TAKE_S + 20, "the take uploaded")
    page.wait_for_selector("#retry:not([hidden])", timeout=15_000)
    assert "视频已保留" in page.inner_text("#video-feedback")
    page.click("#retry")
    page.wait_for_selector("#step-wait:not([hidden])", timeout=10_000)
    assert len(capture.video.keys) == 2 and capture.video.keys[0] == capture.video.keys[1]
    assert capture.errors == []


def test_an_upload_refused_for_the_rate_limit_keeps_the_recording(capture: Capture) -> None:
    """A 429 (the upload rate limit, met after a few quick retries) threw the good recording away and asked the
    pensioner to film again (the round's whole-diff review): it is kept, and 重新上传 sends it under its key."""
    page = capture.page
    capture.video.answers = [(429, {"error": {"code": "RATE_LIMITED", "message": "请求过于频繁,请稍后再试"}})]
    camera_ready(page)
    page.click("#record")
    wait_until(page, lambda: len(capture.video.keys) == 1, TAKE_S + 20, "the take uploaded")
    page.wait_for_selector("#retry:not([hidden])", timeout=15_000)
    assert "视频已保留" in page.inner_text("#video-feedback") and not page.is_visible("#record")
    page.click("#retry")
    page.wait_for_selector("#step-wait:not([hidden])", timeout=10_000)
    assert len(capture.video.keys) == 2 and capture.video.keys[0] == capture.video.keys[1]
    assert capture.errors == []


def test_a_video_already_in_goes_on_to_the_wait(capture: Capture) -> None:
    """The upload's answer was lost and the session already has its video (409 SESSION_STATE): nothing to
    record again; the page goes on to the wait (and the result) instead of "请重新录制" with no way to do it."""
    page = capture.page
    capture.video.answers = [(409, {"error": {"code": "SESSION_STATE", "message": "认证状态已变化"}})]
    camera_ready(page)
    page.click("#record")
    page.wait_for_selector("#step-wait:not([hidden])", timeout=(TAKE_S + 20) * 1000)
    assert capture.errors == []


def test_a_login_expired_while_the_page_sat_open_enters_again(site: Site, browser: Browser, tmp_path: Path) -> None:
    """The pages' WeChat login (a 2-h cookie) ran out while the card step sat open: the card photo was answered
    “未授权的访问” and nothing more. The page is entered again through WeChat's login and says so."""
    site.fake.state.browser_openid = OPENID
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(site.ctx, OPENID), "url": site.base}])
    context.route("https://res.wx.qq.com/**", lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.base + "/h5/certify?mode=self")
    page.check("#consent")
    page.click("#consent-next")
    page.wait_for_selector("#step-card:not([hidden])")
    context.clear_cookies()  # the login's lifetime is over
    card = tmp_path / "card.jpg"
    card.write_bytes(card_jpeg())
    page.set_input_files("#card-file", str(card))
    wait_until(page, lambda: "重新进入" in page.inner_text("#consent-feedback"), 30, "entered again")
    assert page.is_visible("#step-consent")  # from the start, logged in again
    assert any(c["name"] == identity.COOKIE for c in context.cookies())
    assert errors == []
    context.close()
