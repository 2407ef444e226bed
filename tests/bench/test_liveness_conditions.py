"""The seeded condition/attack generator: reproducible, and each condition changes what it claims to change."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from bench import liveness_conditions as lc
from bench.liveness_conditions.clip import CSV_COLUMNS
from bench.liveness_conditions.sources import select_sources
from pipelines.liveness import VideoLimits
from pipelines.liveness.video import SamplingConfig, VideoReader
from tests.pipelines.liveness.videos import read_frames

FPS = 30.0


@pytest.fixture(scope="module")
def frames(data_dir: Path) -> list[np.ndarray]:
    """About 2.3 s of the real dev clip at 640 px."""
    return read_frames(data_dir / "spoof/videos/lestari15_real.mp4", 0.5, 2.8)


@pytest.fixture(scope="module")
def half_rate(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The same clip at 15 fps: the attacks always last 3–5 s, so half the frames halve their test time."""
    return frames[::2]


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _noise(img: np.ndarray) -> float:
    """Mean deviation from the 3x3 median, relative to brightness (sensor noise is what a median removes)."""
    g = _grey(img)
    return float(np.abs(g - cv2.medianBlur(g.astype(np.uint8), 3)).mean()) / float(g.mean())


def _fine_energy(img: np.ndarray) -> float:
    """Share of the spectrum's power above 0.08 cycles/px (halftone dots and moiré gratings live there)."""
    g = _grey(img)
    g = (g - g.mean()) * np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    power = np.abs(np.fft.fft2(g)) ** 2
    fy, fx = np.fft.fftfreq(g.shape[0])[:, None], np.fft.fftfreq(g.shape[1])[None, :]
    r = np.hypot(fx, fy)
    return float(power[r > 0.08].sum() / power[r > 0.01].sum())


