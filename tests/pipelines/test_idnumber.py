"""The one ID-number validator (pipelines/idnumber.py) on the numbers real pensioners hold besides the ordinary
resident ID card: residence permits of Hong Kong, Macau and Taiwan residents, the new 18-digit foreigners'
permanent residence card, and typed input (full-width characters, spaces, a lower-case x, the 15-digit numbers
of old rosters)."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.idnumber import check_digit, check_number, normalise


def _number(body17: str) -> str:
    return body17 + check_digit(body17)


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
def test_hong_kong_macau_and_taiwan_residence_permits_are_valid(prefix: str) -> None:
    # 港澳台居民居住证: 810000 / 820000 / 830000, then the birth date, a sequence and the MOD 11-2 check digit.
    # Before: 830000 (Taiwan) was refused as an unknown region code.
    check = check_number(_number(f"{prefix}19480305002"))
    assert check.valid, check
    assert check.birth_date == dt.date(1948, 3, 5) and check.sex == "女"
    assert check.region is not None and "居住证" in check.region


def test_a_residence_permit_with_a_wrong_check_digit_or_date_is_still_refused() -> None:
    good = _number("83000019480305002")
    assert check_number(good[:-1] + ("1" if good[-1] != "1" else "2")).problems == ["checksum"]
    assert "birth_date" in check_number(_number("83000019480230002")).problems


def test_a_foreigners_permanent_residence_card_number_is_valid() -> None:
    # 2023 format: 9, the province of the issuing authority (11 北京), the nationality (840), birth date, ….
    # Before: refused as an unknown region code.
    check = check_number(_number("91184019520617003"))
    assert check.valid, check
    assert check.birth_date == dt.date(1952, 6, 17)
    assert check.region is not None and check.region.startswith("北京市") and "永久居留" in check.region


@pytest.mark.parametrize("body", ["99984019520617003", "91100019520617003", "90084019520617003", "97184019520617003"])
def test_a_permanent_residence_number_needs_a_province_and_a_nationality(body: str) -> None:
    # 99: no such province; 000: no nationality; 00: no province; 71 (台湾省): not a mainland issuing province.
    assert check_number(_number(body)).problems == ["region"]


VALID = _number("42010619410721469")


@pytest.mark.parametrize(
    "typed",
    [
        "４２０１０６１９４１０７２１４６９" + VALID[-1],  # full-width digits (a Chinese input method)
        f" {VALID[:6]} {VALID[6:14]} {VALID[14:]} ",  # groups, as read off the card aloud
        f"{VALID[:6]}\u3000{VALID[6:]}",  # ideographic space
        f"{VALID}\n",
    ],
)
def test_typed_numbers_are_normalised_to_the_printed_form(typed: str) -> None:
    assert normalise(typed) == VALID


def test_full_width_and_lower_case_check_digit_x() -> None:
    assert normalise("61011319351004747Ｘ") == "61011319351004747X"
    assert normalise("61011319351004747ｘ") == "61011319351004747X"
    assert normalise("61011319351004747x") == "61011319351004747X"


X_NUMBER = _number("11010119490101019")  # check digit X


@pytest.mark.parametrize(
    "typed",
    [
        X_NUMBER[:-1] + "\u2169",  # Ⅹ Roman numeral ten: what the Chinese IME offers for "x" on a digit pad
        X_NUMBER[:-1] + "\u2179",  # ⅹ small Roman numeral ten
        X_NUMBER[:-1] + "\u00d7",  # × multiplication sign ("末位X请勿输入乘号×")
        X_NUMBER[:-1] + "\u2715",  # ✕ multiplication X
        X_NUMBER[:-1] + "\u03a7",  # Greek capital chi
        X_NUMBER[:-1] + "\u03c7",  # Greek small chi
        f"{X_NUMBER[:6]}-{X_NUMBER[6:14]}-{X_NUMBER[14:]}",  # hyphen groups
        f"{X_NUMBER[:6]}\u2014{X_NUMBER[6:14]}\u2013{X_NUMBER[14:]}",  # em and en dash
        f"{X_NUMBER[:6]}\uff0d{X_NUMBER[6:]}",  # full-width hyphen
        f"\u200b{X_NUMBER}\u200b",  # zero-width spaces, pasted from a chat
        f"\ufeff{X_NUMBER[:9]}\u200c\u200d\u2060{X_NUMBER[9:]}",  # BOM, non-joiner, joiner, word joiner
        f"\u200b{X_NUMBER[:6]}-{X_NUMBER[6:-1]}\u00d7 ",  # all at once
    ],
)
def test_typed_x_look_alikes_separators_and_invisible_characters_are_normalised(typed: str) -> None:
    assert X_NUMBER.endswith("X")
    assert normalise(typed) == X_NUMBER and check_number(normalise(typed)).valid


@pytest.mark.parametrize("lookalike", ["\u2169", "\u00d7", "\u03c7"])
def test_an_x_look_alike_is_read_as_x_only_as_the_check_digit(lookalike: str) -> None:
    # In another place it is no digit: the number stays malformed, for the validator to refuse as a format error.
    typed = X_NUMBER[:8] + lookalike + X_NUMBER[9:]
    assert check_number(normalise(typed)).problems == ["format"]
    assert check_number(normalise(X_NUMBER + lookalike)).problems == ["format"]  # a 19th character


def test_a_fifteen_digit_number_of_an_old_roster_becomes_its_eighteen_digit_form() -> None:
    # GB 11643-1999: "19" is inserted before the two-digit year and the check digit appended.
    upgraded = normalise("420106410721469")
    assert upgraded == VALID and check_number(upgraded).valid


def test_normalise_leaves_what_is_not_a_number_for_the_validator_to_refuse() -> None:
    for text in ("", "abc", "4201064107214", "42010641072146X", "١10102195003140123", "²1010219500314012X"):
        assert not check_number(normalise(text)).valid
