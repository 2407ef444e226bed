"""An outside accessibility review of the citizens' H5 pages for older users (适老化), measured in Debian's
Chromium on the real rendered pages at a 360×640 phone viewport: the MIIT 《互联网网站适老化通用设计规范》 and
WCAG 2.1 AA. Every page (start, certify with all its steps shown, result in each state with the help block,
family, apply, a message page, 我的信息) is loaded and measured at once: text sizes, contrast from the computed
colours (alpha composited over the first opaque background up the tree), tap-target sizes and the gaps between
them, accessible names, lang, the viewport meta; then again with WCAG 1.4.12's text spacing, at 200 % zoom
(180 CSS px wide, also in elder mode) and with every font size doubled (WeChat's 字体大小 setting scales the text,
not the layout): no horizontal scrolling, no text cut off by a box hiding its overflow, no two lines of text
drawn over each other. Also: the live regions, the face oval's flash rate, the live prompt written once.

Thresholds chosen: main text ≥ 18 px, nothing below 14 px; contrast ≥ 4.5:1 for every text (large text included:
the stricter reading); every target ≥ 44×44 CSS px (WCAG 2.5.5 AAA / the platforms' guideline), the pages'
buttons (`.btn`) ≥ 60 px both ways (the MIIT app spec's 60×60); adjacent targets at least 8 px apart."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, ViewportSize
from sqlalchemy.orm import Session

import service.schema
from proxy_auth import ConsentMethod
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.features.proxy import bindings, operators
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from tests.browser import FAKE_CAMERA_ARGS, launched_chromium, serve_in_thread
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.h5.test_contrast import contrast, luminance
from tests.service.features.wechat.test_routes import decided_session
from tests.service.servers import free_port

pytestmark = pytest.mark.slow

OPENID = "openid-a11y"
PHONE_VIEW: ViewportSize = {"width": 360, "height": 640}
ZOOM_200: ViewportSize = {"width": 180, "height": 320}  # 200 % of the phone
MAIN_TEXT_PX, MIN_TEXT_PX, AA, TARGET_PX, GAP_PX, MIIT_BUTTON_PX = 18.0, 14.0, 4.5, 44.0, 8.0, 60.0

# Everything on the page measured at once: visible text runs, interactive targets, unnamed controls.
MEASURE = """() => {
  const CLOSED = "details:not([open]) > :not(summary)";
  const shown = (el) => { const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none"
      && !el.closest(CLOSED); };
  const path = (el) => (el.id ? "#" + el.id : el.tagName.toLowerCase()
      + (el.className ? "." + String(el.className).trim().split(/\\s+/).join(".") : ""))
    + (!el.id && el.parentElement && el.parentElement !== document.body ? " < " + path(el.parentElement) : "");
  const backdrop = (el) => { for (let e = el; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
    if (c && c !== "transparent" && !/rgba\\(.*,\\s*0\\)$/.test(c)) return c; } return "rgb(255, 255, 255)"; };
  const texts = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || !shown(el) || el.closest("option")) continue;
    const cs = getComputedStyle(el);
    texts.push({ where: path(el), text: n.textContent.trim().slice(0, 24), size: parseFloat(cs.fontSize),
      color: cs.color, bg: backdrop(el), main: !!el.closest("main") });
  }
  const targets = Array.from(document.querySelectorAll(
      "button, a[href], input:not([type=hidden]):not([type=file]), select, label.check, [role=button]"))
    .filter((el) => shown(el) && (el.matches("label.check") || !el.closest("label.check")))  // the row is the target
    .map((el) => { const r = el.getBoundingClientRect();
      // An inline link wrapped over two lines is two small targets, not one tall one: its largest piece counts.
      const pieces = getComputedStyle(el).display === "inline" ? Array.from(el.getClientRects()) : [r];
      return { where: path(el), btn: el.classList.contains("btn"), x: r.left + scrollX, y: r.top + scrollY,
        w: Math.max(...pieces.map((p) => p.width)),
        h: Math.max(...pieces.map((p) => p.height)) }; });
  const unnamed = Array.from(document.querySelectorAll(
      "button, input:not([type=hidden]), select, textarea, progress, a[href], img, [role=button]"))
    .filter((el) => { const labels = el.labels ? Array.from(el.labels).map((l) => l.textContent).join("") : "";
      const name = el.getAttribute("aria-label") || el.getAttribute("alt") || labels || el.textContent
        || el.getAttribute("title") || "";
      return name.trim() === ""; }).map((el) => el.outerHTML.slice(0, 120));
  const meta = document.querySelector("meta[name=viewport]");
  return { texts, targets, unnamed, lang: document.documentElement.lang, viewport: meta ? meta.content : "",
    title: document.title, h1: document.querySelectorAll("h1").length,
    positiveTabindex: Array.from(document.querySelectorAll("[tabindex]")).filter((e) => e.tabIndex > 0).length,
    scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth };
}"""

# Reflow: horizontal scrolling, text cut off by a box hiding its overflow, lines of text drawn over each other
# (each text node's line boxes, so an inline run wrapping round another is not mistaken for an overlap).
REFLOW = """() => {
  const CLOSED = "details:not([open]) > :not(summary)";
  const shown = (el) => { const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none"
      && !el.closest(CLOSED); };
  const name = (el) => el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + String(el.className).trim();
  const clipped = Array.from(document.querySelectorAll("body *")).filter((el) => {
    if (!shown(el)) return false;
    const cs = getComputedStyle(el);
    if (!/hidden|clip/.test(cs.overflowX + cs.overflowY) || !el.textContent.trim()) return false;
    if (el.tagName === "INPUT" || el.tagName === "SELECT") return false;
    const box = el.getBoundingClientRect(), walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.textContent.trim()) continue;
      const range = document.createRange(); range.selectNodeContents(n);
      for (const r of range.getClientRects()) if (r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1
        || r.top < box.top - 1 || r.bottom > box.bottom + 1)) return true;
    }
    return false; }).map(name);
  const lines = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || !shown(el) || el.closest("option, select")) continue;
    const range = document.createRange(); range.selectNodeContents(n);
    for (const r of range.getClientRects()) if (r.width > 0) lines.push({ el: name(el), r });
  }
  const overlaps = [];
  for (let i = 0; i < lines.length; i++) for (let j = i + 1; j < lines.length; j++) {
    const r = lines[i].r, s = lines[j].r;
    const w = Math.min(r.right, s.right) - Math.max(r.left, s.left);
    const h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
    if (w > 2 && h > 4) overlaps.push(lines[i].el + " / " + lines[j].el);
  }
  const wide = lines.filter((l) => l.r.right > innerWidth + 1 || l.r.left < -1).map((l) => l.el);
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth, clipped, overlaps, wide };
}"""

# WeChat's 字体大小 setting (Android's text zoom): every font size scaled, the CSS pixel layout kept.
BIGGER_TEXT = """(k) => { const els = Array.from(document.querySelectorAll("body, body *"));
  const sizes = els.map((el) => parseFloat(getComputedStyle(el).fontSize));
  els.forEach((el, i) => { el.style.fontSize = (sizes[i] * k) + "px"; }); }"""

# WCAG 1.4.12 text spacing: line height 1.5, letter 0.12 em, word 0.16 em, paragraphs 2 em apart.
TEXT_SPACING = """() => { document.querySelectorAll("body, body *").forEach((el) => {
  el.style.lineHeight = "1.5"; el.style.letterSpacing = "0.12em"; el.style.wordSpacing = "0.16em"; });
  document.querySelectorAll("p").forEach((p) => { p.style.marginBottom = "2em"; }); }"""

# Every step of the capture page and every hidden control in it, as one long page (the file inputs stay hidden:
# their buttons open them). The stage shows the longest prompt and a countdown digit.
SHOW_ALL = """(prompt) => {
  document.querySelectorAll("[hidden]").forEach((el) => { if (el.type !== "file") el.hidden = false; });
  const p = document.getElementById("action-text"); if (p) p.textContent = prompt;
  const c = document.getElementById("countdown"); if (c) c.textContent = "3";
}"""


@dataclass
class Site:
    base: str
    ctx: ServiceContext
    results: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("a11y")
    port = free_port()
    with FakeWeChat() as fake:
        settings = wechat_settings(
            fake,
            root,
            database_url=f"sqlite:///{root / 'h5.db'}",
            public_base_url=f"http://127.0.0.1:{port}",
            bureau_phone="027-12345678",
            web_dir=root / "no-web-bundle",
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        results: dict[str, str] = {}
        with ctx.db() as db:
            b = factories.beneficiary(db, ctx.keyring, name="欧阳秀英", valid_until=dt.date(2027, 3, 1))
            for decision in ("accept", "review", "reject"):
                s = decided_session(db, ctx, b, decision)
                if decision == "reject":
                    s.reasons = ["FACE_MISMATCH", "LOW_LIGHT"]
                db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
                results[decision] = s.id
            with_relatives(db, ctx, b)
            db.commit()
        with serve_in_thread(create_app(ctx=ctx), port, log_level="warning"):
            yield Site(f"http://127.0.0.1:{port}", ctx, results)


def with_relatives(db: Session, ctx: ServiceContext, b: Beneficiary) -> None:
    """What the "我的信息" page shows besides the person's data (docs/security.md Part AL): a relative's binding the
    elder may end, and this account's own template as a relative's (another elder's), which it may withdraw."""
    op = operators.login(db, ctx, "wechat", "openid-a11y-relative", "test").operator
    relative = factories.id_number(region="110101", birth=dt.date(1975, 1, 2))
    operators.mark_verified(op, ctx.keyring.id_hash(relative), relative[:4] + "**", "王建国")
    db.flush()
    number = ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
    row = bindings.bind(db, ctx, op, b.name, number, "child")
    assert bindings.record_consent(db, row, ConsentMethod.STAFF_APPROVAL, "staff-007", "test") is None
    mine = operators.login(db, ctx, "wechat", OPENID, operators.H5_CLIENT).operator
    operators.store_template(ctx, mine, np.ones(8, dtype=np.float32), "test-model")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium(*FAKE_CAMERA_ARGS) as b:  # Chromium's test pattern: the capture page's video step
        yield b


def start_page(browser: Browser, site: Site, path: str, viewport: ViewportSize) -> Page:
    """`path` in a fresh context, its load under way: pages started together load (and go quiet) together."""
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.route("https://res.wx.qq.com/**", lambda route: route.abort())  # no network: WeChat's JS-SDK refused
    context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(site.ctx, OPENID), "url": site.base}])
    page = context.new_page()
    page.goto(site.base + path, wait_until="commit")
    return page


