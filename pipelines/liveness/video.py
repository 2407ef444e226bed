"""Video intake: decode a selfie video with PyAV, under limits, into sparsely sampled BGR frames.

Only what the analysis needs is decoded and converted: non-reference frames are skipped by the decoder
(B-frames are never needed at our sampling rate), and each kept frame is scaled and converted to BGR in
one swscale pass straight to the analysis resolution. Rotation metadata (phones record sideways) is applied
to the small frame. Every failure becomes a MediaError with a reason code; nothing else escapes.
"""

from __future__ import annotations

import io
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipelines.errors import MediaError
from pipelines.liveness.replay import BinnedHasher, frame_thumb
from pipelines.reasons import ReasonCode
from pipelines.sniff import sniff
from pipelines.stop import ShouldStop, checkpoint, current

log = logging.getLogger(__name__)

# Containers a phone or browser produces. Image "demuxers" (jpeg_pipe, png_pipe, image2...) are refused:
# a still photo renamed .mp4 must never pass as a one-frame video.
ALLOWED_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
# Pixels a side FFmpeg may pad a frame's buffer by when it checks `max_pixels` (its alignment: 64 or less).
DECODER_PADDING = 128
ALLOWED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "libvpx", "libvpx-vp9", "mpeg4"})


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 30 * 1024 * 1024
    min_duration_s: float = 1.5
    max_duration_s: float = 20.0
    max_pixels: int = 3840 * 2160
    min_side: int = 120
    # Truncated uploads: refuse when the decodable part is much shorter than the container claims.
    min_decoded_fraction: float = 0.8
    # Decoding work per second of video (`DecodeBudget`). A 2.6 MB MP4 held 20,000 one-colour 4K frames (1,000 fps)
    # and a Matroska file 20,000 frames on equal timestamps: both passed the upload probe and each cost a worker
    # 80-93 CPU-s (review: media 1). Counted in packets (frames), not timestamps. Phones record at most 60 fps
    # (120-240 fps only in slow motion), so `max_fps` only refuses what no camera makes.
    max_fps: float = 240.0
    # Pixels decoded per second of video: 4K (`max_pixels`) at 60 fps, plus a tenth for variable-rate phone clips
    # (1080p at 240 fps is the same rate). Costlier clips are no recordings of a face.
    max_pixel_rate: float = 3840 * 2160 * 66.0
    # The allowance of video time the budget starts with (a first GOP, reordered frames, a short clip).
    budget_allowance_s: float = 1.5


@dataclass(frozen=True)
class SamplingConfig:
    # Blinks last 100-300 ms and need dense samples; turns, nods and mouth opening last half a second or more.
    sample_fps: float = 6.0
    sample_fps_blink: float = 10.0
    # Longest side of analysis frames; faces in selfie videos stay well above 100 px at this size.
    analysis_side: int = 640
    skip_nonref: bool = True
    # Skipping the H.264/HEVC deblocking filter saves about a fifth of decode time; its 8-px block edges
    # vanish when faces are scaled down to the 80-192 px network inputs.
    skip_loop_filter: bool = True
    threads: int = 1


@dataclass
class Frame:
    """One sampled frame: time in seconds from the first frame, BGR uint8 at analysis resolution."""

    index: int
    t: float
    image: np.ndarray


@dataclass
class VideoInfo:
    container: str
    codec: str
    width: int
    height: int
    rotation: int
    declared_duration_s: float | None
    duration_s: float = 0.0
    frames_decoded: int = 0


