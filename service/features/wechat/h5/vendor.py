"""Live face guidance of the capture page: the files it loads and the one JSON of rules it follows.

The page (static/guidance.js) runs the face detector in the browser with onnxruntime-web's WASM backend,
advisory only: the server re-checks everything. Served here, all from this origin (no CDN at run time):
- `/h5/static/vendor/ort-{version}/{file}`: onnxruntime-web, put in the cache by scripts/web_bundle.sh (npm,
  pinned version and tarball hash) under PENSION_CERT_WEB_DIR (default ~/.cache/pension-cert/web), served only
  as bytes matching the sha256 the script recorded (ort_bundle.py);
- `/h5/models/{sha256[:16]}/{file}`: the detector and the face mesh from the model store (models/manifest.toml),
  versioned by their hash and served only as bytes matching it (ort_bundle.py); the page checks the whole sha256
  it is told before creating its session;
- `/h5/guidance.json`: the rules, built from the server's own constants (challenge actions, pose formula,
  capture limits), so the page never carries a threshold of its own. `available` is false when the bundle
  or the model is missing: the page then keeps today's flow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from models.store import ModelStatus, ModelStore
from pipelines.liveness import signals
from pipelines.liveness.capture import CaptureConfig
from pipelines.liveness.challenge import BLINK, NOD, OPEN_MOUTH, PROMPTS_ZH, TURN_LEFT, TURN_RIGHT
from pipelines.liveness.checker import LivenessConfig
from pipelines.liveness.video import SamplingConfig, VideoLimits
from service.adapters.http.deps import Ctx
from service.features.wechat.h5 import ort_bundle

log = logging.getLogger(__name__)
router = APIRouter()

# Keep in step with scripts/web_bundle.sh (ORT_VERSION, ORT_FILES).
ORT_VERSION = "1.31.1"
ORT_SCRIPT = "ort.wasm.min.js"
ORT_FILES = (ORT_SCRIPT, "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MEDIA_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm"}
# The dynamic-shape YuNet: the page runs it at GUIDANCE_INPUT (a phone's 4:3 frame, sides multiples of 32),
# a fraction of the fixed 640×640 model's cost per frame; its box frames the face and crops the mesh.
GUIDANCE_MODEL = "yunet_n_dynamic"
# The server's face mesh (pipelines/liveness/tracking.py): the page measures the same signals on it.
MESH_MODEL = "mediapipe_facemesh"
MESH_POINTS_OUTPUT = 468 * 3
GUIDANCE_INPUT = (320, 256)
YUNET_STRIDES = (8, 16, 32)
YUNET_SCORE = 0.6
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}

# Rules of the page only (the server has no equivalent: it sees the recording, not the framing).
# The face's centre within this share of the frame from the centre; its width at most this share.
CENTRE_TOLERANCE = 0.15
MAX_FACE_WIDTH_SHARE = 0.62
# The page asks for a face this much larger than the server's minimum, so the recording passes it.
FACE_SIZE_MARGIN = 1.25
# Analysis size of the server's capture checks (CaptureConfig.min_face_px is measured at this long side).
ANALYSIS_LONG_SIDE = float(SamplingConfig().analysis_side)
# The camera size the page asks for: the server scales every frame down to ANALYSIS_LONG_SIDE before any model
# sees it, so more pixels only cost decode time (bench/results/h5_guidance.json, capture_resolution; the clip's
# bytes follow the recorder's bitrate, RECORDER_BITS_PER_SECOND, not the size); 4:3 as a phone's selfie camera.
# An `ideal`, not exact: a camera without that size gives its nearest.
CAPTURE_SIZE = (int(ANALYSIS_LONG_SIDE), int(ANALYSIS_LONG_SIDE) * 3 // 4)
# The MediaRecorder's bitrate (bits/s), asked by the page (guidance.json `capture`): left to itself Chromium
# encodes 640×480 at about the rate it uses for 1280×960 (1.35-1.6 Mbit/s). Measured on the dev clip recorded by
# Chromium at each rate and checked by the server (bench/results/h5_guidance.json, recorder_bitrate; docs/wechat.md):
# the passive anti-spoofing score stays at 0.997-0.999 from 400 kbit/s up in every run (at 250 kbit/s one run of
# three fell to 0.916); what a lower rate costs first is the margin of the same-person check between key frames
# (turned faces; FACE_CHANGED_IN_VIDEO under 0.40): 0.62-0.67 at the browser's rate, 0.59 at 1 Mbit/s, 0.47-0.60
# at 600 kbit/s, where one guided 640×480 clip of four fell under it. 1 Mbit/s halves the clip (0.90 vs 1.9-2.3 MB
# for 11.5 s) and keeps that margin.
RECORDER_BITS_PER_SECOND = 1_000_000
# Sharpness (advisory, "green when right"): Laplacian variance of the box's inner SHARPNESS_INNER share, scaled
# to SHARPNESS_CROP (w, h), the size of the server's centre crop of its aligned 112-px face (face_match/quality.py),
# so the number reads on the server's scale. The detector's box is not the aligned face, so on the same frame
# the page reads lower: it warns only below SHARPNESS_SHARE × the server's limit (dev clip at 320×240: 12–49 as
# filmed, 3–5 with a 5-px box blur). The server's own check (CaptureConfig.min_sharpness) stays the one that counts.
SHARPNESS_INNER = 0.7
SHARPNESS_CROP = (64, 80)
SHARPNESS_SHARE = 0.5
# Steady: the face's centre moves less than this share of its width between frames, for STEADY_S.
STEADY_MOVE = 0.06
STEADY_S = 1.0
# Frames analysed per second at most (a phone camera's 15 fps selfie is plenty for the 1-s steady rule and
# for actions that last about a second); the rest of the CPU stays with the recording.
ANALYSE_FPS = 15
# Seconds an action prompt waits before it is re-prompted once; then the page moves on (the server decides).
ACTION_S = 3.0
# The page confirms an action only when it is clearly there, so that the server, measuring the same signal
# on its own frames of the encoded clip, finds it too: the signal past CONFIRM_MARGIN × the server's threshold
# on CONFIRM_FRAMES analysed frames in a row; the clip then runs TAIL_S more, cut short at `capture.max_s` (a slow
# person's re-prompted, late-seen actions: 3 + 3 + 1 s each would pass the server's clip limit; docs/liveness.md).
CONFIRM_MARGIN = 1.1
CONFIRM_FRAMES = 2
TAIL_S = 1.0
# What the page says while framing (key → text, spoken as the voice prompt `guide_{key}`), and on each action
# it confirms ("done").
HINTS = {
    "face": "请把脸放进椭圆框内",
    "centre": "请把脸移到框中间",
    "closer": "请靠近一点",
    "farther": "请离远一点",
    "dark": "光线太暗,请到亮处",
    "blurry": "画面模糊,请保持手机稳定",
    "steady": "请保持不动",
    "done": "很好,这个动作完成了",
}
# How the page confirms each action, as pipelines/liveness/actions.detect_events: the signal, its sign, and
# whether the threshold is relative to the resting value (turns, nod) or absolute (mouth); blink has its own.
LIVE_ACTIONS = {
    TURN_LEFT: ("yaw", 1, True),
    TURN_RIGHT: ("yaw", -1, True),
    NOD: ("pitch", 1, True),
    OPEN_MOUTH: ("mar", 1, False),
    BLINK: ("ear", -1, False),
}


def ort_dir(web_dir: Path) -> Path:
    """Where scripts/web_bundle.sh extracts the pinned bundle under the web cache (Settings.web_dir)."""
    return web_dir.expanduser() / f"onnxruntime-web-{ORT_VERSION}"


def ort_available(web_dir: Path) -> bool:
    # web_bundle.sh writes .complete (the files' sha256) last: a half-extracted or changed bundle is never served.
    folder = ort_dir(web_dir)
    return all(ort_bundle.verified_bytes(folder, f) is not None for f in ORT_FILES)


def _model(store: ModelStore, name: str) -> dict[str, Any] | None:
    """The page's description of a verified model of the store; None when it is missing or altered."""
    state = store.state(name)
    if state.status is not ModelStatus.OK:
        log.info("h5 guidance: model %s is %s", name, state.status)
        return None
    spec = state.spec
    return {"name": name, "url": f"/h5/models/{spec.sha256[:16]}/{spec.file}", "sha256": spec.sha256}


