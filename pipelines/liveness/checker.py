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
from pipelines.face_match import FaceMatcher, FaceObservation, cosine
from pipelines.liveness.actions import ActionConfig, detect_events, verify_sequence
from pipelines.liveness.capture import CaptureConfig, capture_reasons, scene_reasons, summarise
from pipelines.liveness.challenge import BLINK, Challenge, parse_actions
from pipelines.liveness.fusion import Findings, Verdict, fuse
from pipelines.liveness.motion import MotionConfig, measure_motion
from pipelines.liveness.passive import PassiveCalibration, PassiveScorer
from pipelines.liveness.replay import (
    InMemoryNonceStore,
    InMemoryVideoFingerprintStore,
    NonceStore,
    VideoFingerprintStore,
    nonce_reasons,
    video_sha256,
)
from pipelines.liveness.result import BestFrame, LivenessResult
from pipelines.liveness.tracking import FaceTracker, KeyFrame, TrackConfig
from pipelines.liveness.video import SamplingConfig, VideoLimits, VideoReader, read_bytes
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)

NEAR_FRONTAL_DEG = 15.0
# Frames whose head poses differ by at most this much are compared for identity: the recognizer's embedding
# of a profile is not the embedding of the same person's frontal face, so a turn asked by the challenge must
# never read as "a different person".
COMPARABLE_YAW_DEG = 20.0
COMPARABLE_PITCH_DEG = 15.0
# The passive score is taken on frames at most this far from frontal (the networks saw frontal faces).
PASSIVE_MAX_POSE_DEG = 20.0


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
        if self.config.passive_review_floor is not None:
            return min(self.config.passive_review_floor, self.passive_threshold)
        return min(self.calibration.review_floor, self.passive_threshold)

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
        cfg = self.config
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        cpu_all = time.thread_time()
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
            track = self._tracker().run(reader)
        finally:
            reader.close()
        timings.update(track.timings_ms)
        hard: list[ReasonCode] = list(nonce_reasons(nonce, expires_at, self.nonce_store, now))
        keys = track.key_frames
        passive_keys = _passive_frames(keys, cfg)
        passive_score = float(np.mean([k.passive_score for k in passive_keys])) if passive_keys else 0.0
        identity_min = _identity_spread(keys)
        signals, hashes, n_frames, max_faces = track.signals, track.hashes, track.n_frames, track.max_faces
        missing_share = track.missing / max(n_frames, 1)

        events = detect_events(signals, cfg.actions)
        evidence, action_reasons = verify_sequence(requested, events)
        t_motion = time.perf_counter()
        motion = measure_motion([s.t for s in signals], track.mesh_points, self.motion_config)
        timings["motion"] = (time.perf_counter() - t_motion) * 1000
        capture = capture_reasons([k.capture for k in passive_keys], cfg.capture)

        if not keys or len(signals) < 3:
            hard.append(ReasonCode.FACE_NOT_FOUND)
            capture = capture or scene_reasons(track.frame_luma, cfg.capture)
        else:
            if max_faces > 1:
                hard.append(ReasonCode.FACE_MULTIPLE)
            if missing_share > cfg.max_missing_share:
                hard.append(ReasonCode.FACE_NOT_FOUND)
                capture = capture or scene_reasons(track.frame_luma, cfg.capture)
            if identity_min is not None and identity_min < self._identity_threshold():
                hard.append(ReasonCode.FACE_CHANGED_IN_VIDEO)
        hard += action_reasons
        if cfg.check_duplicates:
            if self.fingerprints.seen(sha, hashes):
                hard.append(ReasonCode.VIDEO_DUPLICATE)
            self.fingerprints.add(sha, hashes)
        fused = fuse(
            Findings(
                hard=hard,
                passive_score=passive_score,
                pass_threshold=self.passive_threshold,
                review_floor=self.passive_review_floor,
                capture=capture,
                challenge_performed=bool(requested) and not action_reasons,
                motion_live=motion.live,
                passive_measured=bool(passive_keys),
            )
        )
        reasons = fused.reasons

        best = _best_frames(keys, cfg.n_best_frames)
        timings["total"] = (time.perf_counter() - t_all) * 1000
        timings["main_thread_cpu"] = (time.thread_time() - cpu_all) * 1000
        info = reader.info
        return LivenessResult(
            passed=fused.verdict is Verdict.PASS,
            reasons=list(dict.fromkeys(reasons)),
            verdict=fused.verdict,
            driver=fused.driver,
            passive_review_floor=self.passive_review_floor,
            passive_frames=[round(k.frame.t, 3) for k in passive_keys],
            capture={**summarise([k.capture for k in passive_keys]), "retake": [r.value for r in capture]},
            motion=motion.to_dict(),
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
            frame_scores=[(k.frame.t, k.passive_score) for k in keys],
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


def _comparable(a: FaceObservation, b: FaceObservation) -> bool:
    qa, qb = a.quality, b.quality
    return abs(qa.yaw_deg - qb.yaw_deg) <= COMPARABLE_YAW_DEG and abs(qa.pitch_deg - qb.pitch_deg) <= (
        COMPARABLE_PITCH_DEG
    )


def _identity_spread(keys: Sequence[KeyFrame]) -> float | None:
    """Lowest cosine between a key frame and the most typical face among frames of comparable head pose.

    The reference is the video's medoid (the frame most similar to all others). A frame posed too differently
    from it (a turn the challenge asked for) may instead match the medoid of the frames posed like itself (the
    better of the two counts); a turned frame with neither is not judged (one profile glimpse says little).
    """
    obs = [k.observation for k in keys]
    if len(obs) < 2:
        return None
    emb = np.stack([o.embedding for o in obs])
    sims = emb @ emb.T
    medoid = int(np.argmax(sims.sum(axis=1)))
    worst: float | None = None
    for i, o in enumerate(obs):
        if i == medoid:
            continue
        sim = float(cosine(emb[medoid], emb[i]))
        if not _comparable(o, obs[medoid]):
            group = [j for j in range(len(obs)) if j != i and _comparable(o, obs[j])]
            if not group:
                continue
            ref = group[int(np.argmax(sims[np.ix_(group, group)].sum(axis=1)))]
            sim = max(sim, float(cosine(emb[ref], emb[i])))
        worst = sim if worst is None else min(worst, sim)
    return worst


def _passive_frames(keys: Sequence[KeyFrame], cfg: LivenessConfig) -> list[KeyFrame]:
    """The key frames the passive score is taken on: near-frontal, sharpest and best lit first.

    When none is near-frontal, all key frames count (the capture reasons then explain a low score).
    """
    frontal = [
        k
        for k in keys
        if abs(k.observation.quality.yaw_deg) <= PASSIVE_MAX_POSE_DEG
        and abs(k.observation.quality.pitch_deg) <= PASSIVE_MAX_POSE_DEG
    ]
    pool = frontal or list(keys)

    def rank(k: KeyFrame) -> tuple[bool, float]:
        c = k.capture
        well_lit = c.face_luma >= cfg.capture.min_face_luma and c.sharpness >= cfg.capture.min_sharpness
        return (well_lit, k.observation.quality.sharpness * k.observation.quality.frontalness)

    return sorted(pool, key=rank, reverse=True)[: cfg.passive_frames]


def _best_frames(keys: Sequence[KeyFrame], n: int) -> list[BestFrame]:
    """Sharpest near-frontal frames; frames without quality flags first."""

    def rank(k: KeyFrame) -> tuple[bool, bool, float]:
        q = k.observation.quality
        # Matching against a frontal ID-card portrait: a turned head is a worse probe than a softer frontal one.
        frontal = abs(q.yaw_deg) <= NEAR_FRONTAL_DEG and abs(q.pitch_deg) <= NEAR_FRONTAL_DEG
        return (q.ok, frontal, q.sharpness * q.frontalness)

    chosen = sorted(keys, key=rank, reverse=True)[:n]
    return [
        BestFrame(k.frame.t, k.frame.image, k.observation, k.passive_score)
        for k in sorted(chosen, key=lambda k: k.frame.t)
    ]
