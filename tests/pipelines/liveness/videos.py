"""Test videos composed from the real dev videos with PyAV: clips, rotated, two faces, face swap, no face."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
from av.video.stream import VideoStream


def read_frames(path: Path, start_s: float = 0.0, end_s: float = 1e9, side: int = 640) -> list[np.ndarray]:
    """BGR frames of a video between two times, scaled so the longest side is at most ``side``."""
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        first: float | None = None
        for frame in container.decode(video=0):
            if frame.time is None:
                continue
            first = frame.time if first is None else first
            t = frame.time - first
            if t < start_s:
                continue
            if t > end_s:
                break
            img: np.ndarray = frame.to_ndarray(format="bgr24")
            scale = min(1.0, side / max(img.shape[:2]))
            if scale < 1.0:
                img = cv2.resize(img, (round(img.shape[1] * scale / 2) * 2, round(img.shape[0] * scale / 2) * 2))
            out.append(img)
    return out


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int = 30,
    rotation: int | None = None,
    codec: str = "libx264",
    codec_preset: str = "ultrafast",
) -> Path:
    """Encode BGR frames (all the same even size) as MP4; ``rotation`` sets the display-matrix metadata."""
    with av.open(str(path), "w") as container:
        stream = cast(VideoStream, container.add_stream(codec, rate=fps))
        stream.pix_fmt = "yuv420p"
        if codec in ("libx264", "libx265"):
            stream.options = {"preset": codec_preset, "crf": "23"}
        elif codec.startswith("libvpx"):
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        first = True
        for img in frames:
            if first:
                stream.width, stream.height = img.shape[1], img.shape[0]
                if rotation is not None:
                    stream.set_display_rotation(rotation)
                first = False
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def side_by_side(a: list[np.ndarray], b: list[np.ndarray], height: int = 360) -> list[np.ndarray]:
    """Two videos next to each other (two people in the frame)."""
    out = []
    for fa, fb in zip(a, b, strict=False):
        ra = cv2.resize(fa, (round(fa.shape[1] * height / fa.shape[0] / 2) * 2, height))
        rb = cv2.resize(fb, (round(fb.shape[1] * height / fb.shape[0] / 2) * 2, height))
        out.append(np.hstack([ra, rb]))
    return out


def fit(frames: list[np.ndarray], width: int, height: int) -> list[np.ndarray]:
    return [cv2.resize(f, (width, height)) for f in frames]
