"""LivenessChecker: one selfie video → passive anti-spoofing, action challenge, face continuity, best frames.

Cost control (target: a 5 s 720p video in ≤ 400 ms on 2 cores): frames are sampled at 6 fps (10 fps when a
blink is asked for) and scaled to 640 px while decoding; the face mesh follows the face from its own landmarks,
the detector runs only to find the face and on key frames every ``detect_every_s``, where anti-spoofing and
embeddings run too, on a side thread (see :mod:`pipelines.liveness.tracking`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from models.packs import ModelPack, load_pack
from pipelines.errors import PipelineError
from pipelines.face_match import FaceMatcher
from pipelines.liveness.actions import ActionConfig
from pipelines.liveness.capture import CaptureConfig, summarise
from pipelines.liveness.challenge import BLINK, parse_actions
from pipelines.liveness.duplicates import (
    InMemoryVideoFingerprintStore,
    VideoFingerprintStore,
    check_and_record,
    video_sha256,
)
from pipelines.liveness.findings import FindingRules, collect_findings
from pipelines.liveness.fusion import Findings, Fused, Verdict, fuse
from pipelines.liveness.keyframes import best_frames
from pipelines.liveness.light import LightSequence
from pipelines.liveness.light_response import LightRules, analyse_light
from pipelines.liveness.motion import MotionConfig
from pipelines.liveness.passive import PassiveCalibration, PassiveScorer
from pipelines.liveness.result import LivenessResult
from pipelines.liveness.scoring import Scores, ScoringConfig, score_track
from pipelines.liveness.tracking import FaceTracker, Track, TrackConfig
from pipelines.liveness.video import SamplingConfig, VideoInfo, VideoLimits, VideoReader, read_bytes
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)

LIGHT_MODES = ("observe", "enforce")


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
    # The screen-light challenge (pipelines.liveness.light): "observe" measures and reports the face's response
    # without letting it change the verdict; "enforce" makes a pass need it.
    light_mode: str = "observe"


class LivenessChecker:
    """Main class of the liveness stage. Models come from a pack and are loaded once."""

    def __init__(
        self,
        pack: ModelPack | None = None,
        config: LivenessConfig | None = None,
        matcher: FaceMatcher | None = None,
        fingerprint_store: VideoFingerprintStore | None = None,
        calibration: PassiveCalibration | None = None,
        light_rules: LightRules | None = None,
    ) -> None:
        self.pack = pack or (matcher.pack if matcher is not None else load_pack())
        self.config = config or LivenessConfig()
        self.matcher = matcher or FaceMatcher(self.pack)
        self.landmarks = self.pack.landmarks
        self.passive = PassiveScorer(self.pack.antispoof)
        self.calibration = calibration or PassiveCalibration.load(self.passive.key)
        fusion = self.calibration.fusion
        if fusion is not None and list(fusion.names) != self.passive.names:
            raise PipelineError(
                ReasonCode.MODEL_UNAVAILABLE,
                f"liveness calibration fuses {', '.join(fusion.names)}, the pack has {', '.join(self.passive.names)}",
            )
        self.fingerprints: VideoFingerprintStore = fingerprint_store or InMemoryVideoFingerprintStore()
        if self.config.light_mode not in LIGHT_MODES:
            raise ValueError(f"light_mode must be one of {', '.join(LIGHT_MODES)}, got {self.config.light_mode!r}")
        self.light_rules = light_rules or LightRules.load()

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
        light: LightSequence | None = None,
    ) -> LivenessResult:
        """Analyse one video: tracking → scoring → reasons → fusion. Raises MediaError only for undecodable or
        out-of-limit media.

        The challenge's nonce is the service's to check (service.certification.sessions: single use, expiry),
        before the video reaches the checker. ``light``: the screen-light sequence the capture page showed
        (:mod:`pipelines.liveness.light`), None when none was issued."""
        t_all, cpu_all = time.perf_counter(), time.thread_time()
        requested = parse_actions(
            challenge_actions
            if isinstance(challenge_actions, str) or challenge_actions is None
            else list(challenge_actions)
        )
        data = read_bytes(video, self.config.limits)
        sha = video_sha256(data)
        track, info = self._run_tracker(data, requested)
        scores = score_track(track, requested, self._scoring_config())
        duplicate = self.config.check_duplicates and check_and_record(self.fingerprints, sha, track.hashes)
        t_light = time.perf_counter()
        response = None if light is None else analyse_light(track.colours, light, self.light_rules)
        enforced = response is not None and self.config.light_mode == "enforce"
        findings = collect_findings(track, requested, scores, self._finding_rules(), duplicate, response, enforced)
        fused = fuse(findings)
        timings = {
            **scores.timings,
            **({"light": (time.perf_counter() - t_light) * 1000} if response is not None else {}),
            "total": (time.perf_counter() - t_all) * 1000,
            "main_thread_cpu": (time.thread_time() - cpu_all) * 1000,
        }
        result = self._result(track, info, sha, requested, scores, findings, fused, timings)
        result.light, result.light_mode = response, self.config.light_mode
        return result

    def _run_tracker(self, data: bytes, requested: Sequence[str]) -> tuple[Track, VideoInfo]:
        sampling = self.config.sampling
        if BLINK in requested:
            sampling = replace(sampling, sample_fps=max(sampling.sample_fps, sampling.sample_fps_blink))
        reader = VideoReader(data, self.config.limits, sampling)
        try:
            return self._tracker().run(reader), reader.info
        finally:
            reader.close()

    def _scoring_config(self) -> ScoringConfig:
        cfg = self.config
        return ScoringConfig(cfg.actions, cfg.capture, self.motion_config, cfg.passive_frames, self.calibration.fusion)

    def _finding_rules(self) -> FindingRules:
        return FindingRules(
            capture=self.config.capture,
            max_missing_share=self.config.max_missing_share,
            identity_min_cosine=self._identity_threshold(),
            pass_threshold=self.passive_threshold,
            review_floor=self.passive_review_floor,
        )

    def _result(
        self,
        track: Track,
        info: VideoInfo,
        sha: str,
        requested: Sequence[str],
        scores: Scores,
        findings: Findings,
        fused: Fused,
        timings: dict[str, float],
    ) -> LivenessResult:
        chosen, keys = scores.passive_keys, track.key_frames
        return LivenessResult(
            passed=fused.verdict is Verdict.PASS,
            reasons=list(dict.fromkeys(fused.reasons)),
            verdict=fused.verdict,
            driver=fused.driver,
            passive_review_floor=self.passive_review_floor,
            passive_frames=[round(k.frame.t, 3) for k in chosen],
            capture={
                **summarise([k.capture for k in chosen]),
                "retake": [r.value for r in findings.capture],
            },
            motion=scores.motion.to_dict(),
            passive_score=findings.passive_score,
            passive_threshold=self.passive_threshold,
            actions=scores.evidence,
            frames_analyzed=track.n_frames,
            best_frames=best_frames(keys, self.config.n_best_frames, self.calibration.combine),
            video_sha256=sha,
            frame_hashes=track.hashes,
            duration_s=info.duration_s,
            challenge=list(requested),
            events=scores.events,
            max_faces=track.max_faces,
            face_missing_share=scores.missing_share,
            identity_min_similarity=scores.identity_min,
            frame_scores=[(k.frame.t, self.calibration.combine(k.passive_by_model)) for k in keys],
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
            passive_by_model=dict(zip(self.passive.names, scores.passive_by_model, strict=False)),
            colour_samples=track.colours,
        )
