"""Liveness stage: passive anti-spoofing and server-issued action challenges on selfie videos.

The names below load on first use (PEP 562 ``__getattr__``), not when the package is imported: importing any
submodule runs this file first, and the light ones (``challenge``: action names and ``--challenge`` parsing;
``replay``) are used where no model may load — the command line's usage checks, the staff console's labels.
An eager import of ``checker`` here pulled OpenCV, onnxruntime and insightface into all of them
(tests/service/adapters/cli/test_cli_imports.py holds this).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.liveness.actions import ActionConfig, ActionEvent, ActionEvidence
    from pipelines.liveness.challenge import ACTIONS, Challenge, issue_challenge, parse_actions
    from pipelines.liveness.checker import LivenessChecker, LivenessConfig
    from pipelines.liveness.duplicates import InMemoryVideoFingerprintStore, VideoFingerprintStore
    from pipelines.liveness.light import LightSequence, issue_light_sequence, parse_light
    from pipelines.liveness.light_response import LightResponse, LightStatus
    from pipelines.liveness.result import BestFrame, LivenessResult
    from pipelines.liveness.video import SamplingConfig, VideoLimits

# Each exported name and the submodule that defines it.
_HOMES: dict[str, str] = {
    "ActionConfig": "actions",
    "ActionEvent": "actions",
    "ActionEvidence": "actions",
    "ACTIONS": "challenge",
    "Challenge": "challenge",
    "issue_challenge": "challenge",
    "parse_actions": "challenge",
    "LivenessChecker": "checker",
    "LivenessConfig": "checker",
    "InMemoryVideoFingerprintStore": "duplicates",
    "VideoFingerprintStore": "duplicates",
    "LightSequence": "light",
    "issue_light_sequence": "light",
    "parse_light": "light",
    "LightResponse": "light_response",
    "LightStatus": "light_response",
    "BestFrame": "result",
    "LivenessResult": "result",
    "SamplingConfig": "video",
    "VideoLimits": "video",
}

__all__ = [
    "ACTIONS",
    "ActionConfig",
    "ActionEvent",
    "ActionEvidence",
    "BestFrame",
    "Challenge",
    "InMemoryVideoFingerprintStore",
    "LightResponse",
    "LightSequence",
    "LightStatus",
    "LivenessChecker",
    "LivenessConfig",
    "LivenessResult",
    "SamplingConfig",
    "VideoFingerprintStore",
    "VideoLimits",
    "issue_challenge",
    "issue_light_sequence",
    "parse_actions",
    "parse_light",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value