def page_ready(page: Page, path: str) -> Page:
    """Loaded and quiet (networkidle: the pages fetch their data after the load), every step and confirmation shown."""
    page.wait_for_load_state("load")
    page.wait_for_load_state("networkidle")
    if path.startswith("/h5/certify"):
        page.evaluate(SHOW_ALL, LONGEST_PROMPT)
    elif path.startswith("/h5/family"):
        page.evaluate(SHOW_ALL, "")
    elif path.endswith("#confirm"):  # every confirmation opened, as a tap on its summary does (my_data.html)
        page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    return page


def open_page(browser: Browser, site: Site, path: str, viewport: ViewportSize) -> Page:
    return page_ready(start_page(browser, site, path, viewport), path)


def pages(site: Site) -> dict[str, str]:
    r = site.results
    return {
        "start": "/h5/",
        "certify": "/h5/certify?mode=self",
        "result-accept": f"/h5/result/{r['accept']}",
        "result-review": f"/h5/result/{r['review']}",
        "result-reject+help": f"/h5/result/{r['reject']}",
        "family": "/h5/family",
        "apply": f"/h5/apply/{r['reject']}",
        "message": "/h5/result/no-such-session",
        "me": "/h5/me",
        "me-confirm": "/h5/me#confirm",
    }


LONGEST_PROMPT = "请录制视频,依次:请眨眨眼,请张张嘴,请向左转头,请向右转头,请点点头"