class DecodeBudget:
    """The decoding work a clip may cost, applied packet by packet by the upload probe and by the worker's decode
    alike: never more than `max_fps` packets nor `max_pixel_rate` pixels per second of video the packets' timestamps
    have reached (plus `budget_allowance_s`). Counting packets, not time, catches frames stacked on one timestamp;
    refusing as soon as the budget is spent keeps a hostile clip's cost within a real 4K clip's."""

    def __init__(self, limits: VideoLimits, width: int, height: int) -> None:
        self.limits = limits
        self.frame_pixels = width * height
        self.packets = 0
        self.pixels = 0
        self._first: float | None = None
        self._last = 0.0

    def charge(self, packet: av.Packet[Any]) -> None:
        """Count one (non-empty) packet; MediaError once the clip costs more than its video time allows."""
        if packet.pts is not None and packet.time_base is not None:
            t = float(packet.pts * packet.time_base)
            self._first = t if self._first is None else min(self._first, t)
            self._last = max(self._last, t)
        self.packets += 1
        self.pixels += self.frame_pixels
        seconds = self._last - (self._first if self._first is not None else self._last)
        seconds = min(seconds, self.limits.max_duration_s + 0.5) + self.limits.budget_allowance_s
        if self.packets > self.limits.max_fps * seconds:
            raise MediaError(
                ReasonCode.VIDEO_FRAME_RATE_TOO_HIGH,
                f"{self.packets} frames in {seconds:.2f} s of video: more than {self.limits.max_fps:g} per second",
            )
        if self.pixels > self.limits.max_pixel_rate * seconds:
            raise MediaError(
                ReasonCode.MEDIA_TOO_LARGE,
                f"{self.pixels} pixels to decode in {seconds:.2f} s of video: more than {self.limits.max_pixel_rate:g}"
                " per second",
            )

    def frame(self, width: int, height: int) -> None:
        """A decoded frame's real size (a bitstream may change it mid-stream): later packets are charged at it."""
        self.frame_pixels = max(self.frame_pixels, width * height)


_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska / WebM


def looks_like_video(data: bytes) -> bool:
    """True when the bytes start like an MP4/MOV or Matroska/WebM file (whatever follows)."""
    return data[4:8] in _MP4_BOXES or data[:4] == _EBML_MAGIC


def _open(data: bytes) -> av.container.InputContainer:
    if not data:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, "empty file")
    try:
        return av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        # A video header that cannot be opened is a damaged upload (e.g. an MP4 cut before its index);
        # anything else is simply not a video.
        if looks_like_video(data):
            raise MediaError(ReasonCode.MEDIA_CORRUPT, f"damaged or truncated video: {exc}") from exc
        # Name what the bytes are, not FFmpeg's errno text about an unnamed stream ("'<none>'").
        detail = f"not a recognised video container: {sniff(data).name}"
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, detail) from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot open video: {exc}") from exc


def read_bytes(video: bytes | Path | str, limits: VideoLimits) -> bytes:
    if isinstance(video, bytes | bytearray | memoryview):
        data = bytes(video)
    else:
        p = Path(video)
        try:
            size = p.stat().st_size
            if size > limits.max_bytes:
                raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{size} bytes > {limits.max_bytes}")
            data = p.read_bytes()
        except OSError as exc:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot read {p}: {exc.strerror}") from exc
    if not data:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, "empty file")
    if len(data) > limits.max_bytes:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{len(data)} bytes > {limits.max_bytes}")
    return data


