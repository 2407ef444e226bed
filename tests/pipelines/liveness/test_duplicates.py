"""The one duplicate-video policy (pipelines/liveness/duplicates.py): exact bytes or lined-up frame hashes, recorded
whatever the answer; the in-memory store and the service's store both decide by ``is_duplicate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.liveness.duplicates import (
    MIN_OVERLAP,
    InMemoryVideoFingerprintStore,
    check_and_record,
    is_duplicate,
    near_duplicate,
    video_sha256,
)
from pipelines.liveness.video import decode_all


@pytest.fixture(scope="module")
def hashes(data_dir: Path) -> dict[str, list[int]]:
    """Frame hashes of two different real recordings."""
    videos = data_dir / "videos"
    return {
        name: decode_all((videos / f"{name}.mp4").read_bytes()).hasher.hashes()
        for name in ("liveportrait_source_s18", "liveportrait_driving_d0")
    }


def test_same_bytes_are_a_duplicate_without_any_frame_hash() -> None:
    sha = video_sha256(b"video bytes")
    assert sha == video_sha256(b"video bytes") != video_sha256(b"other bytes")
    assert is_duplicate(sha, [], sha, [])
    assert not is_duplicate(sha, [], video_sha256(b"other bytes"), [])


def test_lined_up_frames_are_a_duplicate_other_bytes_or_not(hashes: dict[str, list[int]]) -> None:
    s18, d0 = hashes["liveportrait_source_s18"], hashes["liveportrait_driving_d0"]
    assert len(s18) >= MIN_OVERLAP and len(d0) >= MIN_OVERLAP
    # A trimmed copy of one recording (other bytes) is a near-duplicate; another recording is not.
    assert is_duplicate("a", s18, "b", s18[3:])
    assert near_duplicate(s18, s18[3:])
    assert not is_duplicate("a", s18, "b", d0)
    # Too short to judge, and a video without hashes (the service's row before the worker filled it in).
    assert not is_duplicate("a", s18[: MIN_OVERLAP - 1], "b", s18[: MIN_OVERLAP - 1])
    assert not is_duplicate("a", s18, "b", [])


def test_check_and_record_records_every_video(hashes: dict[str, list[int]]) -> None:
    store = InMemoryVideoFingerprintStore()
    s18, d0 = hashes["liveportrait_source_s18"], hashes["liveportrait_driving_d0"]
    assert not check_and_record(store, "first", s18)
    assert not check_and_record(store, "second", d0)
    assert check_and_record(store, "copy", s18[2:])  # near-duplicate of the first
    assert check_and_record(store, "second", [])  # exact: the same bytes again
    # The copy was recorded although it was a duplicate: the same bytes again are caught by their sha256.
    assert store.seen("copy", [])
    assert not store.seen("never seen", [])
