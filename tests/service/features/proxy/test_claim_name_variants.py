"""A relative's claimed name, and an elder's name typed to bind, are compared with the roster's as names, not as
strings of code points.

Ethnic-minority names carry a middle dot that phones type as ·, •, ・ or ‧ (and a full-width or half-width
space slips in around it). Before, 阿依古丽•买买提 against the roster's 阿依古丽·买买提 rejected the relative's
verification as ID_FIELDS_INCONSISTENT after the card and the face had passed.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from pipelines.decision.result import Outcome
from service.certification.context import ServiceContext
from tests.service import factories
from tests.service.certifiers import FixedCertifier
from tests.service.features.proxy.helpers import bind, new_elder, verified_operator
from tests.service.features.proxy.test_verification_without_beneficiary import decided, opened

LISTED = "阿依古丽·买买提"


@pytest.mark.parametrize("typed", ["阿依古丽•买买提", "阿依古丽・买买提", "阿依古丽‧买买提", "阿依古丽 · 买买提"])
def test_a_middle_dot_variant_of_the_roster_name_is_the_same_name(ctx: ServiceContext, typed: str) -> None:
    number = factories.id_number(region="650102", birth=dt.date(1952, 4, 1))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name=LISTED)
    _, sid = opened(ctx, number, name=typed)
    s = decided(ctx, sid, FixedCertifier(Outcome.ACCEPT))
    assert s.decision == "accept", s.reasons


def test_another_name_is_still_refused(ctx: ServiceContext) -> None:
    number = factories.id_number(region="650102", birth=dt.date(1952, 4, 2))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name=LISTED)
    _, sid = opened(ctx, number, name="阿依古丽·买买")
    s = decided(ctx, sid, FixedCertifier(Outcome.ACCEPT))
    assert s.decision == "reject" and s.reasons == ["ID_FIELDS_INCONSISTENT"]


def test_an_elder_is_bound_under_a_middle_dot_variant_of_the_roster_name(
    client: TestClient, ctx: ServiceContext
) -> None:
    # Before: 404, the answer for an unknown elder (audited as name_mismatch).
    _, number, _ = new_elder(ctx, name=LISTED)
    op = verified_operator(client, ctx)
    assert bind(client, op, number, "阿依古丽·买买").status_code == 404
    r = bind(client, op, number, "阿依古丽•买买提")
    assert r.status_code == 201, r.text


def test_a_roster_in_traditional_characters_is_the_same_name_as_the_card_in_simplified(ctx: ServiceContext) -> None:
    # Part AV: the roster (typed from old records) writes 張偉, the relative types the card's 张伟. Before: reject,
    # ID_FIELDS_INCONSISTENT, after the card and the face had passed.
    number = factories.id_number(region="110101", birth=dt.date(1952, 4, 3))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=number, name="張偉")
    _, sid = opened(ctx, number, name="张伟")
    s = decided(ctx, sid, FixedCertifier(Outcome.ACCEPT))
    assert s.decision == "accept", s.reasons


def test_an_elder_listed_in_simplified_is_bound_under_the_traditional_name(
    client: TestClient, ctx: ServiceContext
) -> None:
    _, number, _ = new_elder(ctx, name="刘秀兰")
    op = verified_operator(client, ctx)
    assert bind(client, op, number, "程秀蘭").status_code == 404
    r = bind(client, op, number, "劉秀蘭")
    assert r.status_code == 201, r.text
