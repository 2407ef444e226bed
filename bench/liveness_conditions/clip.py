"""The clip types (``Source`` in, ``Clip`` out) and reading and writing video files with PyAV."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.video.stream import VideoStream

from bench.liveness_conditions.faces import EyeFn, detector_eyes, fill_and_smooth
from bench.liveness_conditions.imaging import Box, limit_side
from bench.liveness_data.cache import INDEX_COLUMNS

# The checker refuses < 1.5 s and > 20 s; keep well inside.
MIN_SECONDS = 2.0
MAX_SECONDS = 10.0
# Frames are processed at this long side at most: enough for 540x960 portrait output, and a 10 s clip stays
# under 400 MB in memory on a 2-core development machine.
WORK_SIDE = 960
# Generated rows use the fetched index's columns, so both CSVs feed the same evaluation.
CSV_COLUMNS = INDEX_COLUMNS
GENERATED_CSV = "presentations.generated.csv"


@dataclass
class Clip:
    """A derived clip and how to encode it; ``rotation`` is the display rotation (counter-clockwise degrees)."""

    frames: list[np.ndarray]
    fps: float
    codec: str = "libx264"
    container: str = "mp4"
    options: dict[str, str] = field(default_factory=lambda: {"preset": "veryfast", "crf": "23"})
    rotation: int = 0
    label: str = "real"
    attack_type: str = "none"
    condition: str = "clean"

    @property
    def extension(self) -> str:
        return "webm" if self.container == "webm" else "mp4"


@dataclass
class Source:
    """The input clip plus optional face information; detections are computed at most once and cached."""

    frames: list[np.ndarray]
    fps: float
    face_box: Box | None = None
    eyes: EyeFn | None = None
    _eye_track: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.frames[0].shape[:2]
        return w, h

    def box(self) -> Box:
        """The caller's face box, or where a selfie's face usually is: centred, a little above the middle."""
        if self.face_box is not None:
            return self.face_box
        w, h = self.size
        s = min(w, h)
        cx, cy, bw, bh = w / 2, 0.45 * h, 0.45 * s, 0.6 * s
        return cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2

    def eye_track(self) -> np.ndarray:
        """Eye centres per frame, shape (n, 2, 2), gaps interpolated and jitter smoothed (cached)."""
        if self._eye_track is None:
            fn = self.eyes or detector_eyes
            raw = np.full((len(self.frames), 2, 2), np.nan)
            for i, img in enumerate(self.frames):
                found = fn(i, img)
                if found is not None:
                    raw[i] = np.asarray(found, dtype=np.float64)
            self._eye_track = fill_and_smooth(raw)
        return self._eye_track


Generator = Callable[[Source, np.random.Generator], Clip]


def write(clip: Clip, path: Path) -> Path:
    """Encode with PyAV, bit-exact (no random WebM segment id, one encoder thread): the same frames give the same
    bytes within a process (across processes x264 wrote other bytes: docs/liveness_data.md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=clip.container, options={"fflags": "+bitexact"}) as out:
        stream = cast(VideoStream, out.add_stream(clip.codec, rate=Fraction(clip.fps).limit_denominator(1001)))
        h, w = clip.frames[0].shape[:2]
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.options = dict(clip.options)
        stream.codec_context.thread_count = 1  # two x264 threads gave different bytes now and then
        if clip.rotation:
            stream.set_display_rotation(clip.rotation)
        for img in clip.frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: h - h % 2, : w - w % 2]), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def read_video(path: Path, max_seconds: float = MAX_SECONDS, side: int = WORK_SIDE) -> tuple[list[np.ndarray], float]:
    """BGR frames as displayed (display rotation applied), long side ≤ ``side``, and the frame rate."""
    from pipelines.liveness.video import rotation_degrees

    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        t0: float | None = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t0 = frame.time if t0 is None else t0
            if frame.time - t0 >= max_seconds:
                break
            img = limit_side(frame.to_ndarray(format="bgr24"), side)
            k = rotation_degrees(frame.rotation) // 90
            frames.append(np.ascontiguousarray(np.rot90(img, k=k)) if k else img)
    return frames, fps


def displayed_frame(path: Path, at: float = 0.5) -> np.ndarray:
    """The frame at ``at`` of a written video, decoded and turned upright as the liveness reader shows it."""
    from pipelines.liveness.video import rotation_degrees

    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    frame = frames[min(len(frames) - 1, int(at * len(frames)))]
    img: np.ndarray = frame.to_ndarray(format="bgr24")
    k = rotation_degrees(frame.rotation) // 90
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img