def _analysis_size(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height))
    # Even sizes keep swscale on its fast paths.
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class VideoReader:
    """Opens and validates one video; ``frames()`` yields the sampled frames and fills ``info``.

    ``should_stop`` (default: the check of the caller's ``pipelines.stop`` scope, kept here so that the decoding
    thread of ``BackgroundFrames`` checks it too) is asked before each packet is decoded: ``Stopped`` once true."""

    def __init__(
        self, data: bytes, limits: VideoLimits, sampling: SamplingConfig, should_stop: ShouldStop | None = None
    ) -> None:
        self.limits = limits
        self.sampling = sampling
        self.should_stop = should_stop if should_stop is not None else current()
        self.hasher = BinnedHasher()
        self._size = len(data)
        self.container = _open(data)
        try:
            self.info = self._validate()
        except BaseException:
            self.container.close()
            raise

    def _validate(self) -> VideoInfo:
        c = self.container
        fmt = c.format.name
        if fmt not in ALLOWED_CONTAINERS:
            raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"container {fmt!r} is not a video format we accept")
        if not c.streams.video:
            raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, "no video stream")
        stream = c.streams.video[0]
        if stream.codec_context is None:  # a codec FFmpeg has no decoder for (found by atheris)
            raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, "video codec without a decoder")
        codec = stream.codec_context.name
        if codec not in ALLOWED_CODECS:
            raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"video codec {codec!r} is not accepted")
        w, h = int(stream.codec_context.width), int(stream.codec_context.height)
        if w <= 0 or h <= 0:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, "video stream has no frame size")
        if w * h > self.limits.max_pixels:
            raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{w}x{h} pixels")
        if min(w, h) < self.limits.min_side:
            raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"{w}x{h} is too small")
        declared: float | None = None
        if c.duration is not None and c.duration > 0:
            declared = c.duration / 1_000_000
        elif stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
        if declared is not None:
            if declared > self.limits.max_duration_s + 0.5:
                raise MediaError(ReasonCode.VIDEO_TOO_LONG, f"{declared:.1f} s > {self.limits.max_duration_s} s")
            if declared < self.limits.min_duration_s:
                raise MediaError(ReasonCode.VIDEO_TOO_SHORT, f"{declared:.2f} s < {self.limits.min_duration_s} s")
        return VideoInfo(fmt, codec, w, h, 0, declared)

    def close(self) -> None:
        self.container.close()

    def frames(self) -> Iterator[Frame]:
        """Sampled frames at about ``sample_fps``; raises MediaError for undecodable or out-of-limit video."""
        stream = self._decoder()
        period = 1.0 / self.sampling.sample_fps
        t0: float | None = None
        next_t = 0.0
        last_t = 0.0
        index = 0
        size: tuple[int, int] | None = None
        try:
            for frame in self._decode(stream):
                if frame.time is None:
                    continue
                if t0 is None:
                    t0 = float(frame.time)
                    self.info.rotation = rotation_degrees(frame.rotation)
                t = float(frame.time) - t0
                self.info.frames_decoded += 1
                last_t = max(last_t, t)
                if t > self.limits.max_duration_s + 0.5:
                    raise MediaError(ReasonCode.VIDEO_TOO_LONG, f"more than {self.limits.max_duration_s} s")
                # Small tolerance so that a 30 fps stream sampled at 10 fps keeps every third frame.
                if t + 0.25 / self.sampling.sample_fps < next_t:
                    continue
                next_t = max(next_t + period, t + 0.5 * period)
                if size is None:
                    size = _analysis_size(frame.width, frame.height, self.sampling.analysis_side)
                image: np.ndarray = frame.reformat(width=size[0], height=size[1], format="bgr24").to_ndarray()
                if self.info.rotation:
                    image = np.ascontiguousarray(np.rot90(image, k=self.info.rotation // 90))
                # Replay hashes from the sampled frames (as displayed, i.e. after rotation).
                self.hasher.add(t, frame_thumb(image))
                yield Frame(index, t, image)
                index += 1
        except MediaError:
            raise
        except (av.error.FFmpegError, OSError, ValueError, MemoryError) as exc:
            if index == 0:
                raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot decode video: {exc}") from exc
            # A damaged tail: judge by how much of the video decoded (checked below).
            log.warning("video decoding stopped at %.2f s: %s", last_t, exc)
        if index == 0:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, "no decodable video frame")
        frame_period = last_t / max(self.info.frames_decoded - 1, 1)
        self.info.duration_s = last_t + frame_period
        self._check_duration()

    def _decoder_max_pixels(self) -> str:
        """The decoder's `max_pixels` option: the limit, or the container's frame size with room for the padding
        FFmpeg counts in it (the width aligned for SIMD, 2160 to 2176; the height to whole macroblocks), whichever is
        more. At the limit alone, a 4K portrait clip stored upright (2160x3840: exactly `max_pixels`) was refused
        as corrupt. The real size stays bounded by this module: the container's (`_validate`) and every decoded
        frame's (`_decode`, `probe`: MEDIA_TOO_LARGE) against `max_pixels`, and the rate by `DecodeBudget`."""
        padded = (self.info.width + DECODER_PADDING) * (self.info.height + DECODER_PADDING)
        return str(max(self.limits.max_pixels, padded))

    def _decoder(self) -> av.video.stream.VideoStream:
        """The video stream, its decoder set up as every decode of this module runs it."""
        stream = self.container.streams.video[0]
        # The container's frame size was checked, but the bitstream may declare a larger one: the decoder itself
        # refuses frames over the pixel limit, before allocating them (a decompression bomb otherwise).
        options = {"max_pixels": self._decoder_max_pixels()}
        if self.sampling.skip_loop_filter:
            options["skip_loop_filter"] = "all"
        stream.codec_context.options = options
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = self.sampling.threads
        if self.sampling.skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        return stream

    def frame_at(self, at_s: float) -> np.ndarray | None:
        """The first frame at or after `at_s` (seconds on the stream's clock, as `av.VideoFrame.time`), full size and
        BGR, None when the video ends before. The decoder seeks to the key frame before `at_s` and runs as in
        `frames()`, under the same `DecodeBudget`: a case picture of a stored frame bomb costs no more than its refusal
        in the worker (the staff console decoded every frame from the first, without limits: review media 4)."""
        stream = self._decoder()
        if at_s > 0 and stream.time_base is not None:
            try:
                self.container.seek(int(at_s / stream.time_base), backward=True, any_frame=False, stream=stream)
            except av.error.FFmpegError as exc:  # a file without an index: decoded from where it stands
                log.info("video not seekable (%s): decoded from where it stands", type(exc).__name__)
        try:
            for frame in self._decode(stream):
                if frame.time is not None and frame.time >= at_s - 1e-3:
                    return np.ascontiguousarray(frame.to_ndarray(format="bgr24"))
        except MediaError:
            raise
        except (av.error.FFmpegError, OSError, ValueError, MemoryError) as exc:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot decode video: {exc}") from exc
        return None

    def _decode(self, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        """The stream's frames, every packet charged to the clip's `DecodeBudget` before it is decoded."""
        budget = DecodeBudget(self.limits, self.info.width, self.info.height)
        for packet in self.container.demux(stream):
            if self.should_stop is not None:
                checkpoint(self.should_stop)  # a safe point: between two packets nothing is half done
            if packet.size:  # not the demuxer's final empty packet (which flushes the decoder)
                budget.charge(packet)
            for frame in packet.decode():
                if frame.width * frame.height > self.limits.max_pixels:  # a decoder that ignores max_pixels
                    raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"frame of {frame.width}x{frame.height} pixels")
                budget.frame(frame.width, frame.height)
                yield frame

    def probe(self, first_frames: int = 2) -> VideoInfo:
        """The cheap check an upload gets (no full decode): every packet of the video stream demuxes whole
        (inside the file, not flagged corrupt), the first frames decode, and the packets span what the full
        decode in ``frames()`` will require (the declared duration's ``min_decoded_fraction``, the minimum
        duration). A video cut short (its index at the start, the tail gone) or with a damaged start is a
        MediaError here, before anything is stored or counted; what passes may still fail later."""
        stream = self.container.streams.video[0]
        ctx = stream.codec_context
        ctx.options = {"max_pixels": self._decoder_max_pixels()}
        stream.thread_type = "SLICE"
        ctx.thread_count = 1
        decoded = 0
        packets = 0
        first_t: float | None = None
        last_t = 0.0
        budget = DecodeBudget(self.limits, self.info.width, self.info.height)  # the worker's, refused here already
        try:
            for packet in self.container.demux(stream):
                if packet.size == 0:  # the demuxer's final empty packet
                    continue
                if packet.is_corrupt or (packet.pos is not None and packet.pos + packet.size > self._size):
                    raise MediaError(ReasonCode.MEDIA_CORRUPT, f"damaged or truncated video packet at {packet.pos}")
                budget.charge(packet)
                if packet.pts is not None and packet.time_base is not None:
                    t = float(packet.pts * packet.time_base)
                    first_t = t if first_t is None else min(first_t, t)
                    last_t = max(last_t, t)
                    packets += 1
                if decoded < first_frames:
                    for frame in packet.decode():
                        if frame.width * frame.height > self.limits.max_pixels:
                            raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"frame of {frame.width}x{frame.height}")
                        decoded += 1
            if decoded == 0:
                decoded = len(ctx.decode(None))  # frames the decoder still holds (reordering delay)
        except MediaError:
            raise
        except (av.error.FFmpegError, OSError, ValueError, MemoryError) as exc:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot decode video: {exc}") from exc
        if decoded == 0 or first_t is None:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, "no decodable video frame")
        span = last_t - first_t
        self.info.frames_decoded = decoded
        self.info.duration_s = span + span / max(packets - 1, 1)  # as frames() measures: one frame period more
        self._check_duration()
        return self.info

    def _check_duration(self) -> None:
        dur = self.info.duration_s
        declared = self.info.declared_duration_s
        if declared is not None and dur < self.limits.min_decoded_fraction * declared - 0.2:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, f"only {dur:.2f} s of {declared:.2f} s decodable (truncated?)")
        if dur < self.limits.min_duration_s:
            raise MediaError(ReasonCode.VIDEO_TOO_SHORT, f"{dur:.2f} s < {self.limits.min_duration_s} s")


