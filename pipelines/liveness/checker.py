"""LivenessChecker: one selfie video → passive anti-spoofing, action challenge, face continuity, best frames.

Cost control (target: a 5 s 720p video in ≤ 400 ms on 2 cores): frames are sampled at ~10 fps and scaled
to 640 px while decoding; the full face detector runs only about once a second (and when the face is lost),
the face mesh follows the face in between from its own landmarks, and anti-spoofing and embeddings run only
on the detector frames.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from models.detectors import Detection
from models.packs import ModelPack, load_pack
from pipelines.face_match import FaceMatcher, FaceObservation, cosine
from pipelines.face_match.matcher import prominence
from pipelines.liveness.actions import ActionConfig, detect_events, verify_sequence
from pipelines.liveness.challenge import BLINK, Challenge, parse_actions
from pipelines.liveness.passive import PassiveCalibration, PassiveScorer
from pipelines.liveness.replay import (
    InMemoryNonceStore,
    InMemoryVideoFingerprintStore,
    NonceStore,
    VideoFingerprintStore,
    dhash,
    nonce_reasons,
    video_sha256,
)
from pipelines.liveness.result import BestFrame, LivenessResult
from pipelines.liveness.signals import FaceSignals, measure
from pipelines.liveness.video import (
    BackgroundFrames,
    Frame,
    SamplingConfig,
    VideoLimits,
    VideoReader,
    read_bytes,
)
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LivenessConfig:
    limits: VideoLimits = field(default_factory=VideoLimits)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    actions: ActionConfig = field(default_factory=ActionConfig)
    detect_every_s: float = 1.5
    max_detections: int = 12
    # Mesh face-presence probability under which the face counts as lost (the detector then re-acquires it).
    min_presence: float = 0.5
    # A second face this prominent (area × centrality, relative to the main face) fails the video.
    second_face_ratio: float = 0.25
    max_missing_share: float = 0.2
    # Cosine between a frame and the video's most typical face; None: the matcher's FAR 1e-2 threshold.
    same_identity_min_cosine: float | None = None
    n_best_frames: int = 3
    # Perceptual hash of every n-th sampled frame (about 2-3 per second) for near-duplicate detection.
    hash_every: int = 3
    passive_threshold: float | None = None
    check_duplicates: bool = True
    # Decode on a worker thread, overlapping the networks (uses the second core).
    decode_thread: bool = True


@dataclass
class _DetFrame:
    frame: Frame
    det: Detection
    n_faces: int


class LivenessChecker:
    """Main class of the liveness stage. Models come from a pack and are loaded once."""

    def __init__(
        self,
        pack: ModelPack | None = None,
        config: LivenessConfig | None = None,
        matcher: FaceMatcher | None = None,
        nonce_store: NonceStore | None = None,
        fingerprint_store: VideoFingerprintStore | None = None,
        calibration: PassiveCalibration | None = None,
    ) -> None:
        self.pack = pack or (matcher.pack if matcher is not None else load_pack())
        self.config = config or LivenessConfig()
        self.matcher = matcher or FaceMatcher(self.pack)
        self.landmarks = self.pack.landmarks
        self.passive = PassiveScorer(self.pack.antispoof)
        self.calibration = calibration or PassiveCalibration.load(self.passive.key)
        self.nonce_store: NonceStore = nonce_store or InMemoryNonceStore()
        self.fingerprints: VideoFingerprintStore = fingerprint_store or InMemoryVideoFingerprintStore()

    @property
    def passive_threshold(self) -> float:
        if self.config.passive_threshold is not None:
            return self.config.passive_threshold
        return self.calibration.threshold

    def model_versions(self) -> dict[str, str]:
        return {
            **self.matcher.model_versions(),
            "landmarks": self.landmarks.version,
            **self.passive.versions(),
        }

    def _identity_threshold(self) -> float:
        if self.config.same_identity_min_cosine is not None:
            return self.config.same_identity_min_cosine
        try:
            return self.matcher.thresholds.review
        except Exception:  # no calibration for this recognizer: a conservative cosine for same-video frames
            return 0.3

    # -- per-video analysis -----------------------------------------------------------------------------

    def _track(
        self, reader: VideoReader, timings: dict[str, float]
    ) -> tuple[list[FaceSignals], list[_DetFrame], list[int], int, int, int]:
        cfg = self.config
        signals: list[FaceSignals] = []
        det_frames: list[_DetFrame] = []
        hashes: list[int] = []
        box: tuple[float, float, float, float] | None = None
        next_detect = 0.0
        n_frames = missing = max_faces = 0
        t_model = 0.0
        t_start = time.perf_counter()
        frames = BackgroundFrames(reader) if cfg.decode_thread else reader.frames()
        for frame in frames:
            t0 = time.perf_counter()
            n_frames += 1
            if frame.index % cfg.hash_every == 0:
                hashes.append(dhash(frame.image))
            due = frame.t >= next_detect and len(det_frames) < cfg.max_detections
            if box is None or due:
                dets = self.matcher.detect(frame.image)
                next_detect = frame.t + cfg.detect_every_s
                if not dets:
                    missing += 1
                    box = None
                    t_model += time.perf_counter() - t0
                    continue
                main = dets[0]
                p0 = prominence(main, frame.image.shape)
                n_sig = 1 + sum(1 for d in dets[1:] if prominence(d, frame.image.shape) >= cfg.second_face_ratio * p0)
                max_faces = max(max_faces, n_sig)
                if due:
                    det_frames.append(_DetFrame(frame, main, n_sig))
                box = main.bbox
            mesh = self.landmarks.predict(frame.image, box)
            if mesh.presence < cfg.min_presence:
                missing += 1
                box = None
            else:
                signals.append(measure(mesh.points, frame.t, mesh.presence))
                box = mesh.bbox()
            t_model += time.perf_counter() - t0
        timings["track_models"] = t_model * 1000
        timings["decode"] = (time.perf_counter() - t_start - t_model) * 1000
        return signals, det_frames, hashes, n_frames, missing, max_faces

    def check(
        self,
        video: bytes | Path | str,
        challenge_actions: Sequence[str] | str | None = None,
        *,
        challenge: Challenge | None = None,
        nonce: str | None = None,
        expires_at: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> LivenessResult:
        """Analyse one video. Raises MediaError only for undecodable or out-of-limit media."""
        cfg = self.config
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        if challenge is not None:
            challenge_actions = challenge_actions or challenge.actions
            nonce, expires_at = nonce or challenge.nonce, expires_at or challenge.expires_at
        requested = parse_actions(
            challenge_actions
            if isinstance(challenge_actions, str) or challenge_actions is None
            else list(challenge_actions)
        )
        data = read_bytes(video, cfg.limits)
        sha = video_sha256(data)
        sampling = cfg.sampling
        if BLINK in requested:
            sampling = replace(sampling, sample_fps=max(sampling.sample_fps, sampling.sample_fps_blink))
        reader = VideoReader(data, cfg.limits, sampling)
        try:
            signals, det_frames, hashes, n_frames, missing, max_faces = self._track(reader, timings)
        finally:
            reader.close()
        reasons: list[ReasonCode] = []
        reasons += nonce_reasons(nonce, expires_at, self.nonce_store, now)

        t0 = time.perf_counter()
        images = [d.frame.image for d in det_frames]
        boxes = [d.det.bbox for d in det_frames]
        scores = self.passive.score(images, boxes)
        passive_score = float(np.mean(scores)) if len(scores) else 0.0
        timings["passive"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        observations = self.matcher.observe_many(images, [d.det for d in det_frames]) if det_frames else []
        identity_min = _identity_spread(observations)
        timings["embed"] = (time.perf_counter() - t0) * 1000

        events = detect_events(signals, cfg.actions)
        evidence, action_reasons = verify_sequence(requested, events)
        missing_share = missing / max(n_frames, 1)

        if not det_frames or len(signals) < 3:
            reasons.append(ReasonCode.FACE_NOT_FOUND)
        else:
            if max_faces > 1:
                reasons.append(ReasonCode.FACE_MULTIPLE)
            if missing_share > cfg.max_missing_share:
                reasons.append(ReasonCode.FACE_NOT_FOUND)
            if identity_min is not None and identity_min < self._identity_threshold():
                reasons.append(ReasonCode.FACE_CHANGED_IN_VIDEO)
            if passive_score < self.passive_threshold:
                reasons.append(ReasonCode.SPOOF_SUSPECTED)
        reasons += action_reasons
        if cfg.check_duplicates:
            if self.fingerprints.seen(sha, hashes):
                reasons.append(ReasonCode.VIDEO_DUPLICATE)
            self.fingerprints.add(sha, hashes)

        best = _best_frames(det_frames, observations, scores, cfg.n_best_frames)
        timings["total"] = (time.perf_counter() - t_all) * 1000
        info = reader.info
        return LivenessResult(
            passed=not reasons,
            reasons=list(dict.fromkeys(reasons)),
            passive_score=passive_score,
            passive_threshold=self.passive_threshold,
            actions=evidence,
            frames_analyzed=n_frames,
            best_frames=best,
            video_sha256=sha,
            frame_hashes=hashes,
            duration_s=info.duration_s,
            challenge=list(requested),
            events=events,
            max_faces=max_faces,
            face_missing_share=missing_share,
            identity_min_similarity=identity_min,
            frame_scores=[(d.frame.t, float(s)) for d, s in zip(det_frames, scores, strict=True)],
            video={
                "container": info.container,
                "codec": info.codec,
                "width": info.width,
                "height": info.height,
                "rotation": info.rotation,
                "frames_decoded": info.frames_decoded,
            },
            timings_ms=timings,
            models=self.model_versions(),
            calibration_version=self.calibration.version,
        )


def _identity_spread(observations: Sequence[FaceObservation]) -> float | None:
    """Lowest cosine between a frame and the medoid frame (the one most similar to all others)."""
    if len(observations) < 2:
        return None
    emb = np.stack([o.embedding for o in observations])
    sims = emb @ emb.T
    medoid = int(np.argmax(sims.sum(axis=1)))
    return float(min(cosine(emb[medoid], e) for e in emb))


def _best_frames(
    det_frames: Sequence[_DetFrame], observations: Sequence[FaceObservation], scores: np.ndarray, n: int
) -> list[BestFrame]:
    """Sharpest near-frontal frames; frames without quality flags first."""

    def rank(i: int) -> tuple[bool, float]:
        q = observations[i].quality
        return (q.ok, q.sharpness * q.frontalness)

    order = sorted(range(len(observations)), key=rank, reverse=True)[:n]
    return [
        BestFrame(det_frames[i].frame.t, det_frames[i].frame.image, observations[i], float(scores[i]))
        for i in sorted(order, key=lambda i: det_frames[i].frame.t)
    ]