def test_same_seed_same_bytes_other_seed_differs(frames: list[np.ndarray], tmp_path: Path) -> None:
    a = lc.apply("low_light", frames, FPS, seed=0)
    b = lc.apply("low_light", frames, FPS, seed=0)
    c = lc.apply("low_light", frames, FPS, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert not np.array_equal(a.frames[0], c.frames[0])
    pa, pb = lc.write(a, tmp_path / "a.mp4"), lc.write(b, tmp_path / "b.mp4")
    assert pa.read_bytes() == pb.read_bytes()
    vp8 = lc.apply("vp8_webm", frames, FPS, seed=0)
    assert lc.write(vp8, tmp_path / "a.webm").read_bytes() == lc.write(vp8, tmp_path / "b.webm").read_bytes()


def test_low_light_is_darker_and_noisier(frames: list[np.ndarray]) -> None:
    clip = lc.apply("low_light", frames, FPS, seed=0)
    assert (clip.label, clip.condition) == ("real", "low_light")
    for i in (0, len(frames) // 2):
        assert _grey(clip.frames[i]).mean() < 0.75 * _grey(frames[i]).mean()
        assert _noise(clip.frames[i]) > 3 * _noise(frames[i])


def test_soft_focus_lowers_sharpness(frames: list[np.ndarray]) -> None:
    clip = lc.apply("soft_focus", frames, FPS, seed=0)
    for src, out in zip(frames[::20], clip.frames[::20], strict=True):
        assert cv2.Laplacian(_grey(out), cv2.CV_32F).var() < 0.5 * cv2.Laplacian(_grey(src), cv2.CV_32F).var()


def test_mirrored_is_the_flip(frames: list[np.ndarray]) -> None:
    clip = lc.apply("mirrored", frames, FPS, seed=3)
    assert all(np.array_equal(out, src[:, ::-1]) for src, out in zip(frames, clip.frames, strict=True))


def test_vp8_decodes_as_vp8_in_webm(frames: list[np.ndarray], tmp_path: Path) -> None:
    path = lc.write(lc.apply("vp8_webm", frames, FPS, seed=0), tmp_path / "c.webm")
    with av.open(str(path)) as container:
        assert "webm" in container.format.name
        assert container.streams.video[0].codec_context.name == "vp8"
        assert sum(1 for _ in container.decode(video=0)) == len(frames)


def test_portrait_decodes_upright(frames: list[np.ndarray], tmp_path: Path) -> None:
    clip = lc.apply("portrait_phone", frames, FPS, seed=0)
    assert clip.rotation == 90 and clip.frames[0].shape[:2] in ((540, 960), (720, 1280))  # stored sideways
    reader = VideoReader(lc.write(clip, tmp_path / "p.mp4").read_bytes(), VideoLimits(), SamplingConfig())
    try:
        shown = next(iter(reader.frames()))
    finally:
        reader.close()
    h, w = shown.image.shape[:2]
    assert reader.info.rotation == 90 and h > w and abs(h / w - 16 / 9) < 0.02
    upright = cv2.resize(np.rot90(clip.frames[0], k=1), (w, h)).astype(np.float32)
    upside_down = upright[::-1, ::-1]
    image = shown.image.astype(np.float32)
    assert np.abs(image - upright).mean() < 10 < np.abs(image - upside_down).mean()


def _homography_error(still: np.ndarray, frame: np.ndarray) -> float:
    """Mean grey-level error of ``frame`` against ``still`` warped by one homography (ORB + RANSAC), gain fitted.

    A photo moved in front of the camera is exactly such a warp, up to the camera's blur, flicker and noise.
    """
    orb = cv2.ORB_create(1500)  # type: ignore[attr-defined]  # the stubs have only cv2.ORB.create
    gs, gf = _grey(still).astype(np.uint8), _grey(frame).astype(np.uint8)
    ks, ds = orb.detectAndCompute(gs, None)
    kf, df = orb.detectAndCompute(gf, None)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(ds, df)
    # The same float32 arrays as np.float32(list), which the numpy stubs type as a scalar.
    ps = np.array([ks[m.queryIdx].pt for m in matches], np.float32)
    pf = np.array([kf[m.trainIdx].pt for m in matches], np.float32)
    hom, inliers = cv2.findHomography(ps, pf, cv2.RANSAC, 2.0)
    assert hom is not None and inliers.mean() > 0.4
    h, w = gf.shape
    warped = cv2.warpPerspective(cv2.GaussianBlur(gs, (0, 0), 0.6), hom, (w, h)).astype(np.float32)
    centre = (slice(h // 8, -h // 8), slice(w // 8, -w // 8))
    a, b = warped[centre], gf[centre].astype(np.float32)
    gain = float((a * b).sum() / (a * a).sum())
    return float(np.abs(gain * a - b).mean())


def test_photo_hand_moves_one_still_rigidly(half_rate: list[np.ndarray]) -> None:
    clip = lc.apply("photo_hand", half_rate, FPS / 2, seed=0)
    assert (clip.label, clip.attack_type) == ("spoof", "photo_hand")
    assert 3.0 <= len(clip.frames) / clip.fps <= 5.0
    still = half_rate[lc.still_index(half_rate, lc.Source(half_rate, FPS / 2).box())]
    errors = [_homography_error(still, f) for f in clip.frames[::12]]
    assert max(errors) < 3.0  # camera noise alone is about 2 grey levels
    # It does move: the still is not simply repeated.
    assert np.abs(_grey(clip.frames[0]) - _grey(clip.frames[len(clip.frames) // 2])).mean() > 3


def test_print_and_screen_add_fine_periodic_energy(half_rate: list[np.ndarray]) -> None:
    photo = lc.apply("photo_hand", half_rate, FPS / 2, seed=0)
    base = np.mean([_fine_energy(f) for f in photo.frames[::15]])
    printed = lc.apply("print", half_rate, FPS / 2, seed=0)
    screen = lc.apply("phone_screen", half_rate, FPS / 2, seed=0)
    assert (printed.attack_type, screen.attack_type) == ("print", "replay_phone")
    assert np.mean([_fine_energy(f) for f in printed.frames[::15]]) > 2 * base
    assert np.mean([_fine_energy(f) for f in screen.frames[::15]]) > 1.5 * base


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    """How far the picture moved between two frames (phase correlation, pixels)."""
    (dx, dy), _ = cv2.phaseCorrelate(_grey(a), _grey(b))
    return float(np.hypot(dx, dy))


def test_monitor_replay_is_a_steady_full_view_screen(half_rate: list[np.ndarray]) -> None:
    still = [half_rate[0]] * len(half_rate)  # a still picture on both screens: any motion is the filming camera's
    monitor = lc.apply("monitor_screen_video", still, FPS / 2, seed=0)
    phone = lc.apply("phone_screen_video", still, FPS / 2, seed=0)
    assert (monitor.label, monitor.attack_type) == ("spoof", "replay_monitor_video")
    assert len(monitor.frames) == len(still)  # the whole recording is replayed
    # Propped on a desk, the filming phone moves a quarter as much as a phone held up by hand.
    moved = [_shift(c.frames[0], c.frames[-1]) for c in (monitor, phone)]
    assert moved[0] < 0.5 * moved[1]
    # The screen fills the view: the frame's middle is the replayed picture, with moiré added.
    photo = lc.apply("photo_hand", half_rate, FPS / 2, seed=0)
    base = np.mean([_fine_energy(f) for f in photo.frames[::15]])
    assert np.mean([_fine_energy(f) for f in monitor.frames[::15]]) > 1.3 * base  # a matte screen: weaker


def test_cut_photo_moves_live_eyes_behind_a_still_print(
    half_rate: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    eyes = ((268.0, 222.0), (361.0, 212.0))  # this clip's eyes, so no detector run is needed
    blink = [f.copy() for f in half_rate]
    for i, f in enumerate(blink):  # the live eyes close and open: a dark band over both eyes every other second
        if (i // 15) % 2:
            f[212:232, 245:385] //= 3
    # Without the filming camera (checked by the photo and print tests), what the paper shows frame by frame.
    module = sys.modules["bench.liveness_conditions.cut_photo"]  # the package exports a function of that name
    monkeypatch.setattr(module, "film_planes", lambda planes, fps, rng, sigma: list(planes))
    clip = lc.apply("cut_photo", blink, FPS / 2, seed=0, eyes=lambda i, img: eyes)
    assert (clip.label, clip.attack_type) == ("spoof", "cut_photo")
    frames = np.stack([_grey(f) for f in clip.frames])
    spread = frames.std(axis=0)
    holes = np.concatenate([spread[214:230, 255:285].ravel(), spread[214:226, 347:377].ravel()])  # inside each hole
    paper = np.concatenate([spread[:180].ravel(), spread[260:].ravel()])
    assert float(np.median(holes)) > 10  # the eyes behind the holes blink
    assert float(paper.max()) == 0.0  # the print around them does not change at all
    # The paper is a print of the still, not the live face: desaturated (halftone and paper), darker at the cut.
    sat = cv2.cvtColor(clip.frames[0], cv2.COLOR_BGR2HSV)[..., 1].astype(np.float32)
    live_sat = cv2.cvtColor(half_rate[0], cv2.COLOR_BGR2HSV)[..., 1].astype(np.float32)
    assert sat[260:400, 250:400].mean() < 0.9 * live_sat[260:400, 250:400].mean()


def test_glasses_follow_given_eyes(frames: list[np.ndarray]) -> None:
    eyes = ((268.0, 222.0), (361.0, 212.0))  # this clip's eyes, so no detector run is needed
    clip = lc.apply("glasses", frames[:10], FPS, seed=0, eyes=lambda i, img: eyes)
    diff = np.abs(clip.frames[0].astype(np.int16) - frames[0]).max(axis=2)
    ys, xs = np.nonzero(diff > 20)
    assert 180 < np.median(ys) < 260 and 230 < np.median(xs) < 400


def test_unknown_condition_is_refused(frames: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        lc.apply("fog", frames, FPS, seed=0)


def test_generate_writes_rows_for_real_clean_sources(data_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "presentations.csv"
    (tmp_path / "data").symlink_to(data_dir)
    src = "data/spoof/videos/lestari15_real.mp4"  # relative to the CSV's folder
    index.write_text(
        ",".join(lc.CSV_COLUMNS)
        + "\n"
        + f"{src},real,none,subj1,clean,dev,normal,handheld,train,112,30\n"
        + "data/spoof/videos/lestari15_fake.mp4,spoof,replay_phone,subj1,clean,dev,normal,handheld,train,77,30\n"
    )
    out = lc.generate(index, tmp_path / "gen", seed=0, conditions=["mirrored", "lowres_360p"], per_source=1)
    rows = out.read_text().splitlines()
    assert rows[0] == ",".join(lc.CSV_COLUMNS) and len(rows) == 2
    fields = dict(zip(lc.CSV_COLUMNS, rows[1].split(","), strict=True))
    assert fields["subject"] == "subj1" and fields["label"] == "real"
    assert fields["source"] == f"generated:{fields['condition']}:seed0:{src}"
    assert (tmp_path / "gen" / fields["path"]).is_file()


def test_sources_are_a_few_real_clean_clips_per_person(tmp_path: Path) -> None:
    rows = [
        {"path": f"{s}_{i}.mp4", "label": label, "condition": "clean", "subject": s}
        for s in ("replay_attack:client001", "nuaa:0001", "grid:v01")
        for i in range(3)
        for label in ("real", "spoof")
    ]
    index = tmp_path / "presentations.csv"
    with index.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    assert select_sources(index, tmp_path / "sources.csv") == 1 + 2 + 3
    with (tmp_path / "sources.csv").open(newline="", encoding="utf-8") as fh:
        chosen = list(csv.DictReader(fh))
    assert {r["label"] for r in chosen} == {"real"}
    assert [r["path"] for r in chosen][:3] == ["replay_attack:client001_0.mp4", "nuaa:0001_0.mp4", "nuaa:0001_1.mp4"]
    with pytest.raises(ValueError, match="beside the index"):
        select_sources(index, tmp_path / "elsewhere" / "sources.csv")
