"""Typed ID numbers reach the roster, lookups and hashes in one form: the printed 18 characters.

A roster exported from an old system, a clerk's search box or a relative's phone gives the same number as
full-width digits (a Chinese input method), in groups with spaces, with a lower-case or full-width x, or as the
15-digit number of a first-generation card. Before, the roster refused those rows ("must be 17 digits…") and a
lookup or a claim hashed them to something no stored number matched.
"""

from __future__ import annotations

import datetime as dt

import pytest

from service.certification import idnumber
from service.certification.context import ServiceContext
from service.certification.roster import validate_row
from service.certification.roster_rows import REGION_REQUIRED
from service.features.console.labels import roster_problem_zh
from service.infra.security import normalise_id
from tests.service import factories

NUMBER = factories.id_number(region="420106", birth=dt.date(1941, 7, 21), seq=469)
DAY = dt.date(2026, 5, 1)  # the import's (the bureau's) date: every birth date here is long before it
FULL_WIDTH = NUMBER.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
VARIANTS = [
    FULL_WIDTH,
    f"{NUMBER[:6]} {NUMBER[6:14]} {NUMBER[14:]}",
    f"\u3000{NUMBER}\u3000",
    "420106410721469",  # the same person's 15-digit first-generation number
]


@pytest.mark.parametrize("typed", VARIANTS)
def test_a_roster_row_with_a_typed_variant_is_imported_under_the_printed_number(typed: str) -> None:
    raw = {"external_id": "P1", "id_number": typed, "name": "张秀英", "benefit_types": "enterprise_pension"}
    row, errors = validate_row(2, raw, DAY)
    assert errors == [] and row is not None
    assert row.id_number == NUMBER and row.region == "420106"


@pytest.mark.parametrize("typed", VARIANTS)
def test_every_variant_hashes_like_the_printed_number(ctx: ServiceContext, typed: str) -> None:
    assert normalise_id(typed) == NUMBER
    assert ctx.keyring.id_hash(typed) == ctx.keyring.id_hash(NUMBER)


def test_a_taiwan_residents_permit_number_is_imported() -> None:
    body = "83000019480305002"
    raw = {
        "external_id": "P2",
        "id_number": body + idnumber.check_digit(body),
        "name": "林淑芬",
        "benefit_types": "enterprise_pension",
        "region": "350203",
    }
    row, errors = validate_row(2, raw, DAY)
    assert errors == [] and row is not None and row.region == "350203"
    # The permit's number names no place of residence: without the region column the row placed its holder in
    # "830000", outside every region-scoped account, birthday-month region and dashboard city (whole-diff review).
    # The row now reads with no region and none given: a stored record keeps its own, a new one is refused by the
    # import (test_roster_moves.py: test_a_residence_permit_holder_keeps_their_region_in_a_file_without_the_column).
    row, errors = validate_row(2, {**raw, "region": ""}, DAY)
    assert errors == [] and row is not None and (row.region, row.region_given) == ("", False)
    assert roster_problem_zh(REGION_REQUIRED).startswith("港澳台居民居住证号码不含居住地")


def test_a_foreign_residents_number_is_placed_in_its_issuing_province() -> None:
    body = "91115619480305002"  # 9, Beijing (11), nationality 156, then the birth date and a sequence
    raw = {"external_id": "P3", "id_number": body + idnumber.check_digit(body), "name": "JOHN SMITH"}
    row, errors = validate_row(2, {**raw, "benefit_types": "enterprise_pension"}, DAY)
    assert errors == [] and row is not None and row.region == "110000"  # not "911156"
