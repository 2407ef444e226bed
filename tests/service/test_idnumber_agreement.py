"""The roster and the card reader judge ID numbers with one validator and one region policy.

The same numbers go through the roster's row validation (service.certification.roster.validate_row, which
normalises typed input) and the card reader's number check (pipelines.idnumber.check_number, as called by the
reader's number step, pipelines/id_card/number.py); they
must accept and refuse the same ones, for the same reason.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.idnumber import check_digit, check_number
from service.certification import idnumber
from service.certification.roster import validate_row
from service.features.console.labels import roster_problem_zh


def _number(body17: str) -> str:
    return body17 + check_digit(body17)


def _bad_checksum(number: str) -> str:
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


TODAY = dt.date.today()
VALID = _number("42010619410721469")
CASES = {
    "valid": (VALID, None),
    "retired county code": (_number("13052119400101001"), None),  # 邢台县, merged away in 2020
    "county newer than stdnum's data": (_number("33011319450101002"), None),  # 临平区 (2021), only in the table
    "bad checksum": (_bad_checksum(VALID), "checksum"),
    "impossible birth date": (_number("42010619410231469"), "birth_date"),
    "future birth date": (_number(f"420106{TODAY + dt.timedelta(days=400):%Y%m%d}469"), "birth_date"),
    "born before 1900": (_number("42010618991231469"), "birth_date"),
    "unknown region": (_number("99999919410721469"), "region"),
    "X check digit": ("61011319351004747X", None),
    "x check digit (lowercase)": ("61011319351004747x", None),
    "wrong X check digit": ("61011319351004748X", "checksum"),
    "17 digits": (VALID[:17], "format"),
}
ROSTER_SENTENCE = {
    "format": idnumber.FORMAT,
    "birth_date": idnumber.BIRTH_DATE,
    "checksum": idnumber.CHECKSUM,
    "region": idnumber.REGION,
}


def _roster_problems(number: str) -> list[str]:
    raw = {"external_id": "P000001", "id_number": number, "name": "张秀英", "benefit_types": "enterprise_pension"}
    row, errors = validate_row(2, raw, TODAY)
    assert (row is None) == bool(errors)
    return errors


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_roster_and_card_agree(case: str) -> None:
    number, problem = CASES[case]
    card = check_number(number)
    roster = _roster_problems(number)
    assert card.valid == (roster == []) == (problem is None), (card, roster)
    if problem is not None:
        assert problem in card.problems
        assert roster == [ROSTER_SENTENCE[problem]]


def test_a_division_newer_than_stdnum_is_named_from_the_maintained_table() -> None:
    assert check_number(CASES["county newer than stdnum's data"][0]).region == "浙江省临平区"


def test_a_valid_number_reads_the_same_birth_date_on_both_paths() -> None:
    number = _number("61011319351004747")
    raw = {"external_id": "P1", "id_number": number, "name": "王", "benefit_types": "enterprise_pension"}
    row, errors = validate_row(2, raw, TODAY)
    assert errors == [] and row is not None
    assert row.birth_date == check_number(number).birth_date == dt.date(1935, 10, 4)


@pytest.mark.parametrize("sentence", list(ROSTER_SENTENCE.values()))
def test_every_number_problem_has_a_chinese_label_in_the_console(sentence: str) -> None:
    assert roster_problem_zh(sentence) != "该行数据不符合名册格式"
