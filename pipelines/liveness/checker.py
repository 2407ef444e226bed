"""LivenessChecker: one selfie video → passive anti-spoofing, action challenge, face continuity, best frames.

Cost control (target: a 5 s 720p video in ≤ 400 ms on 2 cores): frames are sampled at 6 fps (10 fps when a
blink is asked for) and scaled to 640 px while decoding; the face mesh follows the face from its own landmarks,
the detector runs only to find the face and on key frames every ``detect_every_s``, where anti-spoofing and
embeddings run too, on a side thread (see :mod:`pipelines.liveness.tracking`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from models.packs import ModelPack, load_pack
from pipelines.errors import PipelineError
from pipelines.face_match import FaceMatcher
from pipelines.liveness.actions import ActionConfig, ActionEvent, ActionEvidence, detect_events, verify_sequence
from pipelines.liveness.capture import CaptureConfig, capture_reasons, scene_reasons, summarise
from pipelines.liveness.challenge import BLINK, Challenge, parse_actions
from pipelines.liveness.fusion import Findings, Fused, Verdict, fuse
from pipelines.liveness.keyframes import best_frames, identity_spread, passive_frames
from pipelines.liveness.motion import MotionConfig, MotionEvidence, measure_motion
from pipelines.liveness.passive import PassiveCalibration, PassiveScorer
from pipelines.liveness.replay import (
    InMemoryNonceStore,
    InMemoryVideoFingerprintStore,
    NonceStore,
    VideoFingerprintStore,
    nonce_reasons,
    video_sha256,
)
from pipelines.liveness.result import LivenessResult
from pipelines.liveness.tracking import FaceTracker, KeyFrame, Track, TrackConfig
from pipelines.liveness.video import SamplingConfig, VideoInfo, VideoLimits, VideoReader, read_bytes
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LivenessConfig:
    limits: VideoLimits = field(default_factory=VideoLimits)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    actions: ActionConfig = field(default_factory=ActionConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    detect_every_s: float = 1.5
    max_key_frames: int = 12
    # Mesh face-presence probability under which the face counts as lost (the detector then re-acquires it).
    min_presence: float = 0.5
    # A second face this prominent (area × centrality, relative to the main face) fails the video.
    second_face_ratio: float = 0.25
    max_missing_share: float = 0.2
    # Cosine between a frame and the video's most typical face; None: the matcher's FAR 1e-2 threshold.
    same_identity_min_cosine: float | None = None
    n_best_frames: int = 3
    # The passive score is the mean over this many best (frontal, sharp, well-lit) key frames.
    passive_frames: int = 5
    passive_threshold: float | None = None
    passive_review_floor: float | None = None
    check_duplicates: bool = True
    # Decode and analyse key frames on worker threads, overlapping the face mesh (uses the second core).
    decode_thread: bool = True


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

    @property
    def motion_config(self) -> MotionConfig:
        """The configured motion rule; its ratio threshold from the calibration unless the config sets one."""
        if self.config.motion.min_ratio is not None or self.calibration.motion_min_ratio is None:
            return self.config.motion
        return replace(self.config.motion, min_ratio=self.calibration.motion_min_ratio)

    @property
    def passive_review_floor(self) -> float:
        floor = self.config.passive_review_floor
        return min(self.calibration.review_floor if floor is None else floor, self.passive_threshold)

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
        except PipelineError:
            # No calibration for this recognizer: impostor frames of the dev videos stay below 0.3 (MANIFEST §3).
            return 0.3

    # -- per-video analysis -----------------------------------------------------------------------------

    def _tracker(self) -> FaceTracker:
        cfg = self.config
        track_cfg = TrackConfig(
            detect_every_s=cfg.detect_every_s,
            max_key_frames=cfg.max_key_frames,
            min_presence=cfg.min_presence,
            second_face_ratio=cfg.second_face_ratio,
            threaded=cfg.decode_thread,
        )
        return FaceTracker(self.matcher, self.landmarks, self.passive, track_cfg)

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
        t_all, cpu_all = time.perf_counter(), time.thread_time()
        if challenge is not None:
            challenge_actions = challenge_actions or challenge.actions
            nonce, expires_at = nonce or challenge.nonce, expires_at or challenge.expires_at
        requested = parse_actions(
            challenge_actions
            if isinstance(challenge_actions, str) or challenge_actions is None
            else list(challenge_actions)
        )
        data = read_bytes(video, self.config.limits)
        sha = video_sha256(data)
        track, info = self._run_tracker(data, requested)
        hard: list[ReasonCode] = list(nonce_reasons(nonce, expires_at, self.nonce_store, now))
        found = self._analyse(track, requested, hard)
        if self.config.check_duplicates:
            if self.fingerprints.seen(sha, track.hashes):
                hard.append(ReasonCode.VIDEO_DUPLICATE)
            self.fingerprints.add(sha, track.hashes)
        fused = fuse(replace(found.findings, hard=hard))
        found.timings["total"] = (time.perf_counter() - t_all) * 1000
        found.timings["main_thread_cpu"] = (time.thread_time() - cpu_all) * 1000
        return self._result(track, info, sha, requested, found, fused)

    def _run_tracker(self, data: bytes, requested: Sequence[str]) -> tuple[Track, VideoInfo]:
        sampling = self.config.sampling
        if BLINK in requested:
            sampling = replace(sampling, sample_fps=max(sampling.sample_fps, sampling.sample_fps_blink))
        reader = VideoReader(data, self.config.limits, sampling)
        try:
            return self._tracker().run(reader), reader.info
        finally:
            reader.close()

    def _analyse(self, track: Track, requested: Sequence[str], hard: list[ReasonCode]) -> _Analysis:
        """Every signal's finding; face and challenge findings are appended to `hard`."""
        cfg = self.config
        keys = track.key_frames
        chosen = passive_frames(keys, cfg.capture, cfg.passive_frames)
        events = detect_events(track.signals, cfg.actions)
        evidence, action_reasons = verify_sequence(requested, events)
        t_motion = time.perf_counter()
        motion = measure_motion([s.t for s in track.signals], track.mesh_points, self.motion_config)
        timings = {**track.timings_ms, "motion": (time.perf_counter() - t_motion) * 1000}
        capture = capture_reasons([k.capture for k in chosen], cfg.capture)
        identity_min = identity_spread(keys)
        missing_share = track.missing / max(track.n_frames, 1)
        if not keys or len(track.signals) < 3 or missing_share > cfg.max_missing_share:
            hard.append(ReasonCode.FACE_NOT_FOUND)
            capture = capture or scene_reasons(track.frame_luma, cfg.capture)
        if track.max_faces > 1:
            hard.append(ReasonCode.FACE_MULTIPLE)
        if identity_min is not None and identity_min < self._identity_threshold():
            hard.append(ReasonCode.FACE_CHANGED_IN_VIDEO)
        hard += action_reasons
        findings = Findings(
            hard=hard,
            passive_score=float(np.mean([k.passive_score for k in chosen])) if chosen else 0.0,
            pass_threshold=self.passive_threshold,
            review_floor=self.passive_review_floor,
            capture=capture,
            challenge_performed=bool(requested) and not action_reasons,
            motion_live=motion.live,
            passive_measured=bool(chosen),
        )
        return _Analysis(findings, chosen, events, evidence, motion, identity_min, missing_share, timings)

    def _result(
        self,
        track: Track,
        info: VideoInfo,
        sha: str,
        requested: Sequence[str],
        found: _Analysis,
        fused: Fused,
    ) -> LivenessResult:
        chosen, keys = found.passive_keys, track.key_frames
        return LivenessResult(
            passed=fused.verdict is Verdict.PASS,
            reasons=list(dict.fromkeys(fused.reasons)),
            verdict=fused.verdict,
            driver=fused.driver,
            passive_review_floor=self.passive_review_floor,
            passive_frames=[round(k.frame.t, 3) for k in chosen],
            capture={
                **summarise([k.capture for k in chosen]),
                "retake": [r.value for r in found.findings.capture],
            },
            motion=found.motion.to_dict(),
            passive_score=found.findings.passive_score,
            passive_threshold=self.passive_threshold,
            actions=found.evidence,
            frames_analyzed=track.n_frames,
            best_frames=best_frames(keys, self.config.n_best_frames),
            video_sha256=sha,
            frame_hashes=track.hashes,
            duration_s=info.duration_s,
            challenge=list(requested),
            events=found.events,
            max_faces=track.max_faces,
            face_missing_share=found.missing_share,
            identity_min_similarity=found.identity_min,
            frame_scores=[(k.frame.t, k.passive_score) for k in keys],
            video={
                "container": info.container,
                "codec": info.codec,
                "width": info.width,
                "height": info.height,
                "rotation": info.rotation,
                "frames_decoded": info.frames_decoded,
            },
            timings_ms=found.timings,
            models=self.model_versions(),
            calibration_version=self.calibration.version,
        )


@dataclass
class _Analysis:
    """What `_analyse` found, before the duplicate check and the fusion."""

    findings: Findings
    passive_keys: list[KeyFrame]
    events: list[ActionEvent]
    evidence: list[ActionEvidence]
    motion: MotionEvidence
    identity_min: float | None
    missing_share: float
    timings: dict[str, float]
