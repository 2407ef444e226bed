"""The capture page's screen-light timing on a virtual clock (docs/wechat.md, "The screen-light challenge"): the real
h5-capture.js under node, with test_action_window.py's stand-ins for the browser, and a recorder whose `start` event
comes 400 ms after `start()` is called (a slow phone). Each colour must show `start_ms + i x step_ms` after that
event, exactly (the analysis looks for the response at those times of the video, timed from its first frame); the
screen returns to normal after the last; a guided take whose actions are confirmed at once is not cut before
`record_after_ms` (as the server serves it: the analysis' pad_s) past the last colour. The browser test
(test_browser_light.py) checks the same on Chromium's real timers, with slack."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from models.store import ModelStore
from pipelines.liveness import issue_light_sequence
from pipelines.liveness.light_response import LightRules
from service.features.wechat.h5 import vendor
from tests.service.features.wechat.h5.test_action_window import TAKE, capture_code

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the page's script")
START_EVENT_MS = 400  # from MediaRecorder.start() to its start event

# test_action_window's harness, with: elements that have a style, a page body, the recorder's late start event, the
# session's light sequence, and every change of the light (data-light, the layer's colour) logged at the virtual time.
LIGHT_TAKE = (
    TAKE.replace('id, textContent: "", hidden: false,', 'id, textContent: "", hidden: true, style: {},')
    .replace(
        'start() { this.state = "recording"; this.startedAt = now; }',
        'start() { this.state = "recording"; this.startedAt = now;'
        f" addTimer(() => {{ this.eventAt = now; this.onstart(); }}, {START_EVENT_MS}, false); }}",
    )
    .replace(
        "document: { hidden: false,",
        "document: { body: { classList: { add() {}, remove() {} } }, hidden: false,",
    )
    .replace(
        "session: () => ({ challenge: { actions: input.actions } })",
        "session: () => ({ challenge: { actions: input.actions, light: input.light } })",
    )
    .replace(
        "    t.fn();\n",
        "    t.fn();\n"
        '    const shown = [$("app").dataset.light || "", $("light").style.backgroundColor || ""];\n'
        "    if (shown.join() !== lastShown) { lightLog.push([now, ...shown]); lastShown = shown.join(); }\n",
    )
    .replace("let rec = null,", 'const lightLog = []; let lastShown = ","; let rec = null,')
    .replace("uploaded,\n", "uploaded, lightLog, event: rec && rec.eventAt,\n")
)


def light_take(mode: str, actions: list[str], light: dict[str, Any] | None, tmp_path: Path) -> dict[str, Any]:
    config = vendor.guidance_config(ModelStore(), tmp_path)
    given = {"code": capture_code(), "config": config, "actions": actions, "mode": mode, "light": light}
    done = subprocess.run(
        ["node", "-e", LIGHT_TAKE], input=json.dumps(given), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["stop"] is not None and out["uploaded"], out
    return out


def test_the_harness_is_the_action_windows_one_with_the_light_added() -> None:
    """Every replacement above took (a changed h5 test harness must not leave this one testing nothing)."""
    assert LIGHT_TAKE.count("onstart()") == 1 and "lightLog.push" in LIGHT_TAKE and "input.light" in LIGHT_TAKE
    assert "style: {}" in LIGHT_TAKE and "body: { classList" in LIGHT_TAKE and "event: rec" in LIGHT_TAKE


def test_each_colour_shows_at_its_time_after_the_recorders_start_event(tmp_path: Path) -> None:
    light = issue_light_sequence().to_dict()
    out = light_take("tap", ["turn_left", "nod"], light, tmp_path)
    event = out["event"]
    assert event == out["start"] + START_EVENT_MS  # the recorder's event, not the call, starts the clock
    n = len(light["colours"])
    expected = [
        [
            event + light["start_ms"] + i * light["step_ms"],
            light["colours"][i],
            "rgb({}, {}, {})".format(*light["rgb"][i]),
        ]
        for i in range(n)
    ]
    expected.append([event + light["start_ms"] + n * light["step_ms"], "", ""])  # back to normal
    assert out["lightLog"] == expected
    assert out["stop"] >= expected[-1][0]


AFTER_MS = round(LightRules.load().pad_s * 1000)  # the server's record_after_ms (sessions.light_challenge)


@pytest.mark.parametrize(
    ("after", "recorded_after"),
    [(AFTER_MS, AFTER_MS), (None, 0), (-50, 0), ("x", 0), (60_000, 3000)],
    ids=["served", "older-server", "negative", "not-a-number", "capped"],
)
def test_a_guided_take_that_ends_sooner_waits_past_the_last_colour(
    tmp_path: Path, after: object, recorded_after: int
) -> None:
    """A guided take of one action (the harness's slowest person: seen on the re-prompt, about 7 s) under a sequence
    of 2 s a colour (12.5 s): the recording is stopped `record_after_ms` after the last colour ends, not when the
    action was seen. Found by review: it stopped when the last colour ended on the page's clock, and a camera that
    shows a colour a little after the page paints it could end the take inside the last step, with none of the
    frames after the sequence that the analysis' drift fit reads. A value the page cannot use is taken as 0, and
    over 3 s as 3 s."""
    light: dict[str, Any] = {**issue_light_sequence().to_dict(), "step_ms": 2000}
    if after is not None:
        light["record_after_ms"] = after
    out = light_take("guided", ["turn_left"], light, tmp_path)
    end = out["event"] + light["start_ms"] + len(light["colours"]) * light["step_ms"]
    assert out["confirmed"] == "turn_left"  # the action was seen, well before the end
    assert out["lightLog"][-1] == [end, "", ""]
    assert out["stop"] == end + recorded_after


def test_no_light_no_change(tmp_path: Path) -> None:
    out = light_take("tap", ["turn_left"], None, tmp_path)
    assert out["lightLog"] == []


@pytest.mark.parametrize("step_ms", [100, 399])
def test_a_sequence_faster_than_the_flash_limit_is_not_shown(tmp_path: Path, step_ms: int) -> None:
    light = {**issue_light_sequence().to_dict(), "step_ms": step_ms}
    out = light_take("tap", ["turn_left"], light, tmp_path)
    assert out["lightLog"] == []
