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
        # folded into another simplified character: these simplified names stay two (only the 7 second forms of
        # one traditional character are folded: test_only_second_simplified_forms_of_gb2312_are_folded).
        ("於明", "于明"),
        ("沈阳", "沉阳"),
        ("喆", "哲"),
        ("堃", "坤"),
        ("甯", "宁"),
        ("乾", "干"),
        # In GB2312 (the mainland simplified set): 麴 a surname of its own, 榘 a given-name character (韩复榘).
        ("麴秀英", "曲秀英"),
        ("韩复榘", "韩复矩"),
    ],
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert not same_name(a, b)


def test_a_simplified_character_is_never_folded() -> None:
    # No key is another key's value, so folding is idempotent; no key is a simplified character but the 7 second
    # forms of GB2312 (锺 → 钟: test_only_second_simplified_forms_of_gb2312_are_folded), the only simplified
    # spellings it merges.
    table = names.fold_table()
    assert len(table) > 3000
    assert not set(table) & set(table.values())
    assert all(len(k) == 1 and len(v) == 1 and k != v for k, v in table.items())


def test_the_stored_and_displayed_forms_are_not_folded() -> None:
    # Only comparison keys fold: the import stores, and the card reader gives, the name as written.
    assert names.stored_name("陳秀英") == "陳秀英"
    assert names.normalise_name("陳秀英") == "陳秀英"
    assert names.compare_key("陳 秀英") == "陈秀英"


# Part AZ: a traditional character with two simplified forms, and the choice among OpenCC's candidates.


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("锺丽华", "钟丽华"),  # 鍾 → 钟 (1964) and 锺 (the 2013 standard's surname form): one surname
        ("锺丽华", "鍾麗華"),
        ("锺丽华", "鐘麗華"),
        ("馀秀英", "余秀英"),  # 餘 → 余 and 馀
        ("馀秀英", "餘秀英"),
        ("缐文", "线文"),  # 線 → 线 and 缐 (a surname's form)
        ("李勣", "李绩"),  # 勣: OpenCC's first candidate 𪟝 is outside GBK; the card and roster systems write 绩
        ("李𪟝", "李绩"),
        ("李勣", "李𪟝"),
        ("张颺", "张飏"),  # 颺: its first candidate 飏 is in GBK, so kept
    ],
)
def test_two_simplified_forms_of_one_traditional_character_are_the_same_name(a: str, b: str) -> None:
    assert same_name(a, b)
    assert same_name(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("张飏", "张扬"),  # 扬 is 揚's simplified form: 颺's second candidate, not one standing for 颺 alone
        ("仇明", "雠明"),  # 仇 also stands for itself: a surname of its own
        ("划", "画"),  # 划 also stands for itself and for 劃
        ("资", "赀"),  # 资 stands for 資
        ("麴秀英", "麹秀英"),  # 麴 is left out (GB2312), so its second form folds to nothing either
    ],
)
def test_a_second_candidate_that_stands_for_another_character_too_stays_apart(a: str, b: str) -> None:
    assert not same_name(a, b)


def test_only_second_simplified_forms_of_gb2312_are_folded() -> None:
    # The only GB2312 keys: the second simplified forms of one traditional character each, folded onto its first.
    table = names.fold_table()
    folded = {}
    for key, value in table.items():
        try:
            key.encode("gb2312")
        except UnicodeEncodeError:
            continue
        folded[key] = value
    assert folded == {"锺": "钟", "馀": "余", "钜": "巨", "渖": "沈", "谘": "咨", "迳": "径", "镟": "旋"}


@pytest.mark.parametrize(("a", "b"), [("王巨", "王钜"), ("锺丽华", "钟丽华"), ("馀秀英", "余秀英")])
def test_two_simplified_forms_are_one_name_to_compare_but_two_as_a_card_prints_them(a: str, b: str) -> None:
    assert same_name(a, b)
    assert not names.same_card_name(a, b)


def test_traditional_spellings_dots_and_spaces_are_the_same_card_name() -> None:
    assert names.same_card_name("陳 秀英", "陈秀英")
    assert names.same_card_name("阿依古麗•買買提", "阿依古丽·买买提")
    assert names.same_card_name("鍾麗華", "钟丽华")  # 鍾's first simplified form
    assert not names.same_card_name("鍾麗華", "锺丽华")


# Part BI: old records and rosters write a minority name's middle dot as a space, often the full-width one a
# Chinese input method types (U+3000), or leave it out; the card prints ·, and the console's search already finds
# each from the others (`search_key`). The name checks refused the pensioner who typed the card's name.
@pytest.mark.parametrize(
    "old", ["阿依古丽　买买提", "阿依古丽 买买提", "阿依古丽买买提", "阿依古麗　買買提", "ＡＮＮＡ　王", "ANNA王"]
)
def test_a_middle_dot_written_as_a_space_or_left_out_is_the_same_name(old: str) -> None:
    card = "ANNA·王" if "A" in old.upper() or "Ａ" in old else "阿依古丽·买买提"
    assert same_name(old, card) and same_name(card, old)
    assert names.same_card_name(old, card)


def test_a_name_without_its_dot_is_still_not_another_name() -> None:
    assert not same_name("阿依古丽买买", "阿依古丽·买买提")
    assert not same_name("阿依古丽·买买提", "买买提·阿依古丽")
