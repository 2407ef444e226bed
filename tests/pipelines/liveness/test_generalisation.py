"""Regression guards of issue 16 on real clips: head turns, dim light, a hand-held photo, borderline scores."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from models.packs import ModelPack
from pipelines.face_match import FaceMatcher
from pipelines.liveness import LivenessChecker, LivenessConfig
from pipelines.liveness.fusion import Verdict
from pipelines.liveness.motion import MotionConfig, measure_motion
from pipelines.reasons import ReasonCode
from tests.pipelines.liveness.videos import read_frames, write_video

D0 = "videos/liveportrait_driving_d0.mp4"
APFOL = "spoof/videos/apfol_real2.webm"


def hand_held(still: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """A still picture moved as a hand holds it: smooth drift, zoom, rotation and a slight perspective tilt."""
    rng = np.random.default_rng(seed)
    h, w = still.shape[:2]
    # float64 in, float64 out (the cv2 stubs return any integer or floating array)
    walk = cast(npt.NDArray[np.float64], cv2.GaussianBlur(np.cumsum(rng.normal(0, 1, (n, 5)), axis=0), (1, 15), 5))
    walk /= np.abs(walk).max(axis=0)
    out = []
    for dx, dy, rot, zoom, tilt in walk * np.array([0.04 * w, 0.04 * h, 4.0, 0.05, 0.08]):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rot, 1 + zoom)
        m[:, 2] += (dx, dy)
        out.append(cv2.warpPerspective(still, np.vstack([m, [tilt / w, 0, 1]]), (w, h), borderMode=cv2.BORDER_REFLECT))
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("generalisation")
    d0 = read_frames(data_dir / D0, 0.0, 3.5)
    rng = np.random.default_rng(0)
    # A dim living room: exposure ×0.2 with a gamma, and sensor noise.
    dark = [np.clip((f / 255.0) ** 1.3 * 0.2 * 255 + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8) for f in d0]
    # Darker still: the detector no longer finds the face at all.
    night = [np.clip(f * 0.06 + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8) for f in d0]
    return {
        "photo": write_video(out / "photo.mp4", hand_held(d0[len(d0) // 2], 120, seed=3), fps=30),
        "dark": write_video(out / "dark.mp4", dark, fps=30),
        "night": write_video(out / "night.mp4", night, fps=30),
    }


@pytest.fixture(scope="module")
def dense_checker(pack: ModelPack, matcher: FaceMatcher) -> LivenessChecker:
    """Key frames every 0.4 s, so the turned-head frames of a turn challenge are all analysed."""
    cfg = LivenessConfig(check_duplicates=False, detect_every_s=0.4, max_key_frames=40)
    return LivenessChecker(pack, cfg, matcher=matcher)


def test_hand_moved_still_photo_is_refused_without_a_challenge(
    shared_checker: LivenessChecker, clips: dict[str, Path]
) -> None:
    result = shared_checker.check(clips["photo"])
    assert not result.passed and result.verdict is Verdict.REJECT
    assert ReasonCode.SPOOF_RIGID_MOTION in result.reasons and result.driver == "motion"
    assert result.motion["live"] is False and result.motion["moved"] >= 0.1


@pytest.mark.parametrize("path", [D0, APFOL, "videos/liveportrait_driving_d13.mp4", "spoof/videos/lestari15_real.mp4"])
def test_real_faces_are_not_taken_for_a_photo(shared_checker: LivenessChecker, data_dir: Path, path: str) -> None:
    result = shared_checker.check(data_dir / path)
    assert result.motion["live"] is not False, result.motion
    assert result.passed, result.reasons


def test_a_dark_real_clip_is_asked_to_retake_not_called_a_spoof(
    shared_checker: LivenessChecker, clips: dict[str, Path]
) -> None:
    result = shared_checker.check(clips["dark"])
    assert result.verdict is Verdict.RETAKE and result.driver == "capture"
    assert ReasonCode.CAPTURE_TOO_DARK in result.reasons
    assert ReasonCode.SPOOF_SUSPECTED not in result.reasons
    assert result.capture["face_luma"] < 55
    assert "光线太暗" in result.to_dict()["messages"][0]


def test_a_face_too_dark_to_find_is_asked_to_retake(shared_checker: LivenessChecker, clips: dict[str, Path]) -> None:
    result = shared_checker.check(clips["night"])
    assert result.verdict is Verdict.RETAKE
    assert result.reasons[0] is ReasonCode.CAPTURE_TOO_DARK and ReasonCode.FACE_NOT_FOUND in result.reasons
    assert ReasonCode.SPOOF_SUSPECTED not in result.reasons


def test_head_turns_asked_by_the_challenge_are_not_a_changed_face(
    dense_checker: LivenessChecker, data_dir: Path
) -> None:
    result = dense_checker.check(data_dir / APFOL, ["turn_left", "turn_right"])
    yaws = [abs(k.observation.quality.yaw_deg) for k in result.best_frames]
    assert result.passed, result.reasons
    assert ReasonCode.FACE_CHANGED_IN_VIDEO not in result.reasons
    assert result.identity_min_similarity is not None
    assert result.identity_min_similarity >= dense_checker._identity_threshold()
    assert max(yaws) <= 20  # the best frames for face matching stay frontal


def test_performed_challenge_with_borderline_passive_score_goes_to_review(
    pack: ModelPack, matcher: FaceMatcher, data_dir: Path
) -> None:
    # The real clip's passive score (≈ 0.99) placed inside the borderline band [floor, threshold).
    cfg = LivenessConfig(check_duplicates=False, passive_threshold=0.9999, passive_review_floor=0.5)
    checker = LivenessChecker(pack, cfg, matcher=matcher)
    performed = checker.check(data_dir / APFOL, ["turn_left", "turn_right"])
    assert performed.verdict is Verdict.REVIEW and performed.driver == "passive_borderline"
    assert performed.reasons == [ReasonCode.SPOOF_SUSPECTED]
    missed = checker.check(data_dir / APFOL, ["open_mouth"])
    assert missed.verdict is Verdict.REJECT and ReasonCode.CHALLENGE_MISSING_ACTION in missed.reasons


def _face_points(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    pts = rng.uniform(200, 300, (468, 2))
    pts[33], pts[263] = (210.0, 240.0), (290.0, 240.0)  # eye corners 80 px apart
    return np.repeat(pts[None], n, axis=0)


def test_motion_score_separates_a_moving_plane_from_a_moving_face() -> None:
    n, cfg = 30, MotionConfig()
    times = [i / 6 for i in range(n)]
    base = _face_points(n)
    rng = np.random.default_rng(1)
    plane = []
    for i in range(n):
        angle = np.radians(5 * np.sin(i / 5))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        plane.append((base[i] - 250) @ rot.T * (1 + 0.03 * np.sin(i / 4)) + 250 + [20 * np.sin(i / 6), 0])
    plane = [p + rng.normal(0, 0.4, p.shape) for p in plane]
    rigid = measure_motion(times, plane, cfg)
    assert rigid.live is False and rigid.moved >= cfg.min_moved
    # The same motion with 30 points (a mouth) opening and closing by a quarter of the eye distance.
    face = [p.copy() for p in plane]
    for i, p in enumerate(face):
        p[:30, 1] += 20 * max(0.0, np.sin(i / 3))
    assert measure_motion(times, face, cfg).live is True
    still = [p - (p - plane[0]) * 0.98 for p in plane]  # hardly moving at all: no evidence either way
    assert measure_motion(times, still, cfg).live is None
    assert measure_motion(times[:3], plane[:3], cfg).live is None


def test_slow_movements_are_still_found(shared_checker: LivenessChecker, data_dir: Path, tmp_path: Path) -> None:
    """Older people move slowly: the same turns and nod played at half speed are still found, in order."""
    frames = read_frames(data_dir / APFOL, 0.0, 8.0)
    half_rate = round(len(frames) / 8.0 / 2)  # the same frames over twice the time
    slow = write_video(tmp_path / "slow.mp4", frames, fps=half_rate)
    result = shared_checker.check(slow, ["turn_left", "turn_right", "nod"])
    assert result.duration_s > 14
    assert result.passed, result.reasons
    assert [a.detected for a in result.actions] == [True, True, True]
