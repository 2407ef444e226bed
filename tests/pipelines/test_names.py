"""Names as old rosters and records write them (traditional or variant characters, 陳 for 陈) and as the resident ID
card prints them (simplified): the same name to `same_name`, never two different simplified names made one.
pipelines/data/name_fold.tsv, from OpenCC (pipelines/data/name_fold.md)."""

from __future__ import annotations

import pytest

from pipelines import names
from pipelines.names import same_name


@pytest.mark.parametrize(
    ("roster", "card"),
    [
        ("陳秀英", "陈秀英"),
        ("張偉", "张伟"),
        ("鍾", "钟"),
        ("劉德華", "刘德华"),
        ("黃麗娟", "黄丽娟"),
        ("趙鄭羅吳", "赵郑罗吴"),
        ("李峯", "李峰"),  # a variant (異體字)
        ("王綫", "王线"),
        ("陳 秀英", "陈秀英"),  # with the earlier folds (whitespace)
        ("阿依古麗•買買提", "阿依古丽·买买提"),  # and the middle dot
        ("ＡＢ陳", "AB陈"),  # NFKC first
    ],
)
def test_a_traditional_or_variant_spelling_is_the_same_name(roster: str, card: str) -> None:
    assert same_name(roster, card)
    assert same_name(card, roster)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("陈", "程"),
        ("陳秀英", "程秀英"),
        ("张伟", "章伟"),
        ("陈秀英", "陈秀"),
        # Characters written so in simplified Chinese too (the 2013 standard keeps several for names) are not
        # folded into another simplified character: two simplified names stay two.
        ("於明", "于明"),
        ("沈阳", "沉阳"),
        ("喆", "哲"),
        ("堃", "坤"),
        ("甯", "宁"),
        ("乾", "干"),
        ("钟", "锺"),  # both simplified (锺 the 2013 standard's surname form): left to staff
        # In GB2312 (the mainland simplified set): 麴 a surname of its own, 榘 a given-name character (韩复榘).
        ("麴秀英", "曲秀英"),
        ("韩复榘", "韩复矩"),
    ],
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert not same_name(a, b)


def test_a_simplified_character_is_never_folded() -> None:
    # The table's keys are never a simplified character: none is another key's value, so folding is idempotent
    # and applying it on both sides never merges two simplified spellings.
    table = names.fold_table()
    assert len(table) > 3000
    assert not set(table) & set(table.values())
    assert all(len(k) == 1 and len(v) == 1 and k != v for k, v in table.items())


def test_no_character_of_gb2312_is_folded() -> None:
    # GB2312 is the mainland simplified set: a character in it is written so in simplified Chinese (麴, 榘, 後,
    # 摺…), so it is never a key (scripts/gen_name_fold.py leaves out every key that encodes in GB2312).
    in_gb2312 = []
    for key in names.fold_table():
        try:
            key.encode("gb2312")
        except UnicodeEncodeError:
            continue
        in_gb2312.append(key)
    assert in_gb2312 == []


def test_the_stored_and_displayed_forms_are_not_folded() -> None:
    # Only comparison keys fold: the import stores, and the card reader gives, the name as written.
    assert names.stored_name("陳秀英") == "陳秀英"
    assert names.normalise_name("陳秀英") == "陳秀英"
    assert names.compare_key("陳 秀英") == "陈秀英"
