"""Video intake under hostile input: only documented reason codes come out, and decoding work stays bounded.

The clips are real: the first 2.5 s of a shared-data selfie video, re-encoded small as MP4 (H.264) and WebM
(VP8) so that every example decodes in milliseconds. Hypothesis flips bits, cuts, overwrites, rewrites
timestamps and swaps containers; bombs come from ``fuzz.bombs``.
"""

from __future__ import annotations

import io
import re
import resource
import struct
import time
from pathlib import Path
from typing import cast

import av
import pytest
from av.video.stream import VideoStream
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz import bombs
from fuzz.common import fuzz_settings
from pipelines.errors import MediaError, PipelineError
from pipelines.liveness.video import SamplingConfig, VideoLimits, VideoReader, probe_video
from pipelines.reasons import ReasonCode
from tests.pipelines.liveness.videos import fit, read_frames, write_video

DOCUMENTED = {
    ReasonCode.MEDIA_CORRUPT,
    ReasonCode.MEDIA_UNSUPPORTED,
    ReasonCode.MEDIA_TOO_LARGE,
    ReasonCode.VIDEO_TOO_SHORT,
    ReasonCode.VIDEO_TOO_LONG,
    ReasonCode.VIDEO_FRAME_RATE_TOO_HIGH,
}
LIMITS = VideoLimits()
# Frames a clip within the limits can yield at most: the duration limit times the highest sampling rate.
MAX_SAMPLED = int((LIMITS.max_duration_s + 0.5) * SamplingConfig().sample_fps_blink) + 2


def intake(data: bytes, limits: VideoLimits = LIMITS) -> ReasonCode | None:
    """Open, validate and sample a video as the liveness checker does: None when accepted, else the reason."""
    start = time.process_time()
    try:
        probe_video(data, limits)  # the upload-time check: the same documented codes, never anything else
    except PipelineError as exc:
        assert isinstance(exc, MediaError) and exc.reason in DOCUMENTED, exc
    try:
        reader = VideoReader(data, limits, SamplingConfig())
        try:
            n = sum(1 for _ in reader.frames())
        finally:
            reader.close()
        assert 0 < n <= MAX_SAMPLED
        return None
    except PipelineError as exc:
        assert isinstance(exc, MediaError) and exc.reason in DOCUMENTED, exc
        return exc.reason
    finally:
        # A hang guard, not a speed target: a small clip must never turn into long decoding work.
        assert time.process_time() - start < 20


@pytest.fixture(scope="module")
def clips(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    frames = fit(read_frames(data_dir / "videos/liveportrait_source_s18.mp4", end_s=2.5, side=320), 240, 240)
    out = tmp_path_factory.mktemp("fuzzclips")
    mp4 = write_video(out / "clip.mp4", frames, fps=15).read_bytes()
    webm = write_video(out / "clip.webm", frames, fps=15, codec="libvpx").read_bytes()
    return {"mp4": mp4, "webm": webm}


def remux(data: bytes, fmt: str, pts_scale: float = 1.0, codec: str | None = None) -> bytes:
    """The clip's packets in another container (or re-encoded for formats that need another codec), with
    timestamps scaled by ``pts_scale``."""
    out = io.BytesIO()
    with av.open(io.BytesIO(data), "r") as src, av.open(out, "w", format=fmt) as dst:
        s_in = src.streams.video[0]
        if codec is None:
            s_out = dst.add_stream_from_template(s_in)
            for packet in src.demux(s_in):
                if packet.dts is None:
                    continue
                packet.pts = int(packet.pts * pts_scale) if packet.pts is not None else None
                packet.dts = int(packet.dts * pts_scale)
                packet.stream = s_out
                dst.mux(packet)
        else:
            enc = cast(VideoStream, dst.add_stream(codec, rate=15))
            enc.width, enc.height = s_in.codec_context.width, s_in.codec_context.height
            enc.pix_fmt = {"gif": "rgb8", "mjpeg": "yuvj420p"}.get(codec, "yuv420p")
            for frame in src.decode(s_in):
                for packet in enc.encode(frame.reformat(format=enc.pix_fmt)):
                    dst.mux(packet)
            for packet in enc.encode():
                dst.mux(packet)
    return out.getvalue()


def test_clean_clips_are_accepted(clips: dict[str, bytes]) -> None:
    assert intake(clips["mp4"]) is None and intake(clips["webm"]) is None


@fuzz_settings(short=60, long=5000)
@given(st.binary(max_size=8192))
@example(b"")
@example(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
@example(b"\x1a\x45\xdf\xa3" + b"\xff" * 64)
def test_random_bytes(data: bytes) -> None:
    assert intake(data) in DOCUMENTED


@fuzz_settings(short=60, long=3000)
@given(st.sampled_from(["mp4", "webm"]), st.data())
def test_damaged_real_videos(clips: dict[str, bytes], kind: str, data: st.DataObject) -> None:
    buf = bytearray(clips[kind])
    # Headers hold the structure: half the damage lands in the first 4 KiB.
    for _ in range(data.draw(st.integers(1, 12))):
        end = 4096 if data.draw(st.booleans()) else len(buf)
        pos = data.draw(st.integers(0, min(end, len(buf)) - 1))
        if data.draw(st.booleans()):
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        else:
            chunk = data.draw(st.binary(min_size=1, max_size=32))
            buf[pos : pos + len(chunk)] = chunk
    cut = data.draw(st.integers(0, len(buf)))
    reason = intake(bytes(buf[: max(cut, 1)]))
    assert reason is None or reason in DOCUMENTED


@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.3, 0.6])
@pytest.mark.parametrize("kind", ["mp4", "webm"])
def test_truncated_real_videos_are_corrupt_or_short(clips: dict[str, bytes], kind: str, fraction: float) -> None:
    data = clips[kind]
    reason = intake(data[: max(1, int(len(data) * fraction))])
    assert reason in {ReasonCode.MEDIA_CORRUPT, ReasonCode.MEDIA_UNSUPPORTED, ReasonCode.VIDEO_TOO_SHORT}


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [("avi", None), ("flv", None), ("mpegts", None), ("gif", "gif"), ("mjpeg", "mjpeg"), ("avi", "mjpeg")],
)
def test_wrong_containers_and_codecs_are_unsupported(clips: dict[str, bytes], fmt: str, codec: str | None) -> None:
    source = clips["webm"] if fmt == "avi" else clips["mp4"]  # AVI cannot hold MP4's H.264 as is
    assert intake(remux(source, fmt, codec=codec)) is ReasonCode.MEDIA_UNSUPPORTED


