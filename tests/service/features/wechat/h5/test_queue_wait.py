"""The wait in the campaign's first morning (集中认证), when the queue holds more videos than the workers take in a
minute. The pages promised "通常一分钟内完成" for as long as the video waited: an elder still waiting after
several minutes took it for a failure and filmed again (a new session, more load, and the daily attempts spent)
or gave up. They now say the video is queued and kept, that it may take some minutes at busy times, not to film
again, and that the result comes as a message, on the capture page's wait and on the result page alike; the
capture page's polling slows down while the video waits (1.5 s, then 5 s, then 10 s: h5-upload.js `pollDelay`).
The spoken prompt says the essentials too, and a screen reader reads the wait when the step appears."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from service.certification.models import SessionState
from service.features.wechat.h5.voice import PROMPTS
from tests.service.features.wechat.h5.conftest import App
from tests.service.features.wechat.h5.test_recovery import finished

# The upload and the polling of the capture page (its script in parts: static/h5-*.js, h5.js).
H5_JS = Path(__file__).parents[5] / "service" / "features" / "wechat" / "h5" / "static" / "h5-upload.js"
SAYS = ("排队", "几分钟", "请勿重新", "公众号消息通知")


def _wait_text(html: str, section: str) -> str:
    m = re.search(section, html, re.S)
    assert m is not None, section
    return re.sub(r"<[^>]+>", "", m.group(0))


def test_the_capture_pages_wait_says_queued_kept_and_not_to_film_again(app: App) -> None:
    page = app.client.get("/h5/certify?mode=self")
    assert page.status_code == 200
    text = _wait_text(page.text, r'<section class="card step" id="step-wait".*?</section>')
    assert all(word in text for word in SAYS), text
    assert "一分钟内完成" not in text


def test_the_result_page_of_a_queued_video_says_the_same(app: App) -> None:
    sid = finished(app, decision=None, reasons=(), state=SessionState.QUEUED)
    page = app.client.get(f"/h5/result/{sid}")
    assert page.status_code == 200
    text = _wait_text(page.text, r'<section class="card result".*?</section>')
    assert all(word in text for word in SAYS), text
    assert "一分钟内完成" not in text


def test_the_wait_is_read_out_when_the_step_appears_and_spoken_in_short(app: App) -> None:
    """Older users who rely on the spoken prompt heard only "正在核验,请稍候。"; a screen reader said nothing of the
    new text. The prompt (short: espeak-ng speaks it in about 10 s) now says the video is kept and queued, not to
    film again and that the result comes as a message; the wait's text is a polite live region."""
    spoken = PROMPTS["wait"]
    assert all(word in spoken for word in ("保存", "排队", "不用重拍", "消息")), spoken
    page = app.client.get("/h5/certify?mode=self")
    section = re.search(r'<section class="card step" id="step-wait".*?</section>', page.text, re.S)
    assert section is not None
    status = re.search(r'<p [^>]*role="status"[^>]*>(.*?)</p>', section.group(0), re.S)
    assert status is not None, section.group(0)
    assert all(word in status.group(1) for word in SAYS), status.group(1)


# The real `poll` of h5-upload.js, run under node against a session that stays queued (or a server that keeps failing):
# a stand-in `setTimeout` records each delay and the virtual time it was asked at, then calls the next poll.
POLL_CODE = re.compile(r"\n( *var polls = 0;\n.*?)\n *function finish\(", re.S)
RUN_POLLS = """
async function run(mode) {
  let now = 0, next = null;
  const delays = [];
  const flow = { session: () => ({ session_id: "s-1", token: "t-1" }) };
  const setTimeout = (fn, ms) => { delays.push([now, ms]); now += ms; next = fn; };
  const send = () => mode === "queued"
    ? Promise.resolve({ responseText: '{"state": "queued"}' }) : Promise.reject({ status: 503 });
  const finish = () => { throw new Error("finished"); };
  CODE
  next = poll;
  while (now < 600000) {
    const f = next; next = null; f();
    await new Promise((done) => setImmediate(done));
    if (next === null) { throw new Error("no next poll"); }
  }
  return delays;
}
(async () => process.stdout.write(JSON.stringify({ queued: await run("queued"), error: await run("error") })))();
"""


def _poll_delays(source: str) -> dict[str, list[tuple[int, int]]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: h5-upload.js's polling cannot be run (Debian: apt-get install nodejs)")
    code = POLL_CODE.search(source)
    assert code is not None, "h5-upload.js: the polling block (var polls … function finish) not found"
    script = RUN_POLLS.replace("CODE", code.group(1))
    out = subprocess.run([node, "-"], input=script, capture_output=True, text=True, timeout=30, check=True)
    delays: dict[str, list[tuple[int, int]]] = json.loads(out.stdout)
    return delays


def _check_backoff(delays: dict[str, list[tuple[int, int]]]) -> None:
    """1.5 s for the first 20 s, 5 s from 20 s to 2 min, 10 s after (virtual time: the requests' own time aside);
    after an error never below 3 s, and backing off too (counted in polls: a failing server slows it down further)."""
    for t, ms in delays["queued"]:
        expected = 1500 if t < 19_000 else 5000 if 20_000 <= t < 115_000 else 10_000 if t >= 125_000 else ms
        assert ms == expected, (t, ms)
    for t, ms in delays["error"]:
        assert ms >= 3000, (t, ms)
        assert t < 150_000 or ms == 10_000, (t, ms)


def test_the_capture_page_polls_less_often_the_longer_it_waits() -> None:
    delays = _poll_delays(H5_JS.read_text(encoding="utf-8"))
    assert len(delays["queued"]) > 60 and delays["queued"][-1][0] >= 590_000  # ten minutes of a queued video
    _check_backoff(delays)


def test_the_backoff_check_catches_a_fixed_delay_and_a_fast_retry() -> None:
    source = H5_JS.read_text(encoding="utf-8")
    fixed = re.sub(r"function pollDelay\(n\) \{.*?\}\n", "function pollDelay(n) { return 1500; }\n", source)
    assert fixed != source
    with pytest.raises(AssertionError):
        _check_backoff(_poll_delays(fixed))
    fast_retry = source.replace("Math.max(3000, pollDelay(++polls))", "pollDelay(++polls)")
    assert fast_retry != source
    with pytest.raises(AssertionError):
        _check_backoff(_poll_delays(fast_retry))
