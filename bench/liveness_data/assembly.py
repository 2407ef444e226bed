"""Assembly: the source frames or clip of one presentation decoded and written as one H.264 MP4."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np

from bench.liveness_data.snapshots import IntegrityError, sha256_hex

# Bump a source's entry when its assembly (timeline, scaling, encoder settings) changes: its cached videos are
# then rebuilt, the others kept.
ASSEMBLY_VERSION = {"replay_attack": "1", "nuaa": "2", "grid": "1", "elderly_talk": "1"}
# Sources whose presentation is one clip (re-encoded as it is), not a sequence of frames.
CLIP_SOURCES = ("grid", "elderly_talk")
CRF = "20"
PRESET = "superfast"

# Replay-Attack: 20 frames per video, evenly spaced over the whole original video (25 fps, 9.2-15 s), i.e.
# 0.48-0.79 s apart (src/prepare/build_frame_index.py). Each frame is held 3 output frames at 12 fps: 5.0 s.
RA_FPS, RA_HOLD = 12, 3
# NUAA: picNo counts frames of the 20 fps webcam capture, but real groups are often consecutive frames while
# imposter groups are sparse (every 4th-18th frame). Following the picNo timeline would make every spoof long and
# most reals short (duration would give the label away), so every stored frame is held 2 output frames at 20 fps
# (a new image every 0.1 s) whatever its picNo gap: duration depends only on the number of frames.
NUAA_FPS, NUAA_HOLD = 20, 2
# Sources whose longest side is below this are upscaled 2x (bicubic): Replay-Attack 320x240, GRID 360x288.
UPSCALE_BELOW = 480


def decode_image(blob: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise IntegrityError("a source image does not decode")
    return cast(np.ndarray, img)


def decode_video(blob: bytes) -> tuple[list[np.ndarray], float]:
    frames: list[np.ndarray] = []
    with av.open(io.BytesIO(blob), "r") as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
    return frames, rate


def _prepare(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) < UPSCALE_BELOW:
        h, w = 2 * h, 2 * w
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    if h % 2 or w % 2:
        img = img[: h - h % 2, : w - w % 2]
    return np.ascontiguousarray(img)


def encode_mp4(path: Path, frames: Iterable[np.ndarray], fps: int) -> int:
    """Write BGR frames as H.264 (yuv420p, CRF 20) MP4; returns the number of frames written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    n = 0
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": PRESET, "crf": CRF}
        stream.thread_count = 1
        for img in frames:
            if n == 0:
                stream.width, stream.height = img.shape[1], img.shape[0]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return n


def assemble(source: str, tokens: Sequence[str], blobs: Sequence[bytes], out: Path) -> tuple[int, int]:
    """Build the video of one presentation; returns (frames written, fps)."""
    if source in CLIP_SOURCES:
        if len(blobs) != 1:
            raise ValueError(f"a {source} presentation is exactly one clip")
        src, rate = decode_video(blobs[0])
        fps = round(rate)
        return encode_mp4(out, (_prepare(f) for f in src), fps), fps
    imgs = [_prepare(decode_image(b)) for b in blobs]
    # frame sequences: every stored frame held a fixed number of output frames (see RA_HOLD, NUAA_HOLD)
    hold, fps = (NUAA_HOLD, NUAA_FPS) if source == "nuaa" else (RA_HOLD, RA_FPS)

    def frames() -> Iterator[np.ndarray]:
        for img in imgs:
            for _ in range(hold):
                yield img

    return encode_mp4(out, frames(), fps), fps


def assemble_job(source: str, tokens: list[str], blobs: list[bytes], out: str) -> tuple[int, int, str]:
    n, fps = assemble(source, tokens, blobs, Path(out))
    return n, fps, sha256_hex(Path(out).read_bytes())