def actions_rules() -> dict[str, dict[str, Any]]:
    """Per challenge action: the signal the page watches and the server's threshold on it."""
    cfg = LivenessConfig().actions
    thresholds = {TURN_LEFT: cfg.turn_deg, TURN_RIGHT: cfg.turn_deg, NOD: cfg.nod_deg}
    thresholds |= {OPEN_MOUTH: cfg.mouth_open_ratio, BLINK: cfg.blink_ratio}
    out: dict[str, dict[str, Any]] = {}
    for name, prompt in PROMPTS_ZH.items():
        signal, sign, relative = LIVE_ACTIONS[name]
        out[name] = {
            "prompt": prompt,
            "signal": signal,
            "sign": sign,
            "relative": relative,
            "threshold": thresholds[name],
        }
    # A blink: below blink_ratio × the open-eye level (80th percentile over ±blink_window_s) and open again
    # within blink_max_s, only while the head is near its resting pose.
    out[BLINK] |= {
        "max_s": cfg.blink_max_s,
        "window_s": cfg.blink_window_s,
        "max_yaw": cfg.blink_max_yaw_deg,
        "max_pitch": cfg.blink_max_pitch_deg,
    }
    return out


def mesh_indices() -> dict[str, list[int]]:
    """The mesh points of pipelines/liveness/signals.measure, in its order."""
    return {
        "right_eye": list(signals._RIGHT_EYE),
        "left_eye": list(signals._LEFT_EYE),
        "mouth_inner": [signals._MOUTH_INNER_TOP, signals._MOUTH_INNER_BOTTOM],
        "mouth_corners": [signals._MOUTH_LEFT, signals._MOUTH_RIGHT],
        "cheeks": [signals._CHEEK_RIGHT, signals._CHEEK_LEFT],
        "forehead_chin": [signals._FOREHEAD, signals._CHIN],
    }


