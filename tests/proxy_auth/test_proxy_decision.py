from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.packs import load_pack
from pipelines.decision.result import Decision, Outcome
from pipelines.face_match import FaceMatcher, FaceObservation
from pipelines.media import load_image
from pipelines.reasons import ReasonCode
from proxy_auth import ProxyContext, ProxyPolicy, apply_proxy_policy, check_operator
from proxy_auth.decision import FLAG_OPERATOR_FACE

POLICY = ProxyPolicy()
# Two different dev identities: the operating relative and the elder.
OPERATOR = "lfw/Colin_Powell"
ELDER = "lfw/Zhu_Rongji"


@pytest.fixture(scope="module")
def matcher() -> FaceMatcher:
    return FaceMatcher(load_pack("default"))


def observe_dir(matcher: FaceMatcher, folder: Path, n: int, skip: int = 0) -> list[FaceObservation]:
    paths = sorted(folder.glob("*.jpg"))[skip : skip + n]
    return matcher.observe_many([load_image(p) for p in paths], allow_multiple=True)


@pytest.fixture(scope="module")
def operator_template(matcher: FaceMatcher, faces_dir: Path) -> np.ndarray:
    enrolled = observe_dir(matcher, faces_dir / OPERATOR, 2)
    pooled = np.mean([o.embedding for o in enrolled], axis=0)
    out: np.ndarray = pooled / np.linalg.norm(pooled)
    return out


def accepted(card_similarity: float, face_accept: float) -> Decision:
    return Decision(
        outcome=Outcome.ACCEPT,
        reasons=[],
        scores={"card_similarity": card_similarity, "template_similarity": None, "passive_liveness": 0.99},
        thresholds={"face_accept": face_accept, "face_review": face_accept - 0.15},
        model_versions={},
        references=["card"],
    )


def test_operator_filming_themselves_is_rejected_and_flagged(
    matcher: FaceMatcher, faces_dir: Path, operator_template: np.ndarray
) -> None:
    own_frames = observe_dir(matcher, faces_dir / OPERATOR, 3, skip=2)  # other photos of the operator
    check = check_operator(matcher, own_frames, operator_template, POLICY)
    assert check.same_person
    ctx = ProxyContext(elder_deceased=False, first_proxy_certification=False, operator=check)
    result = apply_proxy_policy(accepted(0.9, matcher.thresholds.accept), ctx, POLICY)
    assert result.outcome is Outcome.REJECT
    assert ReasonCode.PROXY_OPERATOR_FACE in result.reasons
    assert FLAG_OPERATOR_FACE in result.notes
    assert result.scores["operator_match"] == pytest.approx(check.similarity)


def test_elder_frames_are_not_the_operator(
    matcher: FaceMatcher, faces_dir: Path, operator_template: np.ndarray
) -> None:
    elder_frames = observe_dir(matcher, faces_dir / ELDER, 3)
    check = check_operator(matcher, elder_frames, operator_template, POLICY)
    assert not check.same_person and not check.suspicious
    accept = matcher.thresholds.accept
    ctx = ProxyContext(elder_deceased=False, first_proxy_certification=False, operator=check)
    result = apply_proxy_policy(accepted(accept + 0.2, accept), ctx, POLICY)
    assert result.outcome is Outcome.ACCEPT
    assert result.thresholds["proxy_face_accept"] == pytest.approx(accept + POLICY.accept_margin)


def test_stricter_threshold_and_first_proxy_go_to_review(
    matcher: FaceMatcher, faces_dir: Path, operator_template: np.ndarray
) -> None:
    check = check_operator(matcher, observe_dir(matcher, faces_dir / ELDER, 2), operator_template, POLICY)
    accept = matcher.thresholds.accept
    ctx = ProxyContext(elder_deceased=False, first_proxy_certification=False, operator=check)
    # Accepted for self-service, but not by the proxy margin.
    borderline = apply_proxy_policy(accepted(accept + POLICY.accept_margin / 2, accept), ctx, POLICY)
    assert borderline.outcome is Outcome.REVIEW
    first = apply_proxy_policy(
        accepted(accept + 0.2, accept), ProxyContext(False, first_proxy_certification=True, operator=check), POLICY
    )
    assert first.outcome is Outcome.REVIEW
    assert any("first proxy" in n for n in first.notes)


def test_deceased_elder_is_never_certified(
    matcher: FaceMatcher, faces_dir: Path, operator_template: np.ndarray
) -> None:
    check = check_operator(matcher, observe_dir(matcher, faces_dir / ELDER, 2), operator_template, POLICY)
    result = apply_proxy_policy(accepted(0.95, matcher.thresholds.accept), ProxyContext(True, False, check), POLICY)
    assert result.outcome is Outcome.REJECT
    assert ReasonCode.BENEFICIARY_DECEASED in result.reasons
    assert result.references == []
