"""The H5 pages in a real browser: Playwright driving Debian's /usr/bin/chromium with a fake camera fed from a
.y4m made (at test time) from a real selfie video of the dev data, against the real app served by uvicorn
(SQLite, in-process worker running the real pipeline) and the local fake WeChat server (set up by
browser_flow.py, shared with the family pages' recovery tests in test_browser_family.py).

Self flow (read, don't type): the OAuth redirect from the fake WeChat server, consent, a bad card photo (instant
OCR feedback), the card, its name and number confirmed with one tap (nothing typed), elder mode from the
roster, the recorded challenge video, the result page, every prompt of the way spoken (the project's audio).
Proxy flow: a relative verified (name and number filled from their card photo) binds an elder (likewise), staff
approve the binding, the relative certifies the elder (named on every step), unbinding asks first.
Recovery: a result-message link opened without a cookie reaches its page after OAuth, and the failed video is
recorded again from the video step (card kept, the session surviving a reload); the timeout and daily-limit
screens lead somewhere (the daily limit after a read corrected by hand); the card button is reached and used
with the keyboard. Elder mode at 200 % zoom: no horizontal scrolling, every control named. Screenshots go to
PENSION_CERT_SCREENSHOTS_DIR (default bench/results/screenshots/h5, git-ignored: they show dev-data faces)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FileChooser,
    Page,
    Request,
    Response,
    ViewportSize,
)
from sqlalchemy import select

from pipelines.id_card.synthetic import CardFields
from pipelines.reasons import ReasonCode
from service.certification import sessions
from service.certification.models import CertSession, Channel, SessionState, UploadKind, utcnow
from service.features.proxy.models import ProxyBinding, ProxyOperator
from service.features.wechat.h5.cardcheck import RETAKE
from service.features.wechat.models import WeChatSessionLink
from tests.service import factories
from tests.service.conftest import ADMIN_API_KEY
from tests.service.features.wechat.h5.browser_flow import (
    BUREAU_PHONE,
    PHONE,
    Site,
    assert_result_page,
    block_jssdk,
    card_then_video,
    open_browser,
    open_site,
    shot,
    video_then_result,
    wait_until,
    write,
)
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO

pytestmark = pytest.mark.slow

RETAKE_MESSAGES = {c.message_zh for c in (*RETAKE, ReasonCode.ID_NUMBER_MISMATCH, ReasonCode.MEDIA_CORRUPT)}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Site]:
    with open_site(tmp_path_factory.mktemp("h5"), data_dir) as s:
        yield s


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Browser]:
    with open_browser(tmp_path_factory.mktemp("camera"), data_dir) as b:
        yield b


def not_a_card(data_dir: Path) -> bytes:
    """A selfie frame of the dev video: a photo of a face, not of an ID card."""
    with av.open(str(data_dir / LIVE_VIDEO)) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="bgr24")
    ok, buf = cv2.imencode(".jpg", frame)
    assert ok
    return buf.tobytes()


def in_view(page: Page, selector: str) -> bool:
    bb = page.locator(selector).bounding_box()
    return bb is not None and bb["y"] >= 0 and bb["y"] + bb["height"] <= PHONE["height"]


def above(page: Page, first: str, second: str) -> bool:
    a, b = page.locator(first).bounding_box(), page.locator(second).bounding_box()
    return a is not None and b is not None and a["y"] + a["height"] <= b["y"]


def spoken_audio(context: BrowserContext) -> dict[str, int]:
    """The prompt audio the pages asked for (Chromium has no zh-CN speech voice here): key → HTTP status, 0
    while unanswered (a prompt cut short by the next one: the person already tapped on)."""
    played: dict[str, int] = {}

    def asked(request: Request) -> None:
        if "/h5/audio/" in request.url:
            played.setdefault(request.url.rsplit("/", 1)[1], 0)

    def answered(response: Response) -> None:
        if "/h5/audio/" in response.url:
            played[response.url.rsplit("/", 1)[1]] = response.status

    context.on("request", asked)
    context.on("response", answered)
    return played


def confirm_read(page: Page, fields: CardFields, name: str) -> None:
    """The confirm step shows what the card says, large; one tap and no typing opens the session."""
    page.wait_for_selector("#step-confirm:not([hidden])", timeout=120_000)
    assert page.inner_text("#read-name") == fields.name
    assert page.inner_text("#read-number").replace(" ", "") == fields.id_number
    assert not page.is_visible("#name") and not page.is_visible("#id-number")  # nothing to type
    shot(page, f"{name}-confirm")
    page.click("#confirm-yes")


def test_self_certification_in_wechat(site: Site, browser: Browser, data_dir: Path, tmp_path: Path) -> None:
    site.fake.state.browser_openid = "openid-pensioner"
    context = browser.new_context(viewport=PHONE, locale="zh-CN", user_agent="Mozilla/5.0 (Linux; Android 13) Mobile")
    jssdk = block_jssdk(context)
    played = spoken_audio(context)
    page = context.new_page()
    page.goto(site.base + "/h5/")  # the menu link: OAuth redirect via the fake WeChat server and back
    page.wait_for_selector("#self")
    assert page.url.split("#")[0] == site.base + "/h5/"  # WeChat keeps its #wechat_redirect fragment
    shot(page, "self-start")
    assert jssdk == []  # the JS-SDK only where it is used

    page.click("#self")
    page.wait_for_selector("#step-consent")
    assert len(jssdk) == 1 and jssdk[0].endswith("/jweixin-1.6.0.js")  # requested by the capture page
    assert page.get_attribute("#id-number", "inputmode") == "numeric"  # the keypad, if a correction is needed
    assert not page.is_visible("#name") and not page.is_visible("#id-number")  # read, don't type
    page.click("#consent-next")
    assert "请先勾选" in page.inner_text("#consent-feedback")  # consent is required
    assert in_view(page, "#consent-feedback") and page.get_attribute("#consent-feedback", "aria-live")
    assert above(page, "#consent-feedback", "#consent-next")  # the error is next to the action, not below it
    for box in page.locator("label.check").all():  # MIIT elderly guideline: targets of 60 px or more
        bb = box.bounding_box()
        assert bb is not None and bb["height"] >= 60, bb
    page.click("label.check:has(#consent)")  # the whole row toggles the box
    assert page.is_checked("#consent")
    page.uncheck("#consent")
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

    assert not page.evaluate("() => document.body.classList.contains('elder')")  # the roster is not known yet
    page.set_input_files("#card-file", write(tmp_path, "card.jpg", site.card))
    confirm_read(page, site.fields, "self")
    page.wait_for_selector("#step-video:not([hidden])", timeout=120_000)
    assert page.evaluate("() => document.body.classList.contains('elder')")  # born 1950 by the roster: elder mode
    session_id = video_then_result(page, "self")
    assert_result_page(page, site, session_id)
    with site.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.decision is not None
        decision = s.decision
    # Every prompt of the way was spoken, from the project's audio files.
    expected = {"consent", "card", "card_reading", "card_retake", "confirm", "video", "uploading", decision}
    expected |= {f"action_{a}" for a in LIVE_ACTIONS}
    assert expected <= set(played), expected - set(played)
    # 206: the media element asks for byte ranges. None refused; most played to their end before the next.
    answered = [status for status in played.values() if status]
    assert set(answered) <= {200, 206} and len(answered) >= len(expected) // 2, played
    context.close()


def filled(page: Page, selector: str, value: str) -> None:
    wait_until(page, lambda: page.input_value(selector) != "", 120, f"{selector} filled from the card")
    assert page.input_value(selector) == value


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

    # The relative's own real-name verification through the same card and video steps; the name and number
    # filled from a photo of their card (read, don't type).
    card = write(tmp_path, "relative.jpg", site.relative_card)
    page.set_input_files("#op-card-file", card)
    filled(page, "#op-id", site.relative_fields.id_number)
    assert page.input_value("#op-name") == site.relative_fields.name
    page.click("#op-verify")
    page.wait_for_selector("#step-card:not([hidden])")
    verification_id = card_then_video(page, site, card, "proxy-verify")
    assert_result_page(page, site, verification_id, kind="verification")
    with site.ctx.db() as db:
        op = db.scalar(select(ProxyOperator).where(ProxyOperator.channel == "wechat"))
        verification = db.get(CertSession, verification_id)
        outcome = (verification.decision, verification.reasons) if verification else None
        assert op is not None and op.verified_at is not None, f"the relative's verification was not accepted: {outcome}"
    page.click("a[href='/h5/family']")
    page.wait_for_selector("#bind-form:not([hidden])")
    page.set_input_files("#elder-card-file", write(tmp_path, "elder.jpg", site.elder_card))  # the elder's card
    filled(page, "#elder-id", site.elder_fields.id_number)
    assert page.input_value("#elder-name") == site.elder_fields.name
    shot(page, "proxy-bind-prefilled")
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
    elder = site.elder_fields.name
    assert page.inner_text("#who") == f"正在为{elder}认证"  # the capture steps name the elder
    assert f"为{elder}认证" in page.inner_text("#step-card")
    shot(page, "proxy-card-named")
    page.set_input_files("#card-file", write(tmp_path, "elder.jpg", site.elder_card))
    page.wait_for_selector("#step-video:not([hidden])", timeout=120_000)
    assert f"为{elder}认证" in page.inner_text("#step-video") and page.is_visible("#who")
    session_id = video_then_result(page, "proxy", drop_first_upload=True)
    assert_result_page(page, site, session_id)
    assert elder in page.inner_text("#who")  # and so does the result
    with site.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.channel == "proxy"

    # Unbinding: a separate, smaller control, and a confirmation that names the elder.
    page.goto(site.base + "/h5/family")
    page.wait_for_selector("li.binding .elder-status")  # certified until / in review, under the elder's name
    # A reject (the fake camera's take on a loaded machine can miss an action) leaves the elder as the roster has
    # them: no validity date, "undated" (暂无认证记录); '' matched no state the page writes.
    expected_state = {"accept": "certified", "review": "review"}.get(s.decision or "", "undated")
    status_line = page.locator("li.binding .elder-status")
    assert status_line.get_attribute("data-state") == expected_state, status_line.inner_text()
    shot(page, "proxy-family-status")
    unbind = page.locator("li.binding button.unbind")
    main = page.locator("li.binding button.certify-elder")
    ub, mb = unbind.bounding_box(), main.bounding_box()
    assert ub is not None and mb is not None and ub["y"] - (mb["y"] + mb["height"]) >= 20  # not next to it
    unbind.click()
    assert elder in page.inner_text("li.binding .confirm") and page.is_visible("button.unbind-confirm")
    shot(page, "proxy-unbind-confirm")
    page.click("button.unbind-cancel")
    assert page.locator("li.binding").count() == 1 and page.is_visible("button.unbind")
    with site.ctx.db() as db:
        assert db.scalar(select(ProxyBinding.status).where(ProxyBinding.operator_id == op.id)) == "active"
    page.click("button.unbind")
    page.click("button.unbind-confirm")
    wait_until(page, lambda: page.locator("li.binding").count() == 0, 30, "unbound")
    assert errors == []
    context.close()


def failed_session(site: Site, openid: str, fields: CardFields, card: bytes | None, rejects: int = 1) -> str:
    """`rejects` sessions of the person with these card fields rejected today on a video reason (the card
    stored through the real upload), linked to `openid` as a WeChat session; returns the last one's id."""
    with site.ctx.db() as db:
        b = sessions.find_beneficiary(db, site.ctx, None, fields.id_number)
        last = ""
        for _ in range(rejects):
            s = sessions.create_session(db, site.ctx, b, Channel.SELF, False, "test").session
            if card is not None:
                ctype = "image/png" if card.startswith(b"\x89PNG") else "image/jpeg"
                sessions.upload(db, site.ctx, s, UploadKind.ID_CARD, card, ctype, "card-" + s.id)
            s.state, s.decision, s.decided_at = SessionState.DECIDED, "reject", utcnow()
            s.reasons = [ReasonCode.CHALLENGE_MISSING_ACTION.value]
            db.add(WeChatSessionLink(session_id=s.id, openid=openid))
            last = s.id
        db.commit()
    return last


