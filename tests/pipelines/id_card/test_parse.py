"""Field rules of the card reader on odd but real text: ethnic-minority names with a middle dot as the
recogniser may print it, rare characters outside the BMP, and the emblem side's validity with other dashes."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.id_card.parse import ADDRESS_FIRST_LINE_Y, Char, address_field, emblem_fields, name_field


def _chars(text: str, y: float) -> list[Char]:
    """The text placed along one row of the template, entry column onwards, one glyph every 60 px."""
    return [Char(ch, 0.95, 360 + 60 * i, y, 0, 100.0) for i, ch in enumerate(text)]


@pytest.mark.parametrize("dot", ["·", "•", "・", "‧", "∙", "･", "﹒", "．"])
def test_a_minority_name_keeps_its_middle_dot_whatever_glyph_the_recogniser_gives(dot: str) -> None:
    # Before: only U+00B7 survived; the others were dropped, 阿依古丽•买买提 read as 阿依古丽买买提.
    name, _ = name_field(_chars(f"阿依古丽{dot}买买提", 230))
    assert name == "阿依古丽·买买提"


@pytest.mark.parametrize("name", ["刘𠮷", "王䶮", "𪚥明"])
def test_a_name_with_a_rare_character_keeps_it(name: str) -> None:
    # 𠮷 (U+20BB7) and 𪚥 (U+2A6A5) lie outside the BMP; before they were dropped (刘𠮷 read as 刘).
    assert name_field(_chars(name, 230))[0] == name


def test_an_address_with_a_rare_character_keeps_it() -> None:
    address, _ = address_field(_chars("福建省福州市𠮷祥路1号", ADDRESS_FIRST_LINE_Y))
    assert address == "福建省福州市𠮷祥路1号"


@pytest.mark.parametrize("dash", ["-", "—", "–", "一", "~", "～", "至", "－"])
def test_the_validity_period_is_read_whatever_dash_separates_its_dates(dash: str) -> None:
    # Before: an en dash or the 一 the recogniser often reads for a dash lost the whole period (expiry unknown).
    _, start, until, long_term = emblem_fields([f"有效期限2005.07.14{dash}2025.07.14"])
    assert (start, until, long_term) == (dt.date(2005, 7, 14), dt.date(2025, 7, 14), False)
    _, start, until, long_term = emblem_fields([f"有效期限2005.07.14{dash}长期"])
    assert (start, until, long_term) == (dt.date(2005, 7, 14), None, True)


def test_the_validity_period_is_read_when_the_dots_are_lost() -> None:
    _, start, until, _ = emblem_fields(["有效期限20050714-20250714"])
    assert (start, until) == (dt.date(2005, 7, 14), dt.date(2025, 7, 14))


def test_an_impossible_end_date_leaves_the_whole_period_unread() -> None:
    # Before: the start was kept and the end dropped, which reads as a card with no end (neither expired nor
    # long-term) rather than an unread period.
    assert emblem_fields(["有效期限2005.07.14-2025.02.30"])[1:] == (None, None, False)
