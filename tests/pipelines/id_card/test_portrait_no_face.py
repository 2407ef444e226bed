"""A card whose printed portrait holds no face answers with the card's own advice (ID_PORTRAIT_NO_FACE), not
the selfie's "请正对镜头" (FACE_NOT_FOUND): the citizen must re-take the card, not face the camera."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.decision import Evidence, decide
from pipelines.id_card import IdCardReader
from pipelines.id_card.synthetic import CardGenerator
from pipelines.reasons import MESSAGES_ZH, ReasonCode

SELFIE_HINT = MESSAGES_ZH[ReasonCode.FACE_NOT_FOUND]


def test_a_card_portrait_without_a_face_has_its_own_card_side_message(
    reader: IdCardReader, generator: CardGenerator
) -> None:
    card = generator.generate(11)
    faceless = card.image.copy()
    cv2.fillConvexPoly(faceless, np.round(card.portrait_quad).astype(np.int32), (205, 205, 205))

    res = reader.read(faceless)
    assert res.id_number == card.fields.id_number  # the rest of the card still reads
    assert ReasonCode.ID_PORTRAIT_NO_FACE in res.errors and ReasonCode.FACE_NOT_FOUND not in res.errors
    assert res.portrait is None and not res.portrait_verified
    messages = res.to_dict()["messages"]
    assert MESSAGES_ZH[ReasonCode.ID_PORTRAIT_NO_FACE] in messages and SELFIE_HINT not in messages
    assert "身份证" in MESSAGES_ZH[ReasonCode.ID_PORTRAIT_NO_FACE]

    # The decision has no card portrait to compare with: it says why on the card side, not the selfie's hint.
    decision = decide(Evidence(id_card=res, liveness=None, card_match=None, expected_id_number=res.id_number))
    assert ReasonCode.ID_PORTRAIT_NO_FACE in decision.reasons
    assert ReasonCode.FACE_NOT_FOUND not in decision.reasons
    assert SELFIE_HINT not in decision.to_dict()["messages"]


def test_the_same_card_with_its_portrait_reads_without_that_reason(
    reader: IdCardReader, generator: CardGenerator
) -> None:
    res = reader.read(generator.generate(11).image)
    assert res.portrait_verified and ReasonCode.ID_PORTRAIT_NO_FACE not in res.errors