def test_message_link_without_cookie_then_the_video_again(site: Site, browser: Browser) -> None:
    """The link of a result message, opened the next day: OAuth, the failed result, then straight to the video
    step (the card is kept); the new session survives a reload and is decided from the new video."""
    site.fake.state.browser_openid = "openid-link"
    failed = failed_session(site, "openid-link", site.fields, site.card)
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    block_jssdk(context)
    page = context.new_page()
    link = f"{site.base}/h5/result/{failed}"
    page.goto(link)  # no cookie: through the fake WeChat OAuth and back to this very page
    page.wait_for_selector("#result")
    assert page.url.split("#")[0] == link
    assert "认证未通过" in page.inner_text("#result h1")
    assert "今天还可以再试 2 次" in page.inner_text("#attempts-left")
    assert page.get_attribute("#call", "href") == f"tel:{BUREAU_PHONE}"
    shot(page, "link-result-failed")

    page.click("#again")
    page.wait_for_selector("#step-video:not([hidden])")
    assert not page.is_visible("#step-card") and not page.is_visible("#step-consent")  # no name, number, card
    assert page.inner_text("#attempts") == "今天还可以尝试 2 次。"
    shot(page, "again-video-step")
    page.reload()  # the session survives a reload: restored from the server, still at the video step
    page.wait_for_selector("#step-video:not([hidden])")
    session_id = video_then_result(page, "again")
    assert session_id != failed
    assert_result_page(page, site, session_id)
    with site.ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.id_card_sha256 is not None
        old = db.get(CertSession, failed)
        assert old is not None and s.id_card_sha256 == old.id_card_sha256  # the same card photo, kept
    context.close()


