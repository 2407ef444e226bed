"""ID numbers: any string is judged without crashing, valid numbers round-trip, checksum mutations are caught.

Both checkers: ``service.certification.idnumber`` (roster, lookups) and ``pipelines.id_card.validate``
(python-stdnum, card OCR).
"""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.common import fuzz_settings
from pipelines.idnumber import check_number
from service.certification import idnumber
from service.infra.security import normalise_id

# Digits of other scripts and look-alikes: str.isdigit() or regex \d accept some of them.
LOOKALIKES = "0123456789Xx²³¹٠١٢٣٤٥٦٧٨٩０１２３４５６７８９߀ 	\n-"
NEAR_NUMBERS = st.text(alphabet=LOOKALIKES, min_size=15, max_size=20)
ANY_TEXT = st.one_of(st.text(max_size=40), NEAR_NUMBERS)
# The bureau's date both checkers judge on: a fixed one, so that a case replays alike on any day.
DAY = dt.date(2026, 5, 1)


@st.composite
def valid_numbers(draw: st.DrawFn) -> tuple[str, dt.date]:
    region = draw(st.sampled_from(["110101", "370102", "440305", "510104", "650102", "130102"]))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=DAY))
    seq = draw(st.integers(0, 999))
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    return body + idnumber.check_digit(body), born


@fuzz_settings(short=300, long=50_000)
@given(ANY_TEXT)
@example("²1010219500314012X")  # isdigit() but not int()-able: crashed check_digit
@example("١10102195003140123")  # Arabic-Indic digits: were accepted as a valid number
@example("370102195003140123\n")
def test_any_string_is_judged_without_crashing(text: str) -> None:
    problem = idnumber.validate(normalise_id(text), DAY)
    check = check_number(text, DAY)
    if problem is None:  # accepted: exactly 17 ASCII digits and a digit or X, with a matching check digit
        n = normalise_id(text)
        assert n.isascii() and len(n) == 18 and idnumber.check_digit(n[:17]) == n[17]
        assert idnumber.birth_date(n) is not None
    if check.format_ok:
        assert text.isascii() and len(text) == 18
    if check.valid:
        assert check.birth_date is not None and check.sex in ("男", "女")


@fuzz_settings(short=200, long=20_000)
@given(valid_numbers())
def test_valid_numbers_round_trip(case: tuple[str, dt.date]) -> None:
    number, born = case
    assert idnumber.validate(number, DAY) is None
    assert idnumber.validate(normalise_id(f"  {number.lower()} "), DAY) is None  # …but the roster normalises it
    assert idnumber.birth_date(number) == born
    check = check_number(number, DAY)
    assert check.format_ok and check.checksum_ok and check.date_ok and check.region_ok, check
    assert check.birth_date == born and check.valid
    assert check.sex == ("男" if int(number[16]) % 2 else "女")


@fuzz_settings(short=200, long=20_000)
@given(valid_numbers(), st.integers(0, 16), st.integers(1, 9), st.booleans())
def test_checksum_detects_any_single_digit_change_or_swap(
    case: tuple[str, dt.date], pos: int, delta: int, swap: bool
) -> None:
    number, _born = case
    digits = list(number)
    if swap:
        if pos == 16 or digits[pos] == digits[pos + 1]:
            return
        digits[pos], digits[pos + 1] = digits[pos + 1], digits[pos]
    else:
        digits[pos] = str((int(digits[pos]) + delta) % 10)
    mutated = "".join(digits)
    assert mutated != number
    assert idnumber.validate(mutated, DAY) is not None  # MOD 11-2 catches every one-digit error and adjacent swap
    assert not check_number(mutated).checksum_ok