@pytest.mark.parametrize(
    ("scale", "reason"),
    [(400.0, ReasonCode.VIDEO_TOO_LONG), (1e6, ReasonCode.VIDEO_TOO_LONG), (0.01, ReasonCode.VIDEO_TOO_SHORT)],
    ids=["400x_slower", "1e6x_slower", "100x_faster"],
)
@pytest.mark.parametrize("fmt", ["mp4", "matroska"])
def test_absurd_frame_rates(clips: dict[str, bytes], fmt: str, scale: float, reason: ReasonCode) -> None:
    """The same frames stretched over hours or squeezed into milliseconds (timestamps rewritten)."""
    assert intake(remux(clips["mp4"], fmt, pts_scale=scale)) is reason


def _matroska_duration(data: bytes, seconds: float) -> bytes:
    """The clip with its Segment Info Duration (EBML 0x4489, 8-byte float, in ms) set to `seconds`."""
    buf = bytearray(data)
    m = re.search(b"\x44\x89\x88", bytes(buf))
    assert m is not None
    buf[m.end() : m.end() + 8] = struct.pack(">d", seconds * 1000)
    return bytes(buf)


@pytest.mark.parametrize(
    ("seconds", "reason"),
    [(1e12, ReasonCode.VIDEO_TOO_LONG), (3600.0, ReasonCode.VIDEO_TOO_LONG), (0.001, ReasonCode.VIDEO_TOO_SHORT)],
)
def test_absurd_declared_durations(clips: dict[str, bytes], seconds: float, reason: ReasonCode) -> None:
    assert intake(_matroska_duration(clips["webm"], seconds)) is reason


def test_zero_frames(clips: dict[str, bytes]) -> None:
    """A container with a video track and no frame at all."""
    out = io.BytesIO()
    with av.open(io.BytesIO(clips["webm"])) as src, av.open(out, "w", format="webm") as dst:
        dst.add_stream_from_template(src.streams.video[0])
    assert intake(out.getvalue()) in {ReasonCode.MEDIA_CORRUPT, ReasonCode.MEDIA_UNSUPPORTED}


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_huge_declared_dimensions_are_refused_before_decoding() -> None:
    data = bombs.vp8_declaring(16383, 16383)  # 268 Mpixel frames in a 3 KB file
    before = _peak_kib()
    assert intake(data) is ReasonCode.MEDIA_TOO_LARGE
    assert _peak_kib() - before < 30 * 1024  # one such frame would take 400 MB


