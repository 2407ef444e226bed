"""Reasons step of the liveness check: the measurements of one video (:mod:`pipelines.liveness.scoring`) and
the duplicate-video check turned into the findings that :func:`pipelines.liveness.fusion.fuse` decides on.

Hard findings keep one order, which the verdict's driver follows (the first hard reason names it): face (not
found, several, changed), challenge, then a duplicate video. (The challenge nonce is checked by the service
before a video reaches the checker: service.certification.sessions.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.liveness.actions import MAX_CHALLENGE_COVERAGE
from pipelines.liveness.capture import CaptureConfig, capture_reasons, scene_reasons
from pipelines.liveness.fusion import Findings
from pipelines.liveness.light_response import LightResponse
from pipelines.liveness.scoring import Scores
from pipelines.liveness.tracking import Track
from pipelines.reasons import ReasonCode


@dataclass(frozen=True)
class FindingRules:
    """The thresholds the reasons are given by (from the checker's config and calibration)."""

    capture: CaptureConfig
    max_missing_share: float  # more of the sampled frames without a face: FACE_NOT_FOUND
    identity_min_cosine: float  # a key frame further from the video's typical face: FACE_CHANGED_IN_VIDEO
    pass_threshold: float
    review_floor: float


def face_reasons(track: Track, scores: Scores, rules: FindingRules) -> list[ReasonCode]:
    """No face (too few tracked frames or too many missing), several faces, or a face that changed."""
    reasons: list[ReasonCode] = []
    if not track.key_frames or len(track.signals) < 3 or scores.missing_share > rules.max_missing_share:
        reasons.append(ReasonCode.FACE_NOT_FOUND)
    if track.max_faces > 1:
        reasons.append(ReasonCode.FACE_MULTIPLE)
    if scores.identity_min is not None and scores.identity_min < rules.identity_min_cosine:
        reasons.append(ReasonCode.FACE_CHANGED_IN_VIDEO)
    return reasons


def collect_findings(
    track: Track,
    requested: Sequence[str],
    scores: Scores,
    rules: FindingRules,
    duplicate: bool,
    light: LightResponse | None = None,
    light_enforced: bool = False,
) -> Findings:
    """Every signal's finding: hard reasons in their fixed order, the capture's retake reasons, the scores, and
    the screen-light response (``light_enforced``: whether a pass needs it seen, the checker's "enforce" mode)."""
    face = face_reasons(track, scores, rules)
    capture = capture_reasons([k.capture for k in scores.passive_keys], rules.capture)
    if ReasonCode.FACE_NOT_FOUND in face:
        # No face may just mean too dark to see one: the scene's brightness says so.
        capture = capture or scene_reasons(track.frame_luma, rules.capture)
    hard = [*face, *scores.action_reasons]
    if duplicate:
        hard.append(ReasonCode.VIDEO_DUPLICATE)
    return Findings(
        hard=hard,
        passive_score=scores.passive_score,
        pass_threshold=rules.pass_threshold,
        review_floor=rules.review_floor,
        capture=capture,
        challenge_performed=bool(requested) and not scores.action_reasons,
        challenge_extra=bool(requested) and scores.challenge_coverage >= MAX_CHALLENGE_COVERAGE,
        motion_live=scores.motion.live,
        passive_measured=bool(scores.passive_keys),
        light=None if light is None else light.status.value,
        light_enforced=light_enforced and light is not None,
    )