def rgb(css: str, under: str | None = None) -> str:
    """A computed colour as #rrggbb, an alpha one composited over `under` (itself opaque)."""
    v = [float(x) for x in re.findall(r"[\d.]+", css)]
    a = v[3] if len(v) > 3 else 1.0
    base = [int(under[i : i + 2], 16) for i in (1, 3, 5)] if under else [255, 255, 255]
    return "#" + "".join(f"{round(c * a + b * (1 - a)):02x}" for c, b in zip(v[:3], base, strict=True))


def problems_at_phone_size(m: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for t in m["texts"]:
        fg, bg = rgb(t["color"], rgb(t["bg"])), rgb(t["bg"])
        if t["size"] < MIN_TEXT_PX or (t["main"] and t["size"] < MAIN_TEXT_PX):
            out.append(f"text {t['size']}px: {t['where']} «{t['text']}»")
        if contrast(fg, bg) < AA:
            out.append(f"contrast {contrast(fg, bg):.2f}: {t['where']} «{t['text']}» {fg} on {bg}")
    targets = m["targets"]
    for g in targets:
        if g["w"] < TARGET_PX or g["h"] < TARGET_PX:
            out.append(f"target {g['w']:.0f}×{g['h']:.0f}: {g['where']}")
        if g["btn"] and min(g["w"], g["h"]) < MIIT_BUTTON_PX:  # the page's buttons: MIIT's 60 px
            out.append(f"button {g['w']:.0f}×{g['h']:.0f}: {g['where']}")
    for i, a in enumerate(targets):
        for b in targets[i + 1 :]:
            gap_x = max(b["x"] - (a["x"] + a["w"]), a["x"] - (b["x"] + b["w"]))
            gap_y = max(b["y"] - (a["y"] + a["h"]), a["y"] - (b["y"] + b["h"]))
            if max(gap_x, gap_y) < GAP_PX:
                out.append(f"targets {max(gap_x, gap_y):.0f}px apart: {a['where']} / {b['where']}")
    out += [f"no accessible name: {u}" for u in m["unnamed"]]
    if m["lang"] != "zh-CN":
        out.append(f"lang {m['lang']!r}")
    if re.search(r"user-scalable\s*=\s*(no|0)|maximum-scale\s*=\s*1(\.0*)?\b", m["viewport"]):
        out.append(f"zoom blocked: {m['viewport']}")
    if m["h1"] != 1 and not m["title"]:
        out.append("no title / heading")
    if m["positiveTabindex"]:
        out.append("positive tabindex (focus order)")
    if m["scrollWidth"] > m["innerWidth"]:
        out.append(f"horizontal scrolling {m['scrollWidth']} > {m['innerWidth']}")
    return out


def reflow_problems(r: dict[str, Any]) -> list[str]:
    out = [f"cut off: {c}" for c in r["clipped"]] + [f"overlap: {o}" for o in sorted(set(r["overlaps"]))]
    if r["scrollWidth"] > r["innerWidth"]:
        out.append(f"horizontal scrolling {r['scrollWidth']} > {r['innerWidth']}: {r['wide'][:6]}")
    return out


def test_every_h5_page_at_phone_size_200_percent_zoom_and_large_system_font(site: Site, browser: Browser) -> None:
    """Every page measured three ways; the failures of all pages listed together. Each way on a page of its own,
    the three opened at once (most of a page's opening is the wait for its network to go quiet)."""
    found: dict[str, list[str]] = {}
    for name, path in pages(site).items():
        phone, spaced, zoomed = [start_page(browser, site, path, v) for v in (PHONE_VIEW, PHONE_VIEW, ZOOM_200)]
        page = page_ready(phone, path)
        assert page.locator("h1").count() >= 1, name
        m = page.evaluate(MEASURE)
        assert len(m["texts"]) >= 3, (name, m)  # the measure is not vacuous
        found[name] = problems_at_phone_size(m) + ([] if m["targets"] else ["a dead end: no link or button"])
        page.evaluate(BIGGER_TEXT, 2.0)
        found[name] += ["large font: " + p for p in reflow_problems(page.evaluate(REFLOW))]
        page.context.close()
        page = page_ready(spaced, path)
        page.evaluate(TEXT_SPACING)
        found[name] += ["text spacing: " + p for p in reflow_problems(page.evaluate(REFLOW))]
        page.context.close()
        page = page_ready(zoomed, path)
        found[name] += ["200% zoom: " + p for p in reflow_problems(page.evaluate(REFLOW))]
        page.evaluate("() => document.body.classList.add('elder')")  # elder mode's larger type (elder.py)
        found[name] += ["elder mode at 200% zoom: " + p for p in reflow_problems(page.evaluate(REFLOW))]
        page.context.close()
    bad = [f"{name}: {p}" for name, ps in found.items() for p in ps]
    assert not bad, "\n".join(bad)


def test_the_measure_catches_small_grey_text_small_targets_and_overflow(site: Site, browser: Browser) -> None:
    """The checks are not vacuous: a page made worse on purpose (grey 12-px text, a 30-px button, an unnamed
    button, a box wider than the screen) is caught by each."""
    page = open_page(browser, site, "/h5/", PHONE_VIEW)
    page.evaluate(
        """() => { const p = document.querySelector("main p"); p.style.color = "#999"; p.style.fontSize = "12px";
        const b = document.getElementById("self"); b.style.padding = "0"; b.style.height = "30px";
        const x = document.createElement("button"); document.querySelector("main").appendChild(x);
        const w = document.createElement("p"); w.textContent = "宽"; w.style.width = "600px";
        document.querySelector("main").appendChild(w); }"""
    )
    problems = " | ".join(problems_at_phone_size(page.evaluate(MEASURE)))
    for expected in ("text 12px", "contrast", "target", "no accessible name", "horizontal scrolling"):
        assert expected in problems, (expected, problems)
    page.context.close()


def test_live_regions_labels_and_zoom_in_the_markup(site: Site, browser: Browser) -> None:
    """Screen readers (TalkBack/VoiceOver): the capture prompt is a live region, each step's feedback an alert,
    the upload progress and the file inputs named, the wait a status; zoom allowed; lang zh-CN."""
    page = open_page(browser, site, "/h5/certify?mode=self", PHONE_VIEW)
    assert page.get_attribute("#action-text", "aria-live") in ("assertive", "polite")
    for fid in ("consent-feedback", "confirm-feedback", "card-feedback", "video-feedback", "timeout-feedback"):
        assert page.get_attribute(f"#{fid}", "role") == "alert", fid
    assert page.get_attribute("#upload-progress", "aria-label")
    # The wait (queued, kept, not to film again) is read when its step appears, politely, after the upload.
    assert page.get_attribute("#step-wait .big", "role") == "status"
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    page.context.close()


# The live guidance turns the oval green while all is right (h5-capture.js toggles `.ok` on each analysed frame, up to
# 15 a second): at a threshold it can flip every frame. Toggled here at 15 Hz for 1 s, the border's colour sampled
# every animation frame.
FLICKER = """async () => {
  const oval = document.querySelector(".oval"), samples = [], t0 = performance.now();
  let last = 0;
  await new Promise((done) => { const frame = (now) => {
    if (now - last >= 66) { oval.classList.toggle("ok"); last = now; }
    samples.push(getComputedStyle(oval).borderTopColor);
    if (now - t0 < 1000) requestAnimationFrame(frame); else done(); };
    requestAnimationFrame(frame); });
  return samples;
}"""


def flashes(colours: list[str]) -> float:
    """WCAG 2.3.1's count: pairs of opposing changes in relative luminance of 0.1 or more (of 1.0), halved."""
    lum = [luminance(rgb(c)) for c in colours]
    swings, extreme, direction = 0, lum[0], 0
    for v in lum[1:]:
        step = 1 if v > extreme else -1 if v < extreme else 0
        if step and step != direction and abs(v - extreme) >= 0.1:
            swings, direction, extreme = swings + 1, step, v
        elif step == direction:
            extreme = v
    return swings / 2


def test_the_face_oval_does_not_flash_more_than_three_times_a_second(site: Site, browser: Browser) -> None:
    page = open_page(browser, site, "/h5/certify?mode=self", PHONE_VIEW)
    samples = page.evaluate(FLICKER)
    assert len(samples) >= 20, len(samples)  # the animation frames really ran
    assert len({rgb(c) for c in samples}) >= 2  # and the colour did move
    assert flashes(samples) <= 3, (flashes(samples), samples)
    page.context.close()


def test_the_flash_count_on_known_series() -> None:
    yellow, green = "rgb(255, 212, 0)", "rgb(31, 191, 74)"
    assert flashes([yellow, green] * 8) > 3  # a hard flip every sample
    assert flashes([yellow] * 10 + [green] * 10) == 0.5  # one change, no flash


# The live guidance stood in for by a script that hands its hint callback to the test (the real one needs the
# onnxruntime-web bundle and a face: test_browser_guidance.py); the page's own script (h5*.js) is the real one.
GUIDANCE_STUB = """window.H5Guidance = {
  constraints: function () { return Promise.resolve({ facingMode: "user" }); },
  recorderBits: function () { return Promise.resolve(undefined); },
  start: function (video, cb) { window.a11yGuide = cb; return new Promise(function () {}); } };"""
WATCH_PROMPT = """() => { window.a11yWrites = 0;
  new MutationObserver((list) => { window.a11yWrites += list.length; })
    .observe(document.getElementById("action-text"), { childList: true, characterData: true, subtree: true }); }"""


def test_a_hint_repeated_frame_after_frame_is_not_announced_again(site: Site, browser: Browser) -> None:
    """The guidance calls its hint on every analysed frame (up to 15 a second) and the prompt is an assertive
    live region: rewriting the same words each frame has TalkBack/VoiceOver start “请靠近一点” again and again,
    cutting itself off. Written only when the words change: one change for 15 identical frames."""
    context = browser.new_context(viewport=PHONE_VIEW, locale="zh-CN")
    context.route("https://res.wx.qq.com/**", lambda route: route.abort())
    context.route(
        "**/h5/static/guidance.js?v=*", lambda route: route.fulfill(body=GUIDANCE_STUB, content_type="text/javascript")
    )
    context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(site.ctx, OPENID), "url": site.base}])
    page = context.new_page()
    page.goto(site.base + "/h5/")
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    session = {
        "session_id": "a11y-hints",
        "token": "t",
        "card_kept": True,
        "challenge": {"actions": ["blink"], "nonce": "n", "expires_at": expires},
    }
    page.evaluate("s => sessionStorage.setItem('h5session', s)", json.dumps(session))  # straight to the video step
    page.goto(site.base + "/h5/certify?mode=self")
    page.wait_for_selector("#step-video:not([hidden])")
    deadline = dt.datetime.now() + dt.timedelta(seconds=15)
    while not page.evaluate("() => !!window.a11yGuide"):  # the camera (Chromium's pattern) on, guidance started
        assert dt.datetime.now() < deadline, "guidance never started"
        page.wait_for_timeout(100)
    page.evaluate(WATCH_PROMPT)
    page.evaluate("() => { for (let i = 0; i < 15; i++) window.a11yGuide.hint('closer', '请靠近一点', false); }")
    page.wait_for_timeout(100)  # the observer's records are delivered
    assert page.inner_text("#action-text") == "请靠近一点"
    assert page.evaluate("() => window.a11yWrites") == 1
    context.close()


