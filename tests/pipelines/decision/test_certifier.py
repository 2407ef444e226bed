"""The whole offline certification on real media: a card rendered around a real selfie video's face, the
real video (and its replay attack), LFW-portrait cards from shared data, enrolled templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.decision import Outcome
from pipelines.decision.runner import CertificationReport, Certifier
from pipelines.id_card.synthetic import CardFields
from pipelines.reasons import ReasonCode
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, SPOOF_VIDEO, card_for_video

OTHER_PERSON_VIDEO = "videos/liveportrait_driving_d13.mp4"


@pytest.fixture(scope="module")
def certifier() -> Certifier:
    return Certifier()


@pytest.fixture(scope="module")
def live_card(data_dir: Path) -> tuple[bytes, CardFields]:
    return card_for_video(data_dir, LIVE_VIDEO)


@pytest.fixture(scope="module")
def accepted(certifier: Certifier, live_card: tuple[bytes, CardFields], data_dir: Path) -> CertificationReport:
    card, fields = live_card
    return certifier.run(card, (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, fields.id_number)


def test_matching_card_and_live_video_accept(
    accepted: CertificationReport, live_card: tuple[bytes, CardFields]
) -> None:
    d = accepted.decision
    assert d.outcome is Outcome.ACCEPT, d.to_dict()
    assert accepted.id_card is not None and accepted.id_card.id_number == live_card[1].id_number
    assert d.references == ["card"]
    card_sim = d.scores["card_similarity"]
    assert card_sim is not None and card_sim >= d.thresholds["face_accept"]
    assert d.model_versions["recognizer"] and any(k.startswith("liveness:") for k in d.model_versions)
    assert accepted.new_template is not None and accepted.new_template.embedding.shape[0] >= 128
    out = accepted.to_dict()
    assert out["decision"] == "accept" and out["liveness"]["passed"] is True


def test_card_of_another_person_rejects(certifier: Certifier, data_dir: Path) -> None:
    card = (data_dir / "idcard/synthetic/card_000.jpg").read_bytes()  # an LFW portrait
    r = certifier.run(card, (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, None)
    assert r.decision.outcome is Outcome.REJECT
    assert ReasonCode.FACE_MISMATCH in r.decision.reasons


def test_replay_attack_rejects(certifier: Certifier, live_card: tuple[bytes, CardFields], data_dir: Path) -> None:
    card, fields = live_card
    r = certifier.run(card, (data_dir / SPOOF_VIDEO).read_bytes(), LIVE_ACTIONS, fields.id_number)
    assert r.decision.outcome is Outcome.REJECT
    assert ReasonCode.SPOOF_SUSPECTED in r.decision.reasons


def test_number_of_another_beneficiary_rejects(
    certifier: Certifier, live_card: tuple[bytes, CardFields], data_dir: Path
) -> None:
    r = certifier.run(live_card[0], (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, "11010519491231002X")
    assert r.decision.outcome is Outcome.REJECT
    assert r.decision.reasons == [ReasonCode.ID_NUMBER_MISMATCH]


def test_garbage_card_rejects_without_raising(certifier: Certifier, data_dir: Path) -> None:
    r = certifier.run(b"not an image at all", (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, None)
    assert r.decision.outcome is Outcome.REJECT
    assert r.decision.reasons[0] in (ReasonCode.MEDIA_UNSUPPORTED, ReasonCode.MEDIA_CORRUPT)


def test_enrolled_template_against_old_card_photo_goes_to_review(
    certifier: Certifier, accepted: CertificationReport, data_dir: Path
) -> None:
    """Last year's selfie matches, the card photo does not: conflicting evidence, a person decides."""
    card = (data_dir / "idcard/synthetic/card_000.jpg").read_bytes()
    r = certifier.run(card, (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, None, accepted.new_template)
    assert r.template_match is not None and r.card_match is not None
    assert r.decision.outcome is Outcome.REVIEW
    assert r.decision.references == ["template"]
    tpl_sim = r.decision.scores["template_similarity"]
    assert tpl_sim is not None and tpl_sim > 0.8


def test_template_of_someone_else_is_not_trusted(
    certifier: Certifier, live_card: tuple[bytes, CardFields], data_dir: Path
) -> None:
    other = certifier.run(live_card[0], (data_dir / OTHER_PERSON_VIDEO).read_bytes(), ["blink"], None)
    assert other.new_template is not None
    card, fields = live_card
    r = certifier.run(card, (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, fields.id_number, other.new_template)
    # The card matches, the enrolled template (another person) does not clearly: a person decides.
    assert r.decision.outcome is Outcome.REVIEW
    tpl_sim = r.decision.scores["template_similarity"]
    assert tpl_sim is not None and tpl_sim < r.decision.thresholds["face_accept"]
