"""The video reader stops at its caller's request (pipelines/stop.py), between packets and between frames, in the
calling thread and in the decoding thread of ``BackgroundFrames`` alike; without a request it decodes everything."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipelines.liveness.video import BackgroundFrames, SamplingConfig, VideoLimits, VideoReader, decode_all
from pipelines.stop import Stopped, stop_when


@pytest.fixture(scope="module")
def clip(data_dir: Path) -> bytes:
    return (data_dir / "videos" / "liveportrait_source_s18.mp4").read_bytes()


class After:
    """A ``should_stop`` that says stop once it has been asked ``n`` times (from any thread)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.asked = 0
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            self.asked += 1
            return self.asked > self.n


def test_a_decode_in_a_stop_scope_stops_at_the_next_packet(clip: bytes) -> None:
    whole = decode_all(clip).info.frames_decoded  # outside any scope: nothing is checked
    check = After(30)
    reader = None
    with stop_when(check), pytest.raises(Stopped):
        reader = VideoReader(clip, VideoLimits(), SamplingConfig())
        for _ in reader.frames():
            pass
    assert reader is not None
    reader.close()
    assert check.asked == 31  # once a packet: stopped at the first check that said so
    assert 0 < reader.info.frames_decoded < whole


def test_the_decoding_thread_checks_the_reader_made_in_the_scope(clip: bytes) -> None:
    """BackgroundFrames decodes in a thread of its own, outside the caller's scope: the reader carries the check."""
    with stop_when(After(20)):
        reader = VideoReader(clip, VideoLimits(), SamplingConfig())
    frames = BackgroundFrames(reader)
    got = 0
    with pytest.raises(Stopped):
        for _ in frames:
            got += 1
    reader.close()
    assert 0 < got < 20
    assert not frames._thread.is_alive()  # the decoding thread ended with the run
