"""The per-frame loop: follow one face with the mesh, and analyse a few "key" frames in depth on the side.

Three threads share two cores: the decoder (``BackgroundFrames``), this loop (face mesh on every sampled
frame, the detector only to find the face), and a side worker that runs the detector, anti-spoofing and the
embedding on a key frame about every ``detect_every_s`` seconds. The decoder finishes early, so the side
worker takes its core over and the mesh loop is the only serial path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.detectors import Detection
from pipelines.face_match import FaceMatcher, FaceObservation
from pipelines.face_match.matcher import prominence
from pipelines.liveness.capture import CaptureStats, measure_capture
from pipelines.liveness.light_response import ColourSample, sample_colours
from pipelines.liveness.passive import PassiveScorer, mean_score
from pipelines.liveness.signals import FaceSignals, measure
from pipelines.liveness.video import BackgroundFrames, Frame, VideoReader


@dataclass(frozen=True)
class TrackConfig:
    detect_every_s: float
    max_key_frames: int
    min_presence: float
    second_face_ratio: float
    threaded: bool
    reacquire_every_s: float = 0.3


@dataclass
class KeyFrame:
    """A frame analysed in depth: main face, number of significant faces, passive score, embedding, capture."""

    frame: Frame
    det: Detection
    n_faces: int
    observation: FaceObservation
    capture: CaptureStats
    # Each anti-spoofing model's own score (PassiveScorer.names order).
    passive_by_model: tuple[float, ...]

    @property
    def passive_score(self) -> float:
        """The models' mean, in float32 as the scorer computes it (PassiveScorer.score)."""
        return mean_score(self.passive_by_model)


@dataclass
class Track:
    signals: list[FaceSignals] = field(default_factory=list)
    # 2-D mesh points (468×2, analysis pixels) of every tracked frame, for the rigid-motion check.
    mesh_points: list[np.ndarray] = field(default_factory=list)
    # Mean grey level of every sampled frame (an 8-px grid): tells a dark room from an empty one.
    frame_luma: list[float] = field(default_factory=list)
    # The face's skin and the background's mean colours of every tracked frame, for the screen-light challenge.
    colours: list[ColourSample] = field(default_factory=list)
    key_frames: list[KeyFrame] = field(default_factory=list)
    hashes: list[int] = field(default_factory=list)
    n_frames: int = 0
    missing: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def max_faces(self) -> int:
        return max((k.n_faces for k in self.key_frames), default=0)


class _Inline:
    """Runs submitted work at once: the single-threaded fallback of the side worker."""

    def submit(self, fn: Callable[..., KeyFrame | None], *args: Any) -> Future[KeyFrame | None]:
        fut: Future[KeyFrame | None] = Future()
        fut.set_result(fn(*args))
        return fut

    def shutdown(self, wait: bool = True) -> None:
        return None


class FaceTracker:
    def __init__(self, matcher: FaceMatcher, landmarks: Any, passive: PassiveScorer, config: TrackConfig) -> None:
        self.matcher = matcher
        self.landmarks = landmarks
        self.passive = passive
        self.config = config

    def _analyse(self, frame: Frame, dets: list[Detection] | None) -> KeyFrame | None:
        if dets is None:
            dets = self.matcher.detect(frame.image)
        if not dets:
            return None
        main = dets[0]
        p0 = prominence(main, frame.image.shape)
        ratio = self.config.second_face_ratio
        n_faces = 1 + sum(1 for d in dets[1:] if prominence(d, frame.image.shape) >= ratio * p0)
        by_model = self.passive.score_models([frame.image], [main.bbox])[:, 0]
        observation = self.matcher.observe_many([frame.image], [main])[0]
        capture = measure_capture(frame.image, main.bbox, observation.quality.sharpness)
        return KeyFrame(frame, main, n_faces, observation, capture, tuple(float(v) for v in by_model))

    def run(self, reader: VideoReader) -> Track:
        cfg = self.config
        track = Track()
        frames: Iterator[Frame] | BackgroundFrames = BackgroundFrames(reader) if cfg.threaded else reader.frames()
        side: ThreadPoolExecutor | _Inline = ThreadPoolExecutor(1, "liveness-key") if cfg.threaded else _Inline()
        jobs: list[Future[KeyFrame | None]] = []
        box: tuple[float, float, float, float] | None = None
        next_key = retry_at = 0.0
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            for frame in frames:
                track.n_frames += 1
                grid = frame.image[::8, ::8]
                track.frame_luma.append(float(grid.mean()))
                due = frame.t >= next_key and len(jobs) < cfg.max_key_frames
                dets: list[Detection] | None = None
                if box is None and frame.t >= retry_at:
                    # Only (re)acquiring the face needs the detector on this path; when there is no face,
                    # retry a few times a second rather than on every frame (bounded cost for empty videos).
                    dets = self.matcher.detect(frame.image)
                    box = dets[0].bbox if dets else None
                    retry_at = frame.t + (0.0 if box is not None else cfg.reacquire_every_s)
                if due:
                    jobs.append(side.submit(self._analyse, frame, dets))
                    next_key = frame.t + cfg.detect_every_s
                if box is None:
                    track.missing += 1
                    continue
                mesh = self.landmarks.predict(frame.image, box)
                if mesh.presence < cfg.min_presence:
                    track.missing += 1
                    box = None
                else:
                    track.signals.append(measure(mesh.points, frame.t, mesh.presence))
                    track.mesh_points.append(np.array(mesh.points[:, :2], dtype=np.float32))
                    track.colours.append(sample_colours(frame.image, track.mesh_points[-1], frame.t, grid))
                    box = mesh.bbox()
            track.timings_ms["track_wall"] = (time.perf_counter() - wall0) * 1000
            track.timings_ms["track_main_cpu"] = (time.thread_time() - cpu0) * 1000
            track.key_frames = [k for k in (j.result() for j in jobs) if k is not None]
            track.hashes = reader.hasher.hashes()
        finally:
            side.shutdown(wait=True)
        track.timings_ms["key_frames_wait"] = (time.perf_counter() - wall0) * 1000 - track.timings_ms["track_wall"]
        if isinstance(frames, BackgroundFrames):
            track.timings_ms["decode_thread_cpu"] = frames.cpu_s * 1000
        return track
