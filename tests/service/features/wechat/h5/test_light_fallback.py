"""The capture page where it cannot record (docs/wechat.md, "The screen-light challenge"): no MediaRecorder, or the
camera permission refused. Its fallback is the phone's own camera app (the file input), which shows none of the
screen's colours. Before, the page still showed and spoke the colour line there, and under LIGHT_CHALLENGE enforce
offered the camera app all the same: every such video was rejected LIGHT_NOT_SEEN (a counted failure whose retake
advice could never work) and nothing said what to do. Now the line is not shown nor spoken in the fallback, and
under enforce (`challenge.light.enforced`) the camera app is not offered: the help path is, with why. The real
h5-capture.js under node, as test_light_timing.py runs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from pipelines.liveness import issue_light_sequence
from tests.service.features.wechat.h5.conftest import PHONE, App
from tests.service.features.wechat.h5.test_action_window import capture_code

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the page's script")

# The page's elements (hidden, as certify.html starts them), a browser that cannot record in the page (`no-recorder`)
# or refuses the camera (`refused`), the session's challenge; enter() the video step, then report what shows.
FALLBACK = r"""
const vm = require("vm");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const els = {}, spoken = [], said = {};
const $ = (id) => els[id] || (els[id] = { id, textContent: "", hidden: true, href: "", dataset: {}, style: {},
                                           classList: { toggle() {} } });
// `refused-once`: the permission refused, then allowed on 重新打开摄像头 (tapped once the refusal shows)
const refused = input.browser === "refused", once = input.browser === "refused-once";
let asked = 0;
const ctx = {
  H5: { $, say(id, t) { said[id] = t; }, speak(k) { spoken.push(...[].concat(k)); }, rid: () => "rid" },
  document: { hidden: false, body: { classList: { add() {}, remove() {} } }, addEventListener() {},
              removeEventListener() {}, querySelector: () => null },
  navigator: { mediaDevices: { getUserMedia: () => (refused || (once && ++asked === 1))
    ? Promise.reject({ name: "NotAllowedError" })
    : Promise.resolve({ getVideoTracks: () => [], getTracks: () => [] }) } },
  MediaRecorder: refused || once ? function () {} : undefined,
  setTimeout, setInterval, clearTimeout, clearInterval, Date, Promise,
  matchMedia: () => ({ matches: true }), addEventListener() {}, innerHeight: 800, innerWidth: 400,
};
ctx.window = ctx;
vm.createContext(ctx);
vm.runInContext(input.code, ctx);
const challenge = { actions: ["turn_left", "nod"], light: input.light };
const flow = { app: $("app"), prompts: { turn_left: "向左转头", nod: "点点头" },
               session: () => ({ session_id: "s-1", challenge }) };