def decode_all(data: bytes, limits: VideoLimits | None = None, sampling: SamplingConfig | None = None) -> VideoReader:
    """Decode every sampled frame of a video as the liveness stage would (raising its MediaErrors); the closed
    reader keeps what was learnt: ``info`` and the replay ``hasher``."""
    reader = VideoReader(data, limits or VideoLimits(), sampling or SamplingConfig())
    try:
        for _ in reader.frames():
            pass
    finally:
        reader.close()
    return reader


def probe_video(data: bytes, limits: VideoLimits | None = None) -> VideoInfo:
    """Upload-time check of a video: opens, validates and cheaply probes it (see ``VideoReader.probe``);
    MediaError with a reason code otherwise. Milliseconds for a 10 s clip: only the first frames are decoded."""
    reader = VideoReader(data, limits or VideoLimits(), SamplingConfig(threads=1))
    try:
        return reader.probe()
    finally:
        reader.close()


def frame_at(data: bytes, at_s: float = 0.0, of_length: float | None = None) -> np.ndarray | None:
    """One full-size BGR frame of a stored video (`VideoReader.frame_at`): at `at_s` seconds, or at the `of_length`
    part of its declared length (the first frame when it declares none); MediaError for a video the intake refuses."""
    reader = VideoReader(data, VideoLimits(), SamplingConfig(threads=1))
    try:
        if of_length is not None:
            at_s = of_length * (reader.info.declared_duration_s or 0.0)
        return reader.frame_at(at_s)
    finally:
        reader.close()


