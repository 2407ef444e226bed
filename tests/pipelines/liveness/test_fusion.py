"""The fusion rules of the liveness verdict: each signal's finding and the verdict it drives."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines.liveness.fusion import Findings, Verdict, fuse
from pipelines.reasons import ReasonCode

CLEAN = Findings(
    hard=[],
    passive_score=0.95,
    pass_threshold=0.6,
    review_floor=0.3,
    capture=[],
    challenge_performed=True,
    motion_live=True,
)


def test_all_signals_agree_passes() -> None:
    fused = fuse(CLEAN)
    assert fused.verdict is Verdict.PASS and fused.driver == "all_signals" and fused.reasons == []


def test_borderline_passive_with_performed_challenge_goes_to_review() -> None:
    fused = fuse(replace(CLEAN, passive_score=0.45))
    assert fused.verdict is Verdict.REVIEW and fused.driver == "passive_borderline"
    assert fused.reasons == [ReasonCode.SPOOF_SUSPECTED]


@pytest.mark.parametrize(
    "changes",
    [{"challenge_performed": False}, {"motion_live": None}, {"passive_score": 0.29}],
    ids=["no_challenge", "no_motion_evidence", "clear_spoof_score"],
)
def test_borderline_without_the_other_evidence_or_a_clear_spoof_rejects(changes: dict[str, object]) -> None:
    fused = fuse(replace(CLEAN, **{"passive_score": 0.45, **changes}))  # type: ignore[arg-type]
    assert fused.verdict is Verdict.REJECT and fused.driver == "passive"
    assert fused.reasons == [ReasonCode.SPOOF_SUSPECTED]


def test_poor_capture_asks_for_a_retake_instead_of_calling_a_spoof() -> None:
    fused = fuse(replace(CLEAN, passive_score=0.1, capture=[ReasonCode.CAPTURE_TOO_DARK]))
    assert fused.verdict is Verdict.RETAKE and fused.driver == "capture"
    assert fused.reasons == [ReasonCode.CAPTURE_TOO_DARK]
    # A good score on a poor capture is not held against the person.
    assert fuse(replace(CLEAN, capture=[ReasonCode.CAPTURE_TOO_DARK])).verdict is Verdict.PASS


def test_rigid_motion_rejects_even_with_a_good_passive_score() -> None:
    fused = fuse(replace(CLEAN, motion_live=False, challenge_performed=False))
    assert fused.verdict is Verdict.REJECT and fused.driver == "motion"
    assert fused.reasons == [ReasonCode.SPOOF_RIGID_MOTION]
    both = fuse(replace(CLEAN, motion_live=False, passive_score=0.1))
    assert both.reasons == [ReasonCode.SPOOF_RIGID_MOTION, ReasonCode.SPOOF_SUSPECTED]


def test_hard_findings_reject_and_name_their_signal() -> None:
    fused = fuse(replace(CLEAN, hard=[ReasonCode.VIDEO_DUPLICATE], passive_score=0.1))
    assert fused.verdict is Verdict.REJECT and fused.driver == "replay"
    assert fused.reasons == [ReasonCode.VIDEO_DUPLICATE, ReasonCode.SPOOF_SUSPECTED]
    turned = fuse(replace(CLEAN, hard=[ReasonCode.CHALLENGE_MISSING_ACTION]))
    assert turned.driver == "challenge" and turned.reasons == [ReasonCode.CHALLENGE_MISSING_ACTION]
    no_face = fuse(replace(CLEAN, hard=[ReasonCode.FACE_NOT_FOUND], passive_score=0.0, passive_measured=False))
    assert no_face.reasons == [ReasonCode.FACE_NOT_FOUND]


def test_every_new_code_has_a_chinese_message() -> None:
    codes = [ReasonCode.SPOOF_RIGID_MOTION, ReasonCode.CAPTURE_TOO_DARK, ReasonCode.CAPTURE_BACKLIT]
    codes += [ReasonCode.CAPTURE_TOO_BLURRY, ReasonCode.CAPTURE_FACE_TOO_SMALL]
    assert ReasonCode.CAPTURE_TOO_DARK.message_zh == "光线太暗,请到明亮处重拍"
    assert all("请" in c.message_zh for c in codes)


def test_no_face_in_the_dark_is_a_retake_but_other_hard_findings_are_not() -> None:
    dark = replace(CLEAN, hard=[ReasonCode.FACE_NOT_FOUND], capture=[ReasonCode.CAPTURE_TOO_DARK], passive_score=0.0)
    fused = fuse(dark)
    assert fused.verdict is Verdict.RETAKE and fused.driver == "capture"
    assert fused.reasons == [ReasonCode.CAPTURE_TOO_DARK, ReasonCode.FACE_NOT_FOUND]
    swapped = replace(dark, hard=[ReasonCode.FACE_NOT_FOUND, ReasonCode.FACE_CHANGED_IN_VIDEO])
    assert fuse(swapped).verdict is Verdict.REJECT


def test_a_challenge_among_many_unrequested_head_movements_goes_to_review_even_with_a_good_score() -> None:
    fused = fuse(replace(CLEAN, challenge_extra=True))
    assert fused.verdict is Verdict.REVIEW and fused.driver == "challenge"
    assert fused.reasons == [ReasonCode.CHALLENGE_EXTRA_ACTIONS]
    # A clear spoof score still rejects; a rigid picture still rejects first.
    assert fuse(replace(CLEAN, challenge_extra=True, passive_score=0.2)).verdict is Verdict.REJECT
    rigid = fuse(replace(CLEAN, challenge_extra=True, motion_live=False))
    assert rigid.verdict is Verdict.REJECT and rigid.driver == "motion"
