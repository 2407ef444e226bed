"""Decision rules on real stage results: the accepted certification's evidence with one piece changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipelines.decision import Evidence, Outcome, decide
from pipelines.decision.runner import CertificationReport, Certifier
from pipelines.liveness.fusion import Verdict
from pipelines.reasons import ReasonCode
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, card_for_video


@pytest.fixture(scope="module")
def report(data_dir: Path) -> CertificationReport:
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    return Certifier().run(card, (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, fields.id_number)


def evidence(report: CertificationReport, **changes: object) -> Evidence:
    ev = Evidence(
        id_card=report.id_card,
        liveness=report.liveness,
        card_match=report.card_match,
        expected_id_number=report.id_card.id_number if report.id_card else None,
    )
    return dataclasses.replace(ev, **changes)  # type: ignore[arg-type]


def card(report: CertificationReport, **changes: object) -> object:
    assert report.id_card is not None
    return dataclasses.replace(report.id_card, **changes)  # type: ignore[arg-type]


def test_baseline_accepts(report: CertificationReport) -> None:
    assert decide(evidence(report)).outcome is Outcome.ACCEPT


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id_number": None, "errors": [ReasonCode.ID_NUMBER_UNREADABLE]}, ReasonCode.ID_NUMBER_UNREADABLE),
        ({"id_number_valid": False}, ReasonCode.ID_CHECKSUM_FAILED),
        ({"expired": True}, ReasonCode.ID_EXPIRED),
        ({"errors": [ReasonCode.ID_WRONG_SIDE]}, ReasonCode.ID_WRONG_SIDE),
    ],
)
def test_card_failures_reject(report: CertificationReport, changes: dict[str, object], reason: ReasonCode) -> None:
    d = decide(evidence(report, id_card=card(report, **changes)))
    assert d.outcome is Outcome.REJECT and reason in d.reasons


def test_soft_card_flags_do_not_block_and_conflicts_go_to_review(report: CertificationReport) -> None:
    blurry = decide(evidence(report, id_card=card(report, errors=[ReasonCode.ID_TOO_BLURRY])))
    assert blurry.outcome is Outcome.ACCEPT and blurry.reasons == [ReasonCode.ID_TOO_BLURRY]
    inconsistent = decide(evidence(report, id_card=card(report, errors=[ReasonCode.ID_FIELDS_INCONSISTENT])))
    assert inconsistent.outcome is Outcome.REVIEW


def test_missing_face_reference_and_failed_liveness_reject(report: CertificationReport) -> None:
    assert decide(evidence(report, card_match=None)).reasons == [ReasonCode.FACE_NOT_FOUND]
    assert report.liveness is not None
    failed = dataclasses.replace(report.liveness, passed=False, reasons=[ReasonCode.CHALLENGE_WRONG_ORDER])
    d = decide(evidence(report, liveness=failed))
    assert d.outcome is Outcome.REJECT and d.reasons == [ReasonCode.CHALLENGE_WRONG_ORDER]
    dup = decide(evidence(report, stage_errors=[ReasonCode.VIDEO_DUPLICATE]))
    assert dup.outcome is Outcome.REJECT and dup.reasons[0] is ReasonCode.VIDEO_DUPLICATE


def test_borderline_match_goes_to_review(report: CertificationReport) -> None:
    m = report.card_match
    assert m is not None
    th = m.thresholds
    borderline = dataclasses.replace(
        m, similarity=(th.accept + th.review) / 2, band=th.band((th.accept + th.review) / 2)
    )
    d = decide(evidence(report, card_match=borderline))
    assert d.outcome is Outcome.REVIEW
    assert d.thresholds["face_accept"] == th.accept and d.thresholds["face_review"] == th.review


def test_template_is_the_stronger_reference(report: CertificationReport) -> None:
    m = report.card_match
    assert m is not None
    th = m.thresholds
    mid = (th.accept + th.review) / 2
    borderline = dataclasses.replace(m, similarity=mid, band=th.band(mid))
    # Last year's selfie matches, the old card photo is borderline: accept on the template.
    d = decide(evidence(report, card_match=borderline, template_match=m))
    assert d.outcome is Outcome.ACCEPT and d.references == ["template"]
    # The card matches but the enrolled template is borderline: a person decides.
    d = decide(evidence(report, card_match=m, template_match=borderline))
    assert d.outcome is Outcome.REVIEW
    # Both references clearly not this person: reject.
    low = dataclasses.replace(m, similarity=th.review - 0.2, band=th.band(th.review - 0.2))
    d = decide(evidence(report, card_match=low, template_match=low))
    assert d.outcome is Outcome.REJECT and ReasonCode.FACE_MISMATCH in d.reasons


@pytest.mark.parametrize(
    ("verdict", "reason", "outcome"),
    [("retake", ReasonCode.LIGHT_NOT_SEEN, Outcome.REJECT), ("review", ReasonCode.LIGHT_FLAT, Outcome.REVIEW)],
)
def test_the_screen_light_verdicts_reach_the_decision_with_their_code(
    report: CertificationReport, verdict: str, reason: ReasonCode, outcome: Outcome
) -> None:
    """An enforced screen-light finding (pipelines/liveness/fusion.py): a retake is not an accept (the citizen
    reads the hint), a flat response goes to a person; the notes say the light drove it."""
    assert report.liveness is not None
    live = dataclasses.replace(
        report.liveness, passed=False, verdict=Verdict(verdict), driver="light", reasons=[reason]
    )
    decision = decide(evidence(report, liveness=live))
    assert (decision.outcome, decision.reasons) == (outcome, [reason])
    assert decision.notes == [f"liveness {verdict}: driven by light"]