def test_the_home_visit_is_a_44_px_link_on_the_start_page_and_the_card_step(site: Site, browser: Browser) -> None:
    """Before: the request form was reachable only after a failure (a result, the timeout and limit steps): not from
    the menu's start page, nor from the card step, where a blind user whose card photo keeps failing stays. Both
    now show the help block's link, a target of 44 px or more, to the plain form (it asks for whom)."""
    page = open_page(browser, site, "/h5/", PHONE_VIEW)
    link = page.locator('a.apply-link[href="/h5/apply"]')
    box = link.bounding_box()
    assert link.is_visible() and link.inner_text() == "申请人工审核或上门认证"
    assert box is not None and box["width"] >= TARGET_PX and box["height"] >= TARGET_PX, box
    page.context.close()
    page = page_ready(start_page(browser, site, "/h5/certify?mode=self", PHONE_VIEW), "/h5/")  # steps as the flow shows
    page.check("#consent")
    page.click("#consent-next")
    page.wait_for_selector("#step-card:not([hidden])")
    link = page.locator('#step-card a.apply-link[href="/h5/apply"]')
    box = link.bounding_box()
    assert link.is_visible() and box is not None and min(box["width"], box["height"]) >= TARGET_PX, box
    link.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/h5/apply") and page.locator("form").count() >= 1  # the form itself, for whom asked
    page.context.close()


