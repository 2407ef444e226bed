"""Liveness stage: passive anti-spoofing and server-issued action challenges on selfie videos."""

from pipelines.liveness.actions import ActionConfig, ActionEvent, ActionEvidence
from pipelines.liveness.challenge import ACTIONS, Challenge, issue_challenge, parse_actions
from pipelines.liveness.checker import LivenessChecker, LivenessConfig
from pipelines.liveness.replay import (
    InMemoryNonceStore,
    InMemoryVideoFingerprintStore,
    NonceStore,
    VideoFingerprintStore,
)
from pipelines.liveness.result import BestFrame, LivenessResult
from pipelines.liveness.video import SamplingConfig, VideoLimits

__all__ = [
    "ACTIONS",
    "ActionConfig",
    "ActionEvent",
    "ActionEvidence",
    "BestFrame",
    "Challenge",
    "InMemoryNonceStore",
    "InMemoryVideoFingerprintStore",
    "LivenessChecker",
    "LivenessConfig",
    "LivenessResult",
    "NonceStore",
    "SamplingConfig",
    "VideoFingerprintStore",
    "VideoLimits",
    "issue_challenge",
    "parse_actions",
]