def rotation_degrees(frame_rotation: float | None) -> int:
    """PyAV's display-matrix rotation (counter-clockwise degrees) as 0/90/180/270, for ``np.rot90``."""
    if frame_rotation is None or math.isnan(frame_rotation):
        return 0
    return round(frame_rotation / 90.0) % 4 * 90


class BackgroundFrames:
    """Iterate a reader's frames decoded on a worker thread, so decoding overlaps model inference.

    PyAV and ONNX Runtime both release the GIL in their native code, so on two cores the decoder and
    the networks really run side by side. Errors raised while decoding are re-raised in the consumer.
    """

    _DONE = object()

    def __init__(self, reader: VideoReader, prefetch: int = 6) -> None:
        self.reader = reader
        self._queue: queue.Queue[object] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        # CPU seconds the decoding thread used (known once all frames are delivered).
        self.cpu_s = 0.0
        self._thread = threading.Thread(target=self._work, name="liveness-decode", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        start = time.thread_time()
        try:
            for frame in self.reader.frames():
                if not self._put(frame):
                    return
            self.cpu_s = time.thread_time() - start
            self._put(self._DONE)
        except BaseException as exc:  # handed over to the consumer thread, re-raised there
            self._put(exc)

    def __iter__(self) -> Iterator[Frame]:
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Frame):
                    if self.reader.should_stop is not None:
                        checkpoint(self.reader.should_stop)  # the analysis of each frame, as slow as its decode
                    yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
