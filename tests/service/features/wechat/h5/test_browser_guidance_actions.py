"""Blink and open mouth confirmed live by the capture page on a real clip that performs them, and found by the
server in the clip the page recorded.

The dev clip `liveportrait_driving_d6.mp4` (a woman filmed frontally, 480×480 at 30 fps, padded to the camera's
4:3 and scaled to 320×240) blinks at 6.9 s and 7.4 s and opens her mouth at 7.1, 7.6, 7.9 and 8.3 s (the server's
mesh signals: eye ratio 0.18-0.20 against an open level of 0.32, mouth ratio 0.40-0.55 against its threshold
0.35), with her mouth closed and eyes open at 6.4 s. Chromium's fake camera plays, in a loop, LEAD_S of that
resting frame then SEGMENT, so that whenever the page starts recording (once the face is steady, after its models
load), each action's watch (3 s, re-prompted once) sees the segment whole. The challenge [blink, open_mouth] is
forced the way the other guided test forces its own (the `challenge_actions` setting); the page must show ✓ for
each in order, then the server, analysing the uploaded clip, must find both (no CHALLENGE_* reason). Skipped where
scripts/web_bundle.sh could not fetch onnxruntime-web. Screenshots: guidance-blink-*.png, guidance-mouth-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page

from pipelines.liveness.challenge import BLINK, OPEN_MOUTH, PROMPTS_ZH
from pipelines.reasons import ReasonCode
from service.certification.models import CertSession
from service.features.wechat.h5 import vendor
from service.infra.config import Settings
from tests.browser import launched_chromium
from tests.service.features.wechat.h5.test_browser_guidance import (
    CAMERA_ARGS,
    SIZE,
    Site,
    decided,
    open_site,
    open_video_step,
    session_with_card,
    shot,
    wait_attr,
    write_y4m,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not vendor.ort_available(Settings().web_dir),
        reason="onnxruntime-web is not in the web cache (scripts/web_bundle.sh needs npm): live guidance is off",
    ),
]

ACTIONS_VIDEO = "videos/liveportrait_driving_d6.mp4"
CHALLENGE = [BLINK, OPEN_MOUTH]
SEGMENT = (6.4, 8.6)  # seconds of the clip: rest, blink, mouth, blink, mouth ×3, mouth closed again
CAMERA_FPS = 30  # a phone camera's rate, and every frame of a blink kept
LEAD_S = 1.5  # the resting frame before the segment in each loop: a steady face to start recording on
CHALLENGE_REASONS = {ReasonCode.CHALLENGE_MISSING_ACTION.value, ReasonCode.CHALLENGE_WRONG_ORDER.value}


# Every text #action-text shows, with the page's clock (ms), kept by the page itself as it changes, from before the
# page's own scripts run (an init script). Installed after the page had loaded, a loaded CI machine once saw the
# page start recording and confirm the blink before the watch began: its first entry was the tick, not the prompt.
WATCH_PROMPTS = """document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("action-text");
  if (!el) { return; }  // another page (the start page, first)
  window.promptsShown = [[performance.now(), el.textContent]];
  new MutationObserver(() => {
    const last = window.promptsShown[window.promptsShown.length - 1][1];
    if (el.textContent !== last) { window.promptsShown.push([performance.now(), el.textContent]); }
  }).observe(el, { childList: true, characterData: true, subtree: true });
});"""


def prompts_shown(page: Page) -> list[tuple[float, str]]:
    return [(float(t), str(text).strip()) for t, text in page.evaluate("() => window.promptsShown")]


def segment_frames(video: Path, start: float, end: float) -> list[np.ndarray]:
    """The clip's frames from `start` to `end` s, padded with grey to 4:3 (a phone camera's frame) at SIZE."""
    frames: list[np.ndarray] = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t + 1e-6 < start:
                continue
            if t > end:
                break
            img = frame.to_ndarray(format="bgr24")
            pad = max(0, (img.shape[0] * 4 // 3 - img.shape[1]) // 2)
            padded = cv2.copyMakeBorder(img, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=(110, 110, 110))
            frames.append(cv2.resize(padded, SIZE, interpolation=cv2.INTER_AREA))
    return frames


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Site]:
    with open_site(tmp_path_factory.mktemp("guidance-actions"), data_dir, ACTIONS_VIDEO, CHALLENGE) as s:
        yield s


@pytest.fixture(scope="module")
def browser(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    frames = segment_frames(data_dir / ACTIONS_VIDEO, *SEGMENT)
    camera = tmp_path_factory.mktemp("camera") / "blink-mouth.y4m"
    y4m = write_y4m([frames[0]] * int(LEAD_S * CAMERA_FPS) + frames, camera, fps=CAMERA_FPS)
    with launched_chromium(*CAMERA_ARGS, f"--use-file-for-fake-video-capture={y4m}") as b:
        yield b


def test_blink_and_open_mouth_are_confirmed_live_and_found_by_the_server(site: Site, browser: Browser) -> None:
    session = session_with_card(site)
    assert session["challenge"]["actions"] == CHALLENGE  # type: ignore[index]
    page = open_video_step(browser, site, session, init_script=WATCH_PROMPTS)
    wait_attr(page, "#app[data-guidance='on']")
    wait_attr(page, "#app[data-record-start]", 60)  # started by itself on the steady resting face
    wait_attr(page, f"#app[data-confirmed='{BLINK}']", 30)
    shot(page, "blink-confirmed")
    wait_attr(page, f"#app[data-confirmed='{BLINK},{OPEN_MOUTH}']", 30)
    shot(page, "mouth-confirmed")
    shown = prompts_shown(page)
    # The page's own record of what it showed, not a sleep against a loaded machine's clock: the tick for the
    # blink, held TAIL_S (the server sees the blink whole), then, and only then, the mouth prompt, then its tick.
    texts = [text for _, text in shown]
    blink, mouth = PROMPTS_ZH[BLINK], PROMPTS_ZH[OPEN_MOUTH]
    assert any(text.endswith(blink) and not text.startswith("✓") for text in texts), texts  # watched from the start
    blink_done = next(i for i, text in enumerate(texts) if text.startswith("✓") and text.endswith(blink))
    mouth_asked = next(i for i, text in enumerate(texts) if text.endswith(mouth) and not text.startswith("✓"))
    mouth_done = next(i for i, text in enumerate(texts) if text.startswith("✓") and text.endswith(mouth))
    assert blink_done + 1 == mouth_asked < mouth_done, texts
    assert shown[mouth_asked][0] - shown[blink_done][0] >= vendor.TAIL_S * 1000 - 50, shown
    session_id = str(session["session_id"])
    decision = decided(site, page, session_id)
    shot(page, f"blink-mouth-result-{decision}")
    with site.ctx.db() as db:
        stored = db.get(CertSession, session_id)
        assert stored is not None
        # The server, on the clip the page recorded and cut, found both actions in order.
        assert not CHALLENGE_REASONS & set(stored.reasons), stored.reasons