def guidance_config(store: ModelStore, web_dir: Path) -> dict[str, Any]:
    liveness = LivenessConfig()
    detector, mesh = _model(store, GUIDANCE_MODEL), _model(store, MESH_MODEL)
    available = ort_available(web_dir) and detector is not None and mesh is not None
    base = f"/h5/static/vendor/ort-{ORT_VERSION}/"
    capture: CaptureConfig = liveness.capture
    return {
        "available": available,
        "ort": {"version": ORT_VERSION, "script": base + ORT_SCRIPT, "wasm_paths": base},
        "model": {
            **(detector or {}),
            "input": list(GUIDANCE_INPUT),
            "strides": list(YUNET_STRIDES),
            "score": YUNET_SCORE,
        },
        "mesh": {
            **(mesh or {}),
            "input": int(store.manifest.model(MESH_MODEL).shape[2]),
            "crop_scale": store.manifest.model(MESH_MODEL).crop_scale or 1.5,
            "points_output": MESH_POINTS_OUTPUT,
            "min_presence": liveness.min_presence,
            "indices": mesh_indices(),
        },
        "position": {
            "min_face_share": FACE_SIZE_MARGIN * capture.min_face_px / ANALYSIS_LONG_SIDE,
            "max_face_share": MAX_FACE_WIDTH_SHARE,
            "centre_tolerance": CENTRE_TOLERANCE,
            "min_face_luma": capture.min_face_luma,
            "min_sharpness": SHARPNESS_SHARE * capture.min_sharpness,
            "sharpness_inner": SHARPNESS_INNER,
            "sharpness_crop": list(SHARPNESS_CROP),
            "steady_move": STEADY_MOVE,
            "steady_s": STEADY_S,
        },
        # What the page asks the camera for, and the server's own limits on the clip it uploads.
        "capture": {
            "width": CAPTURE_SIZE[0],
            "height": CAPTURE_SIZE[1],
            "min_side": VideoLimits().min_side,
            "max_s": VideoLimits().max_duration_s,
            "video_bits_per_second": RECORDER_BITS_PER_SECOND,
        },
        "hints": HINTS,
        "fps": ANALYSE_FPS,
        "action_s": ACTION_S,
        "confirm": {"margin": CONFIRM_MARGIN, "frames": CONFIRM_FRAMES, "tail_s": TAIL_S},
        "rest_s": liveness.actions.rest_s,
        "actions": actions_rules(),
    }


def model_store(request: Request) -> ModelStore:
    """The app's store (it remembers which files it has hashed): made on first use, not when the process starts,
    and kept on the app's state for the app's lifetime."""
    store: ModelStore | None = getattr(request.app.state, "h5_model_store", None)
    if store is None:
        store = request.app.state.h5_model_store = ModelStore()
    return store


@router.get("/guidance.json")
def guidance(ctx: Ctx, request: Request) -> JSONResponse:
    return JSONResponse(guidance_config(model_store(request), ctx.settings.web_dir))


@router.get("/static/vendor/ort-{version}/{name}")
def ort_file(ctx: Ctx, version: str, name: str) -> Response:
    if version != ORT_VERSION or name not in ORT_FILES or not ort_available(ctx.settings.web_dir):
        return Response(status_code=404)
    data = ort_bundle.verified_bytes(ort_dir(ctx.settings.web_dir), name)  # the bytes hashed, not the path again
    if data is None:
        return Response(status_code=404)
    return Response(data, media_type=MEDIA_TYPES[Path(name).suffix], headers=IMMUTABLE)


@router.get("/models/{version}/{name}")
def model_file(request: Request, version: str, name: str) -> Response:
    """The page's two models only, at the URL their hash versions, sent as the bytes hashed against the manifest
    (ort_bundle.pinned_bytes): the store's cheap (size, mtime) status only finds the model, since a file swapped
    with the same size and mtime keeps it OK."""
    store = model_store(request)
    for model in (GUIDANCE_MODEL, MESH_MODEL):
        served = _model(store, model)
        if served is not None and served["url"] == f"/h5/models/{version}/{name}":
            data = ort_bundle.pinned_bytes(store.state(model).path, served["sha256"], "models/manifest.toml")
            if data is None:
                return Response(status_code=404)
            return Response(data, media_type="application/octet-stream", headers=IMMUTABLE)
    return Response(status_code=404)
