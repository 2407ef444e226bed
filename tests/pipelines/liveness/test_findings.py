"""The reasons step (pipelines/liveness/findings.py): hard reasons in their fixed order, the dark-scene retake hint
when no face was found, and the challenge counted as performed only when asked for and done."""

from __future__ import annotations

from dataclasses import replace

from pipelines.liveness.actions import MAX_CHALLENGE_COVERAGE
from pipelines.liveness.capture import CaptureConfig
from pipelines.liveness.findings import FindingRules, collect_findings
from pipelines.liveness.fusion import Verdict, fuse
from pipelines.liveness.motion import MotionEvidence
from pipelines.liveness.scoring import Scores
from pipelines.liveness.tracking import Track
from pipelines.reasons import ReasonCode

RULES = FindingRules(
    capture=CaptureConfig(), max_missing_share=0.2, identity_min_cosine=0.3, pass_threshold=0.9, review_floor=0.1
)


def _scores(**changes: object) -> Scores:
    base = Scores(
        passive_keys=[],
        passive_score=0.0,
        passive_by_model=(),
        events=[],
        evidence=[],
        action_reasons=[],
        challenge_coverage=0.0,
        motion=MotionEvidence(0.0, 0.0, 0.0, 0.0, 0, None),
        identity_min=None,
        missing_share=0.0,
        timings={},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_hard_reasons_keep_their_order() -> None:
    """Face, challenge, duplicate: the first names the verdict's driver."""
    scores = _scores(identity_min=0.1, action_reasons=[ReasonCode.CHALLENGE_MISSING_ACTION])
    found = collect_findings(Track(), ["blink"], scores, RULES, duplicate=True)
    assert list(found.hard) == [
        ReasonCode.FACE_NOT_FOUND,
        ReasonCode.FACE_CHANGED_IN_VIDEO,
        ReasonCode.CHALLENGE_MISSING_ACTION,
        ReasonCode.VIDEO_DUPLICATE,
    ]
    assert not found.challenge_performed
    fused = fuse(found)
    assert fused.verdict is Verdict.REJECT and fused.driver == "face"


def test_no_face_in_a_dark_scene_asks_for_a_retake() -> None:
    dark = Track(frame_luma=[5.0] * 20, n_frames=20)
    found = collect_findings(dark, [], _scores(), RULES, duplicate=False)
    assert list(found.hard) == [ReasonCode.FACE_NOT_FOUND]
    assert list(found.capture) == [ReasonCode.CAPTURE_TOO_DARK]
    assert fuse(found).verdict is Verdict.RETAKE
    lit = collect_findings(Track(frame_luma=[120.0] * 20, n_frames=20), [], _scores(), RULES, duplicate=False)
    assert not lit.capture and fuse(lit).verdict is Verdict.REJECT


def test_a_video_performing_most_challenges_is_a_finding_only_under_a_challenge() -> None:
    for coverage, requested, flagged in ((0.45, ["nod"], False), (0.5, ["nod"], True), (1.0, [], False)):
        scores = _scores(challenge_coverage=coverage)
        found = collect_findings(Track(), requested, scores, RULES, duplicate=False)
        assert found.challenge_extra is flagged
        assert MAX_CHALLENGE_COVERAGE == 0.5
