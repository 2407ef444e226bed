"""Live face guidance of the H5 capture page, measured in this machine's Chromium (Debian's, headless).

    python bench/h5_guidance.py --out bench/results/h5_guidance.json

The capture page (real app, fake WeChat login) sees the dev clip that performs the demo challenge through
Chromium's fake camera, after a few seconds of its first frame, at each size of CAMERA_SIZES: 640×480 (the size
the page asks for, guidance.json `capture`; the dev clip's own) and 320×240 (what the browser tests use). Per size,
twice:
- guided: onnxruntime-web runs the detector in the page; recording starts once the face is steady and is cut
  when the last action is confirmed (or given up after its re-prompt);
- fixed (the fallback, today's flow): the runtime's URLs are blocked; tap, countdown, 3 s per action.
Reports the per-frame cost of the in-page models (session.run: the detector while framing, the face mesh while
recording) and of the whole frame (draw, pixels, model, decoding), median and p95, and per flow the uploaded
clip (recorded at the page's bitrate, guidance.json): bytes, seconds, frames, and the time to decode it (PyAV,
the server's first step of every analysis) and the server's liveness check of it (decision, CPU seconds). The
upload is captured in the browser and answered there: no session is processed by the app. Needs
scripts/web_bundle.sh to have fetched onnxruntime-web. The sections of bench/h5_capture_size.py in the same JSON
(camera size, recorder bitrate) are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import service.schema
from bench.common import REPO, data_dir, machine, summary
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.features.wechat.h5 import vendor
from service.infra.config import Settings
from tests.browser import launched_chromium, serve_in_thread
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.h5.test_browser_guidance import (
    CAMERA_ARGS,
    FPS,
    LEAD_S,
    clip_frames,
    fake_session,
    open_video_step,
    write_y4m,
)
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO
from tests.service.servers import free_port

# The camera sizes measured: the page's request (guidance.json) first, then the browser tests' size.
CAMERA_SIZES = (vendor.CAPTURE_SIZE, (320, 240))
# What bench/h5_capture_size.py writes into the same JSON.
KEPT_SECTIONS = ("capture_resolution", "recorder_bitrate")
# The page's Guide (guidance.js): model and whole-frame milliseconds of every frame it analysed.
READ_TIMINGS = (
    "() => { const g = window.H5Guidance.active; "
    "return g ? [g.timings, g.frameTimings, g.meshTimings, document.getElementById('app').dataset.confirmed] : null; }"
)


def video_part(body: bytes, content_type: str) -> bytes:
    """The file part of the page's multipart upload."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    for part in body.split(b"--" + boundary):
        head, _, data = part.partition(b"\r\n\r\n")
        if b"filename=" in head:
            return data[: -len(b"\r\n")] if data.endswith(b"\r\n") else data
    raise ValueError("no file in the upload")


def clip_stats(data: bytes, folder: Path, name: str) -> dict[str, Any]:
    path = folder / f"{name}.webm"
    path.write_bytes(data)
    t0 = time.perf_counter()
    frames, last_t, size = 0, 0.0, (0, 0)
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            frames += 1
            last_t = float(frame.time or last_t)
            size = (frame.width, frame.height)
    decode_ms = round((time.perf_counter() - t0) * 1000, 1)
    return {
        "bytes": len(data),
        "seconds": round(last_t, 2),
        "frames": frames,
        "resolution": list(size),
        "decode_ms": decode_ms,
        "server_liveness": server_check(path),
    }