def test_frames_larger_than_the_container_says_are_not_decoded() -> None:
    """The track header says 256x256, the VP8 frames are 640x640: the decoder refuses them (max_pixels)."""
    data = bombs.webm_hiding_frames(640, 256)
    limits = VideoLimits(max_pixels=300 * 300)
    assert intake(data, limits) in {ReasonCode.MEDIA_CORRUPT, ReasonCode.MEDIA_TOO_LARGE}
    assert intake(bombs.webm(256, 256), limits) is None  # the same intake takes an honest 256x256 clip


def test_frames_a_little_larger_than_the_container_says_are_refused_by_the_frame_check() -> None:
    """The decoder's limit leaves room for its padding (the container's size plus 128 a side): a bitstream within
    that room but over `max_pixels` decodes one frame and is refused by this module's own check, as too large."""
    limits = VideoLimits(max_pixels=256 * 256)
    assert intake(bombs.webm_hiding_frames(264, 256), limits) is ReasonCode.MEDIA_TOO_LARGE
    assert intake(bombs.webm(256, 256), limits) is None


REGRESSIONS = sorted((Path(__file__).parents[3] / "fuzz/regressions/video_intake").glob("*"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_inputs_the_fuzzers_found(path: Path) -> None:
    """Every input atheris or hypothesis once crashed the intake with (kept in fuzz/regressions/)."""
    assert intake(path.read_bytes()) in DOCUMENTED


@pytest.mark.parametrize(
    ("fmt", "frames", "per_second"),
    [("mp4", 2000, 1000), ("matroska", 10_000, 5000)],
    ids=["mp4_4k_1000fps", "matroska_4k_5_frames_per_timestamp"],
)
def test_frame_bombs_are_refused_before_their_frames_are_decoded(fmt: str, frames: int, per_second: int) -> None:
    """Flat 4K frames of a few dozen bytes each, a thousand per second of video (or five per millisecond timestamp
    in Matroska): the upload probe refuses them, and so does the worker's decode for whatever passes the probe, both
    after about a hundred packets (review: media 1; the 20,000-frame clip cost the worker 80+ CPU-s)."""
    data = bombs.frame_bomb(3840, 2160, frames, per_second, fmt)
    start = time.process_time()
    with pytest.raises(MediaError) as probed:
        probe_video(data)
    assert probed.value.reason is ReasonCode.MEDIA_TOO_LARGE
    reader = VideoReader(data, LIMITS, SamplingConfig())
    with pytest.raises(MediaError) as decoded:
        for _ in reader.frames():
            pass
    reader.close()
    assert decoded.value.reason is ReasonCode.MEDIA_TOO_LARGE
    assert reader.info.frames_decoded < 150
    assert time.process_time() - start < 4


def test_small_frames_at_an_absurd_rate_are_refused() -> None:
    """Small frames cost little each, but 2,000 per second is no camera's: refused by the packet rate."""
    data = bombs.frame_bomb(320, 240, 4000, 2000)
    with pytest.raises(MediaError) as probed:
        probe_video(data)
    assert probed.value.reason is ReasonCode.VIDEO_FRAME_RATE_TOO_HIGH  # before: MEDIA_UNSUPPORTED, 文件格式不支持
    assert intake(data) is ReasonCode.VIDEO_FRAME_RATE_TOO_HIGH


@pytest.mark.parametrize(
    ("width", "height", "fps", "rotation"),
    [(3840, 2160, 60, -90), (2160, 3840, 30, None), (1080, 1920, 60, None), (1280, 720, 240, None)],
    # 4k30_portrait_upright: exactly `max_pixels`, refused as corrupt before (the decoder's max_pixels counted its
    # padded width, 2176; video.VideoReader._decoder_max_pixels).
    ids=["4k60_portrait_rotated", "4k30_portrait_upright", "1080p60_portrait", "720p240_slow_motion"],
)
def test_phone_clips_at_the_highest_rates_pass_the_decode_budget(
    data_dir: Path, tmp_path: Path, width: int, height: int, fps: int, rotation: int | None
) -> None:
    """What phones record (4K at 60 fps, sideways with a rotation, 1080p portrait at 60 fps, slow motion at 240 fps)
    stays within the frame and pixel rates, in the probe and in the worker's decode."""
    frames = fit(read_frames(data_dir / "videos/liveportrait_source_s18.mp4", end_s=0.6, side=640), width, height)
    count = round(1.6 * fps)
    clip = write_video(tmp_path / "phone.mp4", (frames[k % len(frames)] for k in range(count)), fps, rotation)
    assert intake(clip.read_bytes()) is None