$("app").dataset.mode = input.mode || "self";
if (input.phone) { $("light-call").href = "tel:" + input.phone; }  // certify.html renders it with a bureau phone
ctx.H5.capture(flow).enter();
if (once) { setTimeout(() => $("camera-retry").onclick(), 20); }
setTimeout(() => process.stdout.write(JSON.stringify({
  light_note: !$("light-note").hidden, camera_app: !$("video-fallback").hidden, help: !$("light-help").hidden,
  apply: $("light-apply").href, retry: !$("camera-retry").hidden, record: !$("record").hidden,
  prompt: $("action-text").textContent, feedback: said["video-feedback"] || "", spoken,
})), 80);
"""
BROWSERS = ["no-recorder", "refused"]


def fallback(browser: str, light: dict[str, Any] | None, mode: str = "self", phone: str = "") -> dict[str, Any]:
    given = {"code": capture_code(), "browser": browser, "light": light, "mode": mode, "phone": phone}
    done = subprocess.run(
        ["node", "-e", FALLBACK], input=json.dumps(given), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _light(enforced: bool) -> dict[str, Any]:
    return {**issue_light_sequence().to_dict(), "enforced": enforced}


@needs_node
@pytest.mark.parametrize("browser", BROWSERS)
def test_under_enforce_the_fallback_offers_the_help_path_not_the_camera_app(browser: str) -> None:
    out = fallback(browser, _light(enforced=True))
    assert not out["camera_app"] and out["help"] and out["apply"] == "/h5/apply/s-1", out
    assert "无法在此页面录像" in out["prompt"] and "申请上门认证" in out["prompt"], out
    assert not out["light_note"] and not out["record"], out
    # Where the page knows at once it cannot record, the line is not spoken either; a refusal comes after it was.
    assert ("light" in out["spoken"]) is (browser == "refused"), out
    # Refused: "重新打开摄像头" stays (allowing the camera is the way back to recording in the page).
    assert out["retry"] is (browser == "refused") and ("没有打开摄像头的权限" in out["feedback"]) is out["retry"], out


@needs_node
@pytest.mark.parametrize("browser", BROWSERS)
def test_in_observe_mode_the_fallback_keeps_the_camera_app_without_the_colour_line(browser: str) -> None:
    out = fallback(browser, _light(enforced=False))
    assert out["camera_app"] and not out["help"] and out["prompt"].startswith("请录制视频,依次:"), out
    assert not out["light_note"] and ("light" in out["spoken"]) is (browser == "refused"), out


@needs_node
def test_without_a_sequence_the_fallback_is_as_before() -> None:
    out = fallback("no-recorder", None)
    assert out["camera_app"] and not out["help"] and not out["light_note"] and out["spoken"] == [], out


def test_the_capture_page_carries_the_help_path_the_fallback_shows(app: App) -> None:
    """certify.html: hidden until fallback() shows it; the request form for a person's pension, not for a relative's
    own real-name check (nobody's pension: the form refuses it, as help.html leaves it out); the bureau's phone."""
    own = app.client.get("/h5/certify?mode=self").text
    block = re.search(r'<div id="light-help" hidden>(.*?)</div>', own, re.S)
    assert block is not None and 'id="light-apply" href="/h5/apply">申请上门认证</a>' in block.group(1)
    assert f'href="tel:{PHONE}"' in block.group(1)
    verify = re.search(r'<div id="light-help" hidden>(.*?)</div>', app.client.get("/h5/certify?mode=verify").text, re.S)
    assert verify is not None and "light-apply" not in verify.group(1)


@needs_node
@pytest.mark.parametrize("browser", BROWSERS)
def test_under_enforce_the_help_sends_to_a_home_visit_not_a_manual_review(browser: str) -> None:
    """Before: "请申请人工审核或上门认证": a session with no video, for which a manual review has nothing to watch
    (docs/security.md Part DP; the form offers only the home visit then: test_assist_requests.py)."""
    out = fallback(browser, _light(enforced=True))
    assert "人工审核" not in out["prompt"] and "上门认证" in out["prompt"] and "社保经办窗口" in out["prompt"], out


@needs_node
@pytest.mark.parametrize("phone", ["", PHONE], ids=["no-phone", "phone"])
def test_a_relatives_own_check_is_told_another_phone_or_the_counter(phone: str) -> None:
    """mode=verify: certify.html shows no request link (the form refuses a verification session). Before, the text
    was the same for every mode (申请人工审核或上门认证) and, with no bureau phone, #light-help was empty."""
    out = fallback("no-recorder", _light(enforced=True), mode="verify", phone=phone)
    assert out["help"] and "人工审核" not in out["prompt"] and "上门" not in out["prompt"], out
    assert "换一部" in out["prompt"] and "社保经办窗口" in out["prompt"], out
    assert ("拨打" in out["prompt"]) is bool(phone), out


@needs_node
@pytest.mark.parametrize("enforced", [True, False], ids=["enforce", "observe"])
def test_the_fallback_text_goes_once_the_camera_is_allowed(enforced: bool) -> None:
    """Refused, then allowed on 重新打开摄像头: before, the instruction still read the fallback's (under enforce:
    cannot record here, apply for staff's help) beside the 开始录制 button."""
    out = fallback("refused-once", _light(enforced=enforced))
    assert out["record"] and not out["help"] and not out["camera_app"], out
    assert out["prompt"] == "请把脸放进椭圆框内", out
