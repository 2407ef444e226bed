"""A guided take interrupted (the page hidden by a call) is guided again: Debian's Chromium with a still face as
its camera (steady: the recording starts by itself), against the real app. Before, the page's "recording
started" flag outlived the take, so guidance never came back on a second camera start (nor after the timeout
screen's “继续认证”); and onnxruntime-web would have been loaded a second time. Skipped where
scripts/web_bundle.sh could not fetch onnxruntime-web (no npm), as test_browser_guidance.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.features.wechat.h5 import vendor
from service.infra.config import Settings
from tests.browser import launched_chromium
from tests.service.features.wechat.h5.browser_flow import wait_until
from tests.service.features.wechat.h5.test_browser_capture_interrupted import HIDE
from tests.service.features.wechat.h5.test_browser_guidance import (
    CAMERA_ARGS,
    FPS,
    clip_frames,
    fake_session,
    open_site,
    open_video_step,
    write_y4m,
)
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not vendor.ort_available(Settings().web_dir),
        reason="onnxruntime-web is not in the web cache (scripts/web_bundle.sh needs npm): live guidance is off",
    ),
]

ORT_SCRIPTS = "() => document.querySelectorAll('script[src*=\"ort.\"]').length"


def test_an_interrupted_guided_take_is_guided_again(data_dir: Path, tmp_path: Path) -> None:
    still = clip_frames(data_dir / LIVE_VIDEO)[0]
    y4m = write_y4m([still] * (2 * FPS), tmp_path / "still.y4m")
    with (
        open_site(tmp_path, data_dir, LIVE_VIDEO, list(LIVE_ACTIONS)) as site,
        launched_chromium(*CAMERA_ARGS, f"--use-file-for-fake-video-capture={y4m}") as browser,
    ):
        page = open_video_step(browser, site, fake_session())
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.wait_for_selector("#app[data-record-start]", state="attached", timeout=90_000)
        first = page.get_attribute("#app", "data-record-start")
        page.evaluate(HIDE, True)
        page.wait_for_timeout(1000)
        page.evaluate(HIDE, False)
        assert "打断" in page.inner_text("#video-feedback")

        def again() -> bool:
            return page.get_attribute("#app", "data-record-start") not in (None, first)

        wait_until(page, again, 60, "the guided recording started again by itself")
        assert page.evaluate(ORT_SCRIPTS) == 1  # the runtime loaded once
        assert errors == []