def keyboard_choose_file(page: Page, choosers: list[FileChooser], path: str) -> None:
    """Enter on the focused button opens the file chooser. The listener (`choosers`) was registered when the page
    was opened, so Playwright intercepts the chooser from the first key on: an `expect_file_chooser` set up at
    the key press itself once lost that race under CI load. Space (the other key that presses a button) once
    more if Enter never showed one."""
    for key in ("Enter", "Space"):
        page.keyboard.press(key)
        deadline = time.monotonic() + 30
        while not choosers and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        if choosers:
            choosers[0].set_files(path)
            return
    raise AssertionError("the focused card button does not open the file chooser")


def test_timeout_screen_continues_and_the_card_button_works_by_keyboard(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    site.fake.state.browser_openid = "openid-timeout"
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    block_jssdk(context)
    page = context.new_page()
    choosers: list[FileChooser] = []
    page.on(
        "filechooser", lambda chooser: choosers.append(chooser)
    )  # intercept file choosers from the start (keyboard_choose_file)
    page.goto(site.base + "/h5/certify?mode=self")  # no cookie: OAuth, then back to the capture page
    page.wait_for_selector("#step-consent")
    assert page.url.split("#")[0] == site.base + "/h5/certify?mode=self"
    page.check("#consent")
    page.click("#consent-next")
    page.wait_for_selector("#step-card:not([hidden])")
    assert page.evaluate("() => document.getElementById('card-button').tagName") == "BUTTON"
    for _ in range(12):  # Tab from the page's start to the card button
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == "card-button":
            break
    else:
        raise AssertionError("the card button is not reachable with Tab")
    shot(page, "keyboard-card-button")
    keyboard_choose_file(page, choosers, write(tmp_path, "card.jpg", site.card))
    page.wait_for_selector("#step-confirm:not([hidden])", timeout=120_000)
    page.focus("#confirm-yes")
    page.keyboard.press("Enter")
    page.wait_for_selector("#step-video:not([hidden])", timeout=120_000)

    session_id = page.get_attribute("#app", "data-session")
    past = utcnow() - dt.timedelta(minutes=1)
    with site.ctx.db() as db:  # the citizen left the phone for longer than the session lives
        s = db.get(CertSession, session_id)
        assert s is not None
        s.expires_at = s.nonce_expires_at = past
        db.commit()
    page.reload()
    page.wait_for_selector("#step-timeout:not([hidden])")
    assert page.is_visible("#timeout-again") and page.is_visible("#step-timeout a[href='/h5/']")
    shot(page, "timeout")
    page.click("#timeout-again")
    page.wait_for_selector("#step-video:not([hidden])")  # a new session, the card kept: the video step
    new_id = page.get_attribute("#app", "data-session")
    assert new_id and new_id != session_id
    with site.ctx.db() as db:
        new = db.get(CertSession, new_id)
        assert new is not None and new.id_card_key is not None and new.state == SessionState.OPEN
    shot(page, "timeout-continued")
    context.close()


def test_daily_limit_screen_offers_review_and_home_visit(site: Site, browser: Browser, tmp_path: Path) -> None:
    fields = dataclasses.replace(site.fields, name="赵桂兰", id_number=factories.id_number(seq=481))
    with site.ctx.db() as db:
        factories.beneficiary(db, site.ctx.keyring, id_number=fields.id_number, name=fields.name)
        db.commit()
    failed_session(site, "openid-limit", fields, None, rejects=3)
    site.fake.state.browser_openid = "openid-limit"
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    block_jssdk(context)
    page = context.new_page()
    page.goto(site.base + "/h5/certify?mode=self")
    page.check("#consent")
    page.click("#consent-next")
    # A card read wrongly (here: another person's card): corrected by hand on the numeric keypad.
    page.set_input_files("#card-file", write(tmp_path, "card.jpg", site.card))
    page.wait_for_selector("#step-confirm:not([hidden])", timeout=120_000)
    page.click("#confirm-edit")
    assert page.get_attribute("#id-number", "inputmode") == "numeric"
    assert not page.is_visible("#read-number")  # the fields replace the large read: one version on screen
    assert page.input_value("#id-number") == site.fields.id_number  # prefilled with the read, to correct
    page.fill("#name", fields.name)
    page.fill("#id-number", fields.id_number)
    shot(page, "confirm-corrected")
    page.click("#confirm-yes")
    page.wait_for_selector("#step-limit:not([hidden])")
    text = page.inner_text("#step-limit")
    assert "今日认证次数已达上限" in text and "人工审核或上门认证" in text
    assert page.get_attribute("#step-limit #call", "href") == f"tel:{BUREAU_PHONE}"
    assert page.get_attribute("#limit-home", "href") == "/h5/"
    shot(page, "daily-limit")
    context.close()


ZOOM_200: ViewportSize = {"width": PHONE["width"] // 2, "height": PHONE["height"] // 2}  # 200 % of the phone
UNNAMED_CONTROLS = """() => Array.from(document.querySelectorAll("button, input, select, textarea, progress, a[href]"))
  .filter((el) => {
    const labels = el.labels ? Array.from(el.labels).map((l) => l.textContent).join("") : "";
    const name = el.getAttribute("aria-label") || labels || el.textContent || el.getAttribute("title") || "";
    return name.trim() === "";
  }).map((el) => el.outerHTML)"""


def fits(page: Page, selector: str) -> None:
    """At 200 % zoom: no horizontal scrolling, and the step's main button wholly on screen across."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= ZOOM_200["width"], f"horizontal scrolling: {width} px wide"
    bb = page.locator(selector).bounding_box()
    assert bb is not None and bb["x"] >= 0 and bb["x"] + bb["width"] <= ZOOM_200["width"], bb
    page.locator(selector).scroll_into_view_if_needed()
    assert page.locator(selector).is_visible()


def test_elder_mode_at_200_percent_zoom_with_every_control_named(site: Site, browser: Browser, tmp_path: Path) -> None:
    """The start, consent, card and confirm screens in elder mode at 200 % zoom (half the CSS pixels of the
    phone), each with its main button reachable without horizontal scrolling, and no control without a name."""
    site.fake.state.browser_openid = "openid-zoom"
    context = browser.new_context(viewport=ZOOM_200, device_scale_factor=2, locale="zh-CN")
    block_jssdk(context)
    page = context.new_page()
    page.goto(site.base + "/h5/")
    page.wait_for_selector("#self")
    normal = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.btn')).fontSize)")
    page.click("#elder-toggle")  # the button any user has; for 60 and over it is on by itself
    assert page.get_attribute("#elder-toggle", "aria-pressed") == "true"
    bigger = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.btn')).fontSize)")
    assert bigger >= normal * 1.2, (normal, bigger)
    fits(page, "#self")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    shot(page, "elder-zoom-start")

    page.click("#self")
    page.wait_for_selector("#step-consent")
    # Remembered on the next page (the step's markup can be there before the page's script has run: wait for it).
    page.wait_for_function("() => document.body.classList.contains('elder')", timeout=10_000)
    assert page.evaluate(UNNAMED_CONTROLS) == []  # every step's controls are in the page, shown or not
    fits(page, "#consent-next")
    shot(page, "elder-zoom-consent")
    page.check("#consent")
    page.click("#consent-next")
    page.wait_for_selector("#step-card:not([hidden])")
    fits(page, "#card-button")
    shot(page, "elder-zoom-card")
    page.set_input_files("#card-file", write(tmp_path, "card.jpg", site.card))
    page.wait_for_selector("#step-confirm:not([hidden])", timeout=120_000)
    assert not page.is_visible("#step-confirm .detail")  # fewer words
    fits(page, "#confirm-yes")
    fits(page, "#read-number")
    shot(page, "elder-zoom-confirm")
    page.click("#voice-mute")  # the visible mute button
    assert page.get_attribute("#voice-mute", "aria-pressed") == "true"
    context.close()


def test_a_shared_phone_gives_the_next_person_a_fresh_start(site: Site, browser: Browser) -> None:
    """A helper certifying neighbours on one phone: a reload restores the session in progress, but the next
    person, starting again from the start page, gets the consent step and an empty tab, not the previous
    person's session (whose card is already in)."""
    site.fake.state.browser_openid = "openid-shared"
    with site.ctx.db() as db:
        b = sessions.find_beneficiary(db, site.ctx, None, site.fields.id_number)
        new = sessions.create_session(db, site.ctx, b, Channel.SELF, False, "test")
        db.add(WeChatSessionLink(session_id=new.session.id, openid="openid-shared"))
        db.commit()
        saved = json.dumps({"s": {"session_id": new.session.id, "token": new.token}, "mode": "self"})
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    block_jssdk(context)
    page = context.new_page()
    page.goto(site.base + "/h5/certify?mode=self")
    page.wait_for_selector("#step-consent:not([hidden])")
    page.evaluate("saved => sessionStorage.setItem('h5current', saved)", saved)
    page.reload()  # the same person reloads: their session comes back, at the card step
    page.wait_for_selector("#step-card:not([hidden])")
    page.goto(site.base + "/h5/")
    page.click("#self")
    page.wait_for_selector("#step-consent:not([hidden])")
    assert not page.is_visible("#step-card")

    # The consent step is in the page's markup before its script has run (and dropped the saved session): wait
    # for the script, not for the markup (a loaded machine ran the check in between).
    def dropped() -> bool:
        return page.evaluate("sessionStorage.getItem('h5current')") is None

    wait_until(page, dropped, 10, "the previous person's session left in the tab")
    assert not page.is_visible("#step-card")
    context.close()
