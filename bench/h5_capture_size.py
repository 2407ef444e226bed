"""The capture page's camera size and recorder bitrate, measured: clip bytes, the server's decode cost and the
server's analysis of each clip (passive anti-spoofing score, actions found).

    python bench/h5_capture_size.py --out bench/results/h5_guidance.json

Companion of bench/h5_guidance.py (its JSON gets `capture_resolution` and `recorder_bitrate` sections; the rest is
kept). This machine's Chromium films the 640×480 dev clip through its fake camera and records RECORD_S seconds
(the whole clip: three turns, a nod, blinks) with MediaRecorder as the page does (video/webm):
- `capture_resolution`:
  - `old_request`: a camera that offers 1280×960 (the dev clip scaled up: a phone front camera's 4:3 HD mode), the
    page's old request `{facingMode: "user"}` and no bitrate: the browser hands over the camera's size and picks
    its own bitrate;
  - `new_request`: the page's request now, `H5Guidance.constraints()` (guidance.json: the server's analysis size)
    and `H5Guidance.recorderBits()` (guidance.json: `vendor.RECORDER_BITS_PER_SECOND`), to a camera that offers
    640×480 as well (every phone camera does; the fake one offers one size only);
  - `new_request_hd_only_camera`: the same request to the 1280×960-only fake camera: Chromium reports a 640×480
    track but its MediaRecorder still encodes the camera's frames; for the record.
- `recorder_bitrate`: the page's 640×480 request, recorded REPEATS times with the browser's own bitrate
  (`default`: the page before it set one) and with each bitrate of BITRATES (the page's marked `page`).
Per clip: the track's size, the encoded frames' size, bytes, the server's intake of it
(pipelines/liveness/video.py): the upload probe and the full sampled decode of the liveness stage (`decode_all`),
median of DECODE_RUNS, in milliseconds; and the server's liveness check of it (LivenessChecker, the demo
challenge; the duplicate-video check off: every clip films the same file): verdict, passive score (and its
lowest key frame), the lowest identity similarity between its key frames, the challenge's actions and every
action event found. The scaled-up camera has less fine
detail than a real HD one: the old request's bytes are a lower bound.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import service.schema
from bench.common import REPO, data_dir, machine
from pipelines.liveness.checker import LivenessChecker, LivenessConfig
from pipelines.liveness.video import decode_all, probe_video
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity, vendor
from tests.browser import launched_chromium, serve_in_thread
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.h5.test_browser_guidance import CAMERA_ARGS, FPS, OPENID
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO
from tests.service.servers import free_port

CAMERA = (1280, 960)
RECORD_S = 11.5
DECODE_RUNS = 3
# Bitrates tried on the page's 640×480 request (bits/s), besides the browser's own; the page's is added. Each is
# recorded REPEATS times (on a quiet box two recordings came out byte-identical; under load frames drop and the
# key frames the server picks, and their scores, differ).
BITRATES = (1_500_000, 1_000_000, 800_000, 600_000, 400_000, 250_000)
REPEATS = 1
# Records `ms` of the camera as h5.js does; returns the track's size and the clip (base64). `constraints` and
# `bits` "page": what the page asks (H5Guidance); bits null: the browser's own bitrate.
RECORD = """async ([constraints, bits, ms]) => {
  const video = constraints === "page" ? await window.H5Guidance.constraints() : constraints;
  const rate = bits === "page" ? await window.H5Guidance.recorderBits() : bits;
  const stream = await navigator.mediaDevices.getUserMedia({ video: video, audio: false });
  const s = stream.getVideoTracks()[0].getSettings();
  const opts = { mimeType: "video/webm" };
  if (rate) { opts.videoBitsPerSecond = rate; }
  const rec = new MediaRecorder(stream, opts), chunks = [];
  rec.ondataavailable = (e) => chunks.push(e.data);
  rec.start();
  await new Promise((r) => setTimeout(r, ms));
  await new Promise((r) => { rec.onstop = r; rec.stop(); });
  stream.getTracks().forEach((t) => t.stop());
  const url = await new Promise((r) => {
    const f = new FileReader(); f.onload = () => r(f.result); f.readAsDataURL(new Blob(chunks));
  });
  return { size: [s.width, s.height], data: url.split(",")[1] };
}"""
OLD_REQUEST = {"facingMode": "user"}
PAGE = "page"  # RECORD asks the page's own H5Guidance.constraints() / recorderBits()
# name → (getUserMedia video constraints, recorder bitrate)
Request = tuple[Any, Any]


def native_frames(video: Path, seconds: float) -> list[np.ndarray]:
    """The dev clip at its own size (640×480), FPS frames a second, its first `seconds` (BGR)."""
    frames: list[np.ndarray] = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t > seconds:
                break
            if t + 1e-6 >= len(frames) / FPS:
                frames.append(frame.to_ndarray(format="bgr24"))
    return frames


def write_camera(frames: list[np.ndarray], size: tuple[int, int], out: Path) -> Path:
    """The dev clip at `size` as a .y4m for Chromium's fake camera."""
    w, h = size
    with out.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for f in frames:
            scaled = f if (f.shape[1], f.shape[0]) == size else cv2.resize(f, size, interpolation=cv2.INTER_CUBIC)
            fh.write(b"FRAME\n" + cv2.cvtColor(scaled, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


def intake_cost(data: bytes) -> dict[str, Any]:
    """The server's upload probe and liveness decode of one clip (milliseconds, median of DECODE_RUNS)."""
    probe_ms, decode_ms = [], []
    for _ in range(DECODE_RUNS):
        t0 = time.perf_counter()
        probe_video(data)
        t1 = time.perf_counter()
        reader = decode_all(data)
        decode_ms.append((time.perf_counter() - t1) * 1000)
        probe_ms.append((t1 - t0) * 1000)
    with av.open(io.BytesIO(data), mode="r") as container:
        first = next(container.decode(video=0))
    return {
        "encoded_size": [first.width, first.height],
        "bytes": len(data),
        "kbit_per_s": round(len(data) * 8 / 1000 / max(reader.info.duration_s, 1e-3)),
        "seconds": round(reader.info.duration_s, 2),
        "probe_ms": round(statistics.median(probe_ms), 1),
        "decode_ms": round(statistics.median(decode_ms), 1),
    }


def server_analysis(checker: LivenessChecker, data: bytes) -> dict[str, Any]:
    """What the server's liveness stage makes of the clip: verdict, passive score, the actions it finds."""
    result = checker.check(data, LIVE_ACTIONS).to_dict()
    events = result["events"]
    return {
        "verdict": result["verdict"],
        "reasons": result["reasons"],
        "passive_score": result["passive_score"],
        "passive_min_frame": min((f["score"] for f in result["frame_scores"]), default=None),
        # The same person throughout (FACE_CHANGED_IN_VIDEO below the recognizer's review threshold): the face
        # embedding of turned, compressed faces is what a low bitrate hurts first.
        "identity_min_similarity": result["identity_min_similarity"],
        "challenge": {a["name"]: a["detected"] for a in result["actions"]},
        "events": {name: sum(e["name"] == name for e in events) for name in sorted({e["name"] for e in events})},
    }


def repeated(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One bitrate's recordings: each run, and the lowest server scores over them."""
    servers = [r["server"] for r in runs]
    return {
        "bits_per_second": runs[0]["bits_per_second"],
        "kbit_per_s": round(statistics.mean(r["kbit_per_s"] for r in runs)),
        "bytes": round(statistics.mean(r["bytes"] for r in runs)),
        "lowest_passive_score": min(s["passive_score"] for s in servers),
        "lowest_identity_similarity": min(s["identity_min_similarity"] for s in servers),
        "verdicts": [s["verdict"] for s in servers],
        "runs": runs,
    }


def record(
    base: str, ctx: ServiceContext, y4m: Path, requests: dict[str, Request], checker: LivenessChecker, keep: Path | None
) -> dict[str, Any]:
    """Each request of `requests` (name → (constraints, bitrate)) recorded from the camera `y4m`."""
    out: dict[str, dict[str, Any]] = {}
    with launched_chromium(*CAMERA_ARGS, f"--use-file-for-fake-video-capture={y4m}") as browser:
        context = browser.new_context(locale="zh-CN")
        context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(ctx, OPENID), "url": base}])
        context.route("https://res.wx.qq.com/**", lambda route: route.abort())
        page = context.new_page()
        page.goto(base + "/h5/certify")  # the capture page: the camera is allowed there, guidance.js loaded
        page.wait_for_function("() => !!window.H5Guidance")
        for name, (constraints, bits) in requests.items():
            got = page.evaluate(RECORD, [constraints, bits, int(RECORD_S * 1000)])
            clip = base64.b64decode(got["data"])
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{name}.webm").write_bytes(clip)
            out[name] = {
                "request": constraints,
                "bits_per_second": vendor.RECORDER_BITS_PER_SECOND if bits == PAGE else bits,
                "track_size": got["size"],
                **intake_cost(clip),
                "server": server_analysis(checker, clip),
            }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "h5_guidance.json")
    ap.add_argument("--clips", type=Path, help="keep the recorded clips in this folder")
    args = ap.parse_args()
    checker = LivenessChecker(config=LivenessConfig(check_duplicates=False))
    with tempfile.TemporaryDirectory() as tmp, FakeWeChat() as fake:
        root = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = wechat_settings(fake, root, database_url=f"sqlite:///{root / 'h5.db'}", worker_mode="none")
        frames = native_frames(data_dir() / LIVE_VIDEO, RECORD_S + 2)
        hd = write_camera(frames, CAMERA, root / "camera-hd.y4m")
        vga = write_camera(frames, vendor.CAPTURE_SIZE, root / "camera-vga.y4m")
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        rates: dict[str, Request] = {"default": (PAGE, None), "page": (PAGE, PAGE)}
        rates |= {str(b): (PAGE, b) for b in BITRATES if b != vendor.RECORDER_BITS_PER_SECOND}
        with serve_in_thread(create_app(ctx=ctx), port, log_level="warning"):
            hd_requests = {"old_request": (OLD_REQUEST, None), "new_request_hd_only_camera": (PAGE, PAGE)}
            clips = record(base, ctx, hd, hd_requests, checker, args.clips)
            runs = [record(base, ctx, vga, rates, checker, args.clips) for _ in range(REPEATS)]
    clips["new_request"] = runs[0]["page"]
    bitrates = {name: repeated([run[name] for run in runs]) for name in rates}
    camera = {"source": LIVE_VIDEO, "hd_size": list(CAMERA), "fps": FPS, "record_s": RECORD_S}
    sizes = {
        "machine": machine(),
        "camera": camera,
        "page_asks": list(vendor.CAPTURE_SIZE),
        "server_analysis_side": int(vendor.ANALYSIS_LONG_SIDE),
        "clips": clips,
    }
    by_rate = {
        "camera": {**camera, "size": list(vendor.CAPTURE_SIZE)},
        "challenge": list(LIVE_ACTIONS),
        "page_bits_per_second": vendor.RECORDER_BITS_PER_SECOND,
        "identity_threshold": round(checker._identity_threshold(), 4),
        "repeats": REPEATS,
        "clips": bitrates,
    }
    result = json.loads(args.out.read_text()) if args.out.exists() else {"bench": "h5_guidance"}
    result["capture_resolution"] = sizes
    result["recorder_bitrate"] = by_rate
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"capture_resolution": sizes, "recorder_bitrate": by_rate}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
