"""The kinship rule on real embeddings of real dev photos (default pack).

The claimed person's card photo is one photo of A, the video frames are three other photos of A. A relative
whose enrolled template is of the person in the video (two further photos of A) plays the relative presenting
the card; a relative of another identity (B) is an ordinary family member who is not in the video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.packs import load_pack
from pipelines.decision.result import Decision, Outcome
from pipelines.face_match import Band, FaceMatcher, FaceObservation
from pipelines.media import load_image
from pipelines.reasons import MESSAGES_ZH, ReasonCode
from proxy_auth import RelativePolicy, RelativeTemplate, apply_relative_rule

A = "lfw/Zhu_Rongji"
B = "lfw/Li_Peng"
POLICY = RelativePolicy()


@pytest.fixture(scope="module")
def matcher() -> FaceMatcher:
    return FaceMatcher(load_pack("default"))


def observe(matcher: FaceMatcher, folder: Path, start: int, n: int) -> list[FaceObservation]:
    paths = sorted(folder.glob("*.jpg"))[start : start + n]
    return matcher.observe_many([load_image(p) for p in paths], allow_multiple=True)


def template(matcher: FaceMatcher, folder: Path, start: int, n: int) -> np.ndarray:
    pooled = np.mean([o.embedding for o in observe(matcher, folder, start, n)], axis=0)
    out: np.ndarray = pooled / np.linalg.norm(pooled)
    return out


@pytest.fixture(scope="module")
def probes(matcher: FaceMatcher, faces_dir: Path) -> list[FaceObservation]:
    return observe(matcher, faces_dir / A, 1, 3)


@pytest.fixture(scope="module")
def card_decision(matcher: FaceMatcher, faces_dir: Path, probes: list[FaceObservation]) -> Decision:
    """The ordinary decision: the card photo (A) against the video frames (A), at the calibrated thresholds."""
    card = observe(matcher, faces_dir / A, 0, 1)[0]
    match = matcher.compare(card, probes)
    assert match.band is Band.ACCEPT
    return Decision(
        outcome=Outcome.ACCEPT,
        reasons=[],
        scores={"card_similarity": match.similarity, "template_similarity": None, "passive_liveness": 0.99},
        thresholds={"face_accept": match.thresholds.accept, "face_review": match.thresholds.review},
        model_versions=match.models,
        references=["card"],
    )


@pytest.fixture(scope="module")
def relative_in_video(matcher: FaceMatcher, faces_dir: Path) -> RelativeTemplate:
    return ("household:P000042", template(matcher, faces_dir / A, 4, 2))


@pytest.fixture(scope="module")
def other_relative(matcher: FaceMatcher, faces_dir: Path) -> RelativeTemplate:
    return ("proxy_operator:op-7", template(matcher, faces_dir / B, 0, 2))


def test_face_of_a_relative_goes_to_review(
    card_decision: Decision,
    probes: list[FaceObservation],
    relative_in_video: RelativeTemplate,
    other_relative: RelativeTemplate,
) -> None:
    result = apply_relative_rule(card_decision, probes, [other_relative, relative_in_video], POLICY)
    assert result.outcome is Outcome.REVIEW
    assert result.reasons == [ReasonCode.FACE_CLOSER_TO_RELATIVE]
    # The closest relative is named, by label only, and its score beats the claimed card score.
    similarity, claimed = result.scores["relative_max_similarity"], card_decision.scores["card_similarity"]
    assert similarity is not None and claimed is not None and similarity >= claimed
    assert result.thresholds["relative_margin"] == POLICY.margin
    assert any("household:P000042" in n for n in result.notes)
    assert not any("proxy_operator:op-7" in n for n in result.notes)
    assert result.to_dict()["messages"] == [ReasonCode.FACE_CLOSER_TO_RELATIVE.message_zh]


def test_another_family_member_leaves_the_accept(
    card_decision: Decision, probes: list[FaceObservation], other_relative: RelativeTemplate
) -> None:
    result = apply_relative_rule(card_decision, probes, [other_relative], POLICY)
    assert result.outcome is Outcome.ACCEPT and result.reasons == [] and result.notes == []
    similarity = result.scores["relative_max_similarity"]
    assert similarity is not None and similarity < 0.4  # recorded for staff, far from the claimed score
    assert result.thresholds["relative_margin"] == POLICY.margin
    assert result.references == card_decision.references


def test_margin_reaches_down_from_the_claimed_score(
    card_decision: Decision, probes: list[FaceObservation], other_relative: RelativeTemplate
) -> None:
    claimed = card_decision.scores["card_similarity"]
    far = apply_relative_rule(card_decision, probes, [other_relative], POLICY).scores["relative_max_similarity"]
    assert claimed is not None and far is not None
    # A margin just wider than the gap catches even B; just narrower does not.
    gap = claimed - far
    wide = apply_relative_rule(card_decision, probes, [other_relative], RelativePolicy(gap + 0.01))
    narrow = apply_relative_rule(card_decision, probes, [other_relative], RelativePolicy(gap - 0.01))
    assert wide.outcome is Outcome.REVIEW and wide.thresholds["relative_margin"] == pytest.approx(gap + 0.01)
    assert narrow.outcome is Outcome.ACCEPT


def test_a_reject_stays_a_reject(
    card_decision: Decision, probes: list[FaceObservation], relative_in_video: RelativeTemplate
) -> None:
    rejected = Decision(
        outcome=Outcome.REJECT,
        reasons=[ReasonCode.SPOOF_SUSPECTED],
        scores=card_decision.scores,
        thresholds=card_decision.thresholds,
        model_versions=card_decision.model_versions,
    )
    result = apply_relative_rule(rejected, probes, [relative_in_video], POLICY)
    assert result.outcome is Outcome.REJECT
    assert result.reasons == [ReasonCode.SPOOF_SUSPECTED, ReasonCode.FACE_CLOSER_TO_RELATIVE]


def test_nothing_to_compare_leaves_the_decision_as_it_is(
    card_decision: Decision, probes: list[FaceObservation], relative_in_video: RelativeTemplate
) -> None:
    assert apply_relative_rule(card_decision, probes, [], POLICY) is card_decision
    assert apply_relative_rule(card_decision, [], [relative_in_video], POLICY) is card_decision


def test_without_a_claimed_score_only_the_relative_score_is_recorded(
    card_decision: Decision, probes: list[FaceObservation], relative_in_video: RelativeTemplate
) -> None:
    no_face = Decision(Outcome.REJECT, [ReasonCode.FACE_NOT_FOUND], {"card_similarity": None}, {}, {})
    result = apply_relative_rule(no_face, probes, [relative_in_video], POLICY)
    assert result.outcome is Outcome.REJECT and result.reasons == [ReasonCode.FACE_NOT_FOUND]
    assert result.scores["relative_max_similarity"] is not None


def test_every_reason_code_has_a_citizen_message() -> None:
    assert set(MESSAGES_ZH) == set(ReasonCode)
    assert all(MESSAGES_ZH[c] for c in ReasonCode)