def server_check(path: Path) -> dict[str, Any]:
    """The server's liveness check of the clip (`pension-cert liveness`, its own process): the decision and
    the CPU it cost, model loading included (the same in both flows)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "service.adapters.cli", "liveness", str(path), "--challenge", ",".join(LIVE_ACTIONS)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(out.stdout) if out.returncode in (0, 1) and out.stdout.strip() else {}
    return {
        "passed": report.get("passed"),
        "reasons": report.get("reasons"),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
    }


def run_flow(
    browser: Any, base: str, ctx: ServiceContext, guided: bool, signals: Path | None = None
) -> tuple[bytes, list[Any] | None]:
    """One recording through the page; returns the uploaded clip and (guided) the page's timings."""
    uploads: list[tuple[Any, bytes]] = []

    def capture(route: Any) -> None:
        req = route.request
        uploads.append((route, video_part(req.post_data_buffer, req.headers["content-type"])))

    page = open_video_step(browser, (base, ctx), fake_session(), None if guided else (lambda route: route.abort()))
    page.route("**/api/v1/sessions/*/video", capture)
    if not guided:
        page.wait_for_selector("#app[data-guidance='off']", state="attached", timeout=60_000)
        page.click("#record")
    deadline = time.monotonic() + 120
    while not uploads:
        if time.monotonic() > deadline:
            raise TimeoutError("no upload")
        page.wait_for_timeout(200)
    timings = page.evaluate(READ_TIMINGS) if guided else None
    if guided and signals is not None:  # what the page measured on each frame while recording
        signals.write_text(json.dumps(page.evaluate("() => window.H5Guidance.active.signals()")))
    route, clip = uploads[0]
    route.fulfill(status=503, body="{}")  # the page keeps the recording and offers a retry: nothing processed
    page.context.close()
    return clip, timings


def measure(browser: Any, base: str, ctx: ServiceContext, signals: Path | None) -> dict[str, Any]:
    """Both flows through one camera: the page's per-frame costs (guided) and both uploaded clips."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        load = os.getloadavg()[0]  # the box is shared: how busy it was when this size was measured
        guided, timings = run_flow(browser, base, ctx, guided=True, signals=signals)
        fixed, _ = run_flow(browser, base, ctx, guided=False)
        model_ms, frame_ms, mesh_ms, confirmed = timings or ([], [], [], None)
        return {
            "loadavg_1m_at_start": round(load, 2),
            # The first run includes WASM warm-up: left out of the summaries.
            "detector_ms_per_frame": summary(model_ms[1:]),
            "mesh_ms_per_frame_while_recording": summary(mesh_ms[1:]),
            "frame_ms_per_frame": summary(frame_ms[1:]),
            "confirmed_live": (confirmed or "").split(","),
            "clip": {
                "guided_cut_at_last_action": clip_stats(guided, root, "guided"),
                "fixed_time": clip_stats(fixed, root, "fixed"),
            },
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "h5_guidance.json")
    ap.add_argument("--signals", type=Path, help="write the page's per-frame signals while recording (JSON), per size")
    args = ap.parse_args()
    if not vendor.ort_available(Settings().web_dir):
        print("onnxruntime-web is not in the web cache: run scripts/web_bundle.sh (needs npm)", file=sys.stderr)
        return 2
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeWeChat() as fake:
        root = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = wechat_settings(
            fake,
            root,
            database_url=f"sqlite:///{root / 'h5.db'}",
            public_base_url=base,
            worker_mode="none",
            challenge_actions=list(LIVE_ACTIONS),
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with serve_in_thread(create_app(ctx=ctx), port, log_level="warning"):
            for size in CAMERA_SIZES:
                name = f"{size[0]}x{size[1]}"
                frames = clip_frames(data_dir() / LIVE_VIDEO, size)
                y4m = write_y4m([frames[0]] * int(LEAD_S * FPS) + frames, root / f"clip-{name}.y4m")
                signals = args.signals.with_suffix(f".{name}.json") if args.signals else None
                with launched_chromium(*CAMERA_ARGS, f"--use-file-for-fake-video-capture={y4m}") as browser:
                    runs[name] = measure(browser, base, ctx, signals)
                y4m.unlink()
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    result = {
        "bench": "h5_guidance",
        "machine": machine(),
        "onnxruntime_web": vendor.ORT_VERSION,
        "model": {"name": vendor.GUIDANCE_MODEL, "input": list(vendor.GUIDANCE_INPUT)},
        "camera": {"source": LIVE_VIDEO, "fps": FPS, "actions": list(LIVE_ACTIONS)},
        "page_asks": list(vendor.CAPTURE_SIZE),
        "recorder_bits_per_second": vendor.RECORDER_BITS_PER_SECOND,
        "by_camera_size": runs,
        **{k: previous[k] for k in KEPT_SECTIONS if k in previous},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in KEPT_SECTIONS}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
