"""The liveness checker on the real dev videos: passive anti-spoofing, one face, same identity, best frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.face_match import cosine
from pipelines.liveness import LivenessChecker, LivenessResult
from pipelines.reasons import ReasonCode


@pytest.fixture(scope="session")
def real_result(shared_checker: LivenessChecker, spoof_videos: Path) -> LivenessResult:
    return shared_checker.check(spoof_videos / "lestari15_real.mp4")


@pytest.mark.parametrize("name", ["apfol_fake2.webm", "lestari15_fake.mp4"])
def test_replay_videos_fail_passive(shared_checker: LivenessChecker, spoof_videos: Path, name: str) -> None:
    result = shared_checker.check(spoof_videos / name)
    assert not result.passed
    assert ReasonCode.SPOOF_SUSPECTED in result.reasons
    assert result.passive_score < result.passive_threshold


@pytest.mark.parametrize(
    "path", ["spoof/videos/apfol_real2.webm", "spoof/videos/lestari15_real.mp4", "videos/liveportrait_driving_d0.mp4"]
)
def test_real_videos_pass_passive(shared_checker: LivenessChecker, data_dir: Path, path: str) -> None:
    result = shared_checker.check(data_dir / path)
    assert ReasonCode.SPOOF_SUSPECTED not in result.reasons
    assert result.passive_score >= result.passive_threshold
    # No challenge asked, nothing else wrong with these videos.
    assert result.passed, result.reasons


def test_result_fields(real_result: LivenessResult) -> None:
    d = real_result.to_dict()
    for key in ("passed", "passive_score", "actions", "reasons", "frames_analyzed", "best_frames", "video_sha256"):
        assert key in d
    assert real_result.frames_analyzed >= 15
    assert 3.0 < real_result.duration_s < 4.5
    assert len(real_result.video_sha256) == 64
    assert len(real_result.frame_hashes) >= 5
    assert real_result.max_faces == 1
    assert real_result.models["landmarks"].startswith("mediapipe_facemesh@")


def test_each_anti_spoofing_model_keeps_its_own_score(real_result: LivenessResult) -> None:
    """The passive score is the mean of the models' scores on the same frames; each is reported (the evaluation
    compares ensembles from them)."""
    by_model = real_result.passive_by_model
    assert list(by_model) == ["minifasnet_v2", "minifasnet_v1se"]
    assert all(0.5 < v <= 1.0 for v in by_model.values())
    assert np.mean(list(by_model.values())) == pytest.approx(real_result.passive_score, abs=1e-5)
    assert real_result.to_dict()["passive_by_model"] == {k: round(v, 4) for k, v in by_model.items()}


def test_best_frames_are_sharp_frontal_faces_of_the_person(real_result: LivenessResult) -> None:
    best = real_result.best_frames
    assert 1 <= len(best) <= 3
    assert [b.t for b in best] == sorted(b.t for b in best)
    for b in best:
        assert b.image.ndim == 3 and b.image.dtype == np.uint8
        assert b.observation.quality.ok, b.observation.quality.flags
        assert abs(b.observation.quality.yaw_deg) <= 15
    if len(best) > 1:
        assert cosine(best[0].observation.embedding, best[-1].observation.embedding) > 0.5


def test_two_faces_flagged(checker: LivenessChecker, composed: dict[str, Path]) -> None:
    result = checker.check(composed["two_faces"])
    assert result.max_faces == 2
    assert ReasonCode.FACE_MULTIPLE in result.reasons
    assert not result.passed


def test_no_face_flagged(checker: LivenessChecker, composed: dict[str, Path]) -> None:
    result = checker.check(composed["no_face"])
    assert ReasonCode.FACE_NOT_FOUND in result.reasons
    assert not result.passed
    assert result.best_frames == []


def test_face_leaving_the_frame_flagged(checker: LivenessChecker, composed: dict[str, Path]) -> None:
    result = checker.check(composed["face_leaves"])
    assert ReasonCode.FACE_NOT_FOUND in result.reasons
    assert 0.3 < result.face_missing_share < 0.7
    # The face was there at first: it is analysed, and it is live.
    assert result.best_frames and result.passive_score >= result.passive_threshold


def test_face_swapped_mid_video_flagged(checker: LivenessChecker, composed: dict[str, Path]) -> None:
    result = checker.check(composed["swap"])
    assert ReasonCode.FACE_CHANGED_IN_VIDEO in result.reasons
    assert result.identity_min_similarity is not None and result.identity_min_similarity < 0.3


def test_same_person_throughout_not_flagged(real_result: LivenessResult) -> None:
    assert real_result.identity_min_similarity is not None
    assert real_result.identity_min_similarity > 0.5
    assert ReasonCode.FACE_CHANGED_IN_VIDEO not in real_result.reasons
