"""Face matching stage: reference face vs probe images/frames → fused similarity and band."""

from pipelines.face_match.calibration import Calibration
from pipelines.face_match.matcher import FaceMatcher, MatchConfig, align_face, cosine
from pipelines.face_match.quality import FaceQuality, QualityConfig, QualityFlag
from pipelines.face_match.result import Band, FaceObservation, FrameEvidence, MatchResult, Thresholds

__all__ = [
    "Band",
    "Calibration",
    "FaceMatcher",
    "FaceObservation",
    "FaceQuality",
    "FrameEvidence",
    "MatchConfig",
    "MatchResult",
    "QualityConfig",
    "QualityFlag",
    "Thresholds",
    "align_face",
    "cosine",
]