# Every prompt the page plays, in order, each "played to its end" at once (no sound card, no autoplay here): what
# h5-page.js asks the audio element for (Chromium has no zh-CN speech voice here, so the audio files are used).
PLAYED = """() => { window.played = [];
  HTMLMediaElement.prototype.play = function () { const el = this;
    window.played.push(el.src.split("/h5/audio/")[1]);
    setTimeout(() => el.dispatchEvent(new Event("ended")), 10); return Promise.resolve(); }; }"""


def test_a_failed_result_speaks_its_heading_then_each_reason(site: Site, browser: Browser) -> None:
    """Before: only the heading was spoken (认证未通过…); the reason on screen (人脸与证件照片不一致, 光线太暗…) never
    was, and a person relying on the voice repeated the same mistake. Now the heading, then each reason listed."""
    context = browser.new_context(viewport=PHONE_VIEW, locale="zh-CN")
    context.add_init_script(f"({PLAYED})()")
    context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(site.ctx, OPENID), "url": site.base}])
    page = context.new_page()
    page.goto(f"{site.base}/h5/result/{site.results['reject']}")
    heading = page.get_attribute("#result h1", "data-voice")
    assert heading in ("reject", "limit") and page.inner_text("#reasons") == "人脸与证件照片不一致"
    page.wait_for_function("() => window.played.length >= 2")
    page.wait_for_timeout(200)  # nothing more follows
    assert page.evaluate("() => window.played") == [heading, "reason_face_mismatch"]
    context.close()
