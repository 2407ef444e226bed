"""Challenge issuing and replay defences: exact and near-duplicate videos. (Nonce reuse and expiry are the
service's one check: tests/service/test_nonce_check.py.)"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pytest

from pipelines.liveness import ACTIONS, LivenessChecker, issue_challenge, parse_actions
from pipelines.liveness.duplicates import near_duplicate
from pipelines.liveness.replay import BinnedHasher, frame_thumb, grid_hash, hamming
from pipelines.reasons import ReasonCode
from tests.pipelines.liveness.videos import read_frames, write_video


def test_issue_challenge_random_distinct_actions() -> None:
    seen = set()
    for seed in range(40):
        ch = issue_challenge(rng=random.Random(seed))
        assert 2 <= len(ch.actions) <= 3
        assert len(set(ch.actions)) == len(ch.actions)
        assert set(ch.actions) <= set(ACTIONS)
        seen.add(ch.actions)
        assert ch.expires_at > dt.datetime.now(dt.UTC)
    assert len(seen) > 20
    nonces = {issue_challenge().nonce for _ in range(50)}
    assert len(nonces) == 50
    assert (
        issue_challenge(n_actions=2, rng=random.Random(3)).actions
        == issue_challenge(n_actions=2, rng=random.Random(3)).actions
    )
    assert issue_challenge(ttl_s=0).expired()
    assert issue_challenge().to_dict()["prompts_zh"]


def test_parse_actions_rejects_unknown() -> None:
    assert parse_actions("blink, turn_left") == ("blink", "turn_left")
    with pytest.raises(ValueError, match="smile"):
        parse_actions("blink,smile")


def test_same_video_twice_fails(checker: LivenessChecker, spoof_videos: Path) -> None:
    data = (spoof_videos / "lestari15_real.mp4").read_bytes()
    assert checker.check(data).passed
    again = checker.check(data)
    assert again.reasons == [ReasonCode.VIDEO_DUPLICATE]


@pytest.mark.parametrize("start_frame", [0, 11], ids=["rescaled", "rescaled_and_trimmed"])
def test_reencoded_video_is_near_duplicate(
    checker: LivenessChecker, data_dir: Path, tmp_path: Path, start_frame: int
) -> None:
    original = data_dir / "videos/liveportrait_source_s18.mp4"
    assert checker.check(original).passed
    # Same content, re-encoded at another size (and cut 0.37 s later): different bytes, same frames.
    frames = read_frames(original, 0.0, 6.0, side=480)[start_frame:]
    copy = write_video(tmp_path / "copy.mp4", frames, codec_preset="veryfast")
    assert copy.read_bytes() != original.read_bytes()
    again = checker.check(copy)
    assert ReasonCode.VIDEO_DUPLICATE in again.reasons
    other = checker.check(data_dir / "videos/liveportrait_driving_d0.mp4")
    assert ReasonCode.VIDEO_DUPLICATE not in other.reasons


def test_new_recording_in_the_same_place_is_not_a_duplicate(checker: LivenessChecker, data_dir: Path) -> None:
    """A retry by the same person at the same desk must not count as a replay: the two halves of one
    talking-head recording stand in for two recordings (the old 8×8 whole-frame hash called them duplicates)."""
    result = checker.check(data_dir / "videos/liveportrait_driving_d13.mp4")
    h = result.frame_hashes
    assert len(h) > 40  # 4 per second
    first, second = h[: len(h) // 2], h[len(h) // 2 :]
    assert not near_duplicate(first, second)
    # A part of the same recording does line up with the whole.
    assert near_duplicate(h, h[5:25])


def test_hashes_ignore_flat_regions(data_dir: Path) -> None:
    frames = read_frames(data_dir / "videos/liveportrait_driving_d0.mp4", 0.0, 0.2)
    a = grid_hash(frame_thumb(frames[0]))
    # Re-encoding noise on the green screen does not flip bits; different content does.
    noisy = np.clip(frames[0].astype(np.int16) + np.random.default_rng(0).integers(-3, 4, frames[0].shape), 0, 255)
    assert hamming(a, grid_hash(frame_thumb(noisy.astype(np.uint8)))) <= 4
    other = read_frames(data_dir / "spoof/videos/lestari15_real.mp4", 0.0, 0.1)[0]
    assert hamming(a, grid_hash(frame_thumb(other))) > 40
    hasher = BinnedHasher()
    for i, f in enumerate(frames):
        hasher.add(i / 25, frame_thumb(f))
    assert len(hasher.hashes()) == 1 + int((len(frames) - 1) / 25 // 0.25)


def _fps(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        rate = c.streams.video[0].average_rate
        assert rate is not None
        return float(rate)


@pytest.mark.parametrize("speed", [0.6, 0.75, 1.25, 1.6], ids=lambda s: f"setpts_{s}")
def test_retimed_replay_is_near_duplicate(
    checker: LivenessChecker, data_dir: Path, tmp_path: Path, speed: float
) -> None:
    """The same recording played faster or slower (ffmpeg ``setpts=speed*PTS``: every frame kept, timestamps
    scaled) is caught: the old check compared time bins 1:1 and let 0.6× through."""
    original = data_dir / "videos/liveportrait_source_s18.mp4"
    assert ReasonCode.VIDEO_DUPLICATE not in checker.check(original).reasons
    frames = read_frames(original, 0.0, 8.0, side=480)
    copy = write_video(tmp_path / "retimed.mp4", frames, fps=round(_fps(original) / speed), codec_preset="veryfast")
    assert ReasonCode.VIDEO_DUPLICATE in checker.check(copy).reasons


def test_retimed_to_another_frame_rate_is_near_duplicate(
    checker: LivenessChecker, data_dir: Path, tmp_path: Path
) -> None:
    """Resampled to 30 fps at 1.25× speed (frames dropped and repeated), trimmed at the start."""
    original = data_dir / "videos/liveportrait_driving_d3.mp4"
    assert ReasonCode.VIDEO_DUPLICATE not in checker.check(original).reasons
    frames = read_frames(original, 0.3, 9.0, side=480)
    step = 1.25 * _fps(original) / 30
    resampled = [frames[int(i * step)] for i in range(int(len(frames) / step))]
    copy = write_video(tmp_path / "resampled.mp4", resampled, fps=30, codec_preset="veryfast")
    assert ReasonCode.VIDEO_DUPLICATE in checker.check(copy).reasons
