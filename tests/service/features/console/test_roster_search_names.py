"""The console's roster search by name, however the name was typed on the roster or in the search box.

Ethnic-minority names carry a middle dot (阿依古丽·买买提): cards print U+00B7, rosters and keyboards give
look-alikes (• ‧ ・ ･ ．.) or none, often with spaces; an input method in full-width mode gives full-width
letters. The ID-card step compares names in one form (pipelines.names.normalise_name); the search compared the
typed text with the stored one character by character, so staff looking for 阿依古丽•买买提 missed the record
stored as 阿依古丽·买买提, and the other way round.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines import names
from service.certification.context import ServiceContext
from service.certification.cycle import CycleRules
from service.certification.models import Beneficiary
from service.certification.roster import ImportTerms, import_roster
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import roster_search
from service.features.console.auth import Role, Staff
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.test_roster import to_csv

TYPED = [
    "阿依古丽·买买提",
    "阿依古丽•买买提",
    "阿依古丽‧买买提",
    "阿依古丽・买买提",
    "阿依古丽･买买提",
    "阿依古丽.买买提",
    "阿依古丽．买买提",
    "阿依古丽 · 买买提",
    "阿依古丽买买提",
    "阿依古丽 买买提",
    "阿依古丽·买",  # the beginning of the name, as before
]
TERMS = ImportTerms(dt.date(2026, 5, 1), CycleRules(), grace_days=90)


def search(client: TestClient, csrf: str, q: str) -> str:
    r = client.post("/console/roster/search", data={"q": q, "csrf": csrf})
    assert r.status_code == 200
    page: str = r.text
    return page


def last_shown(ctx: ServiceContext) -> list[str]:
    with ctx.db() as db:
        q = select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "roster.search")
        entry = db.scalars(q.order_by(ConsoleAuditEntry.seq.desc()).limit(1)).one()
    assert entry.target == "name"
    shown: list[str] = entry.detail["shown"]
    return shown


@pytest.mark.parametrize("stored", ["阿依古丽·买买提", "阿依古丽•买买提", "阿依古丽 ・ 买买提", "阿依古丽买买提"])
def test_a_dotted_name_is_found_whichever_dot_was_stored_or_typed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], stored: str
) -> None:
    with ctx.db() as db:
        ext = factories.beneficiary(db, ctx.keyring, name=stored).external_id
        other = factories.beneficiary(db, ctx.keyring, name="阿依古丽·吐尔逊").external_id
    csrf = login(app_client, "rev1")
    for typed in TYPED:
        assert ext in search(app_client, csrf, typed), typed
        assert last_shown(ctx) == [ext], typed  # and only them: another 阿依古丽 is not this name
    assert set(last_shown_after(app_client, ctx, csrf, "阿依古丽")) == {ext, other}


def last_shown_after(client: TestClient, ctx: ServiceContext, csrf: str, q: str) -> list[str]:
    search(client, csrf, q)
    return last_shown(ctx)


def test_spaces_inside_a_name_and_full_width_letters_are_not_part_of_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        zhang = factories.beneficiary(db, ctx.keyring, name="张三").external_id
        spaced = factories.beneficiary(db, ctx.keyring, name="李\u3000四").external_id  # an ideographic space
        latin = factories.beneficiary(db, ctx.keyring, name="玛丽·ANN").external_id
    csrf = login(app_client, "rev1")
    assert last_shown_after(app_client, ctx, csrf, "张 三") == [zhang]
    assert last_shown_after(app_client, ctx, csrf, "李四") == [spaced]
    assert last_shown_after(app_client, ctx, csrf, "玛丽ＡＮＮ") == [latin]


def test_dots_or_spaces_alone_find_nobody_rather_than_everyone(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, name="阿依古丽·买买提")
    csrf = login(app_client, "rev1")
    for typed in ("·", "•・", "\u3000·\u3000"):
        assert last_shown_after(app_client, ctx, csrf, typed) == [], typed


def test_a_roster_name_in_full_width_letters_is_stored_as_it_reads(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Full-width letters (an input method in full-width mode) are stored as the letters they are (NFKC, as the
    ID-card step reads them), spaces between words kept; the name typed either way finds the record."""
    number = factories.id_number(birth=dt.date(1950, 3, 8))
    row = ["X-FW", number, "ＭＡＲＹ ＡＮＮ·李", "", "enterprise_pension", "", "2026-06-30"]
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, "roster.csv", to_csv([row]), "test", TERMS)
        assert report.created == 1
        assert db.scalar(select(Beneficiary.name).where(Beneficiary.external_id == "X-FW")) == "MARY ANN·李"
    csrf = login(app_client, "rev1")
    for typed in ("ＭＡＲＹ ＡＮＮ·李", "ＭＡＲＹＡＮＮ•李", "ＭＡＲＹ"):
        assert last_shown_after(app_client, ctx, csrf, typed) == ["X-FW"], typed


def test_a_name_typed_with_another_dot_on_the_next_roster_is_not_a_changed_name(ctx: ServiceContext) -> None:
    """The record handed to another number with the same name typed with another dot: the identity change says
    the name stayed (it is one name, as the ID-card step reads it)."""
    first, second = (factories.id_number(birth=dt.date(1950, 3, d)) for d in (8, 9))
    with ctx.db() as db:
        import_roster(
            db,
            ctx.keyring,
            "r.csv",
            to_csv([["X-DOT", first, "阿依古丽•买买提", "", "enterprise_pension", "", ""]]),
            "test",
            TERMS,
        )
        again = [["X-DOT", second, "阿依古丽·买买提", "", "enterprise_pension", "", ""]]
        report = import_roster(db, ctx.keyring, "r.csv", to_csv(again), "test", TERMS)
    (change,) = report.identity_changed
    assert change["name_changed"] is False


# Names stored before the import applied NFKC (the record as it was then: a full-width letter, a compatibility
# ideograph U+F9E1 that looks and reads as 李, an en space inside): SQL has no NFKC, so the search compared them
# with the typed text normalised and missed them, even pasted exactly as stored.
LEGACY = {
    "李Ａ": ("李Ａ", "李"),  # typed exactly; the beginning in plain letters
    "\uf9e1明": ("\uf9e1明",),
    "阿依古丽\u2002买买提": ("阿依古丽\u2002买买提", "阿依古丽买买提", "阿依古丽·买买提", "阿依古丽 买买提"),
    "玛丽\u205fＡＮＮ": ("玛丽\u205fＡＮＮ", "玛丽ＡＮＮ", "玛丽 ＡＮＮ"),  # a medium mathematical space
}


@pytest.mark.parametrize("stored", list(LEGACY))
def test_a_name_stored_before_is_found_pasted_exactly_or_without_its_odd_spaces(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], stored: str
) -> None:
    with ctx.db() as db:
        ext = factories.beneficiary(db, ctx.keyring, name=stored).external_id
        factories.beneficiary(db, ctx.keyring, name="王五")
    csrf = login(app_client, "rev1")
    for typed in LEGACY[stored]:
        assert last_shown_after(app_client, ctx, csrf, typed) == [ext], ascii(typed)


def test_the_next_roster_import_stores_a_name_stored_before_in_its_normalised_form(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Until then 李A (plain letters) does not find 李Ａ stored before (SQL has no NFKC); the next import of the
    same roster row stores 李A, found typed either way."""
    number = factories.id_number(birth=dt.date(1950, 3, 8))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, external_id="X-OLD", name="李Ａ", region="370102")
    csrf = login(app_client, "rev1")
    assert last_shown_after(app_client, ctx, csrf, "李A") == []
    with ctx.db() as db:
        row = ["X-OLD", number, "李Ａ", "370102", "enterprise_pension", "", "2026-06-30"]
        import_roster(db, ctx.keyring, "roster.csv", to_csv([row]), "test", TERMS)
        assert db.scalar(select(Beneficiary.name).where(Beneficiary.external_id == "X-OLD")) == "李A"
    for typed in ("李A", "李Ａ"):
        assert last_shown_after(app_client, ctx, csrf, typed) == ["X-OLD"], typed


def test_one_rule_for_what_a_name_search_leaves_out() -> None:
    """Every character Python counts as whitespace (what normalise_name drops) is in what SQL takes out, and the
    search key is the ID-card step's form without the dot."""
    spaces = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert spaces <= set(names.SEARCH_LEFT_OUT)
    assert set(names.DOT_VARIANTS) <= set(names.SEARCH_LEFT_OUT)
    for text in ("阿依古丽 ・ 买买提", "ＭＡＲＹ\u2002ＡＮＮ", "\uf9e1明", "李\u3000四"):
        assert names.search_key(text) == names.normalise_name(text).replace(names.MIDDLE_DOT, "")
        assert names.plain_key(text) == "".join(c for c in text if c not in names.SEARCH_LEFT_OUT)


# Part AV: a roster typed from old records writes names in traditional or variant characters; staff type the card's
# simplified name (or the other way round), and any one character may be written either way.
def _found_by_each_spelling(
    client: TestClient, ctx: ServiceContext, stored: str, typed: tuple[str, ...], others: tuple[str, ...]
) -> None:
    """A person whose roster name is `stored`, beside people named `others`: a reviewer's search for each of
    `typed` shows that person alone."""
    with ctx.db() as db:
        ext = factories.beneficiary(db, ctx.keyring, name=stored).external_id
        for other in others:
            factories.beneficiary(db, ctx.keyring, name=other)
    csrf = login(client, "rev1")
    for one in typed:
        assert last_shown_after(client, ctx, csrf, one) == [ext], one


SPELLINGS = {
    "陳秀英": ("陈秀英", "陳秀英", "陈秀", "陳"),
    "陈秀英": ("陳秀英", "陈秀英", "陳秀"),
    "張偉": ("张伟", "張伟", "张偉", "張"),
    "李峯": ("李峰", "李峯"),
    "鍾麗華": ("钟丽华", "鍾丽華", "钟"),
}


@pytest.mark.parametrize("stored", list(SPELLINGS))
def test_a_name_is_found_typed_in_simplified_or_traditional_characters(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], stored: str
) -> None:
    # Other names, never found by these: 程 is no form of 陈 or 陳, 种 none of 钟.
    _found_by_each_spelling(app_client, ctx, stored, SPELLINGS[stored], others=("程秀英", "种丽华"))


def test_a_name_typed_with_traditional_characters_on_the_next_roster_is_not_a_changed_name(
    ctx: ServiceContext,
) -> None:
    first, second = (factories.id_number(birth=dt.date(1950, 3, d)) for d in (10, 11))
    with ctx.db() as db:
        row = ["X-TRAD", first, "陈秀英", "", "enterprise_pension", "", ""]
        import_roster(db, ctx.keyring, "r.csv", to_csv([row]), "test", TERMS)
        again = [["X-TRAD", second, "陳秀英", "", "enterprise_pension", "", ""]]
        report = import_roster(db, ctx.keyring, "r.csv", to_csv(again), "test", TERMS)
        stored = db.scalar(select(Beneficiary.name).where(Beneficiary.external_id == "X-TRAD"))
    (change,) = report.identity_changed
    assert change["name_changed"] is False
    assert stored == "陳秀英"  # stored as the roster writes it: only comparisons fold


def test_the_spellings_searched_are_bounded() -> None:
    # Every character of a long name with several traditional forms: the search's keys stay few.
    keys = names.spellings(names.search_key("发发发发发发发发"))
    assert 1 < len(keys) <= names.MAX_SPELLINGS
    assert names.spellings("陈秀英") == ("陈秀英", "陳秀英")


# Part AZ: 鍾 became both 钟 (1964) and 锺 (the 2013 standard's surname form), 餘 both 余 and 馀: one name each way.
SECOND_FORMS = {
    "锺丽华": ("钟丽华", "鍾麗華", "锺丽华", "钟"),
    "钟丽华": ("锺丽华", "锺"),
    "馀秀英": ("余秀英", "餘秀英"),
}


@pytest.mark.parametrize("stored", list(SECOND_FORMS))
def test_a_name_is_found_typed_in_the_other_simplified_form_of_its_character(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], stored: str
) -> None:
    # Other names, never found by these: 种 is no form of 钟 or 锺, 徐 none of 余 or 馀.
    _found_by_each_spelling(app_client, ctx, stored, SECOND_FORMS[stored], others=("种丽华", "徐秀英"))


# A name whose characters have more traditional forms than MAX_SPELLINGS spellings: written in both at once on the
# roster (a long name typed from old records), it was found by a shorter beginning only, not even pasted whole.
LONG_MIXED = {
    "陳丽華张偉國": ("陈丽华张伟国", "陳丽華张偉國", "陳麗華張偉國", "陈丽华张伟"),
    "阿依古丽·買买提": ("阿依古丽·买买提", "阿依古丽買买提", "阿依古丽买买"),
}


@pytest.mark.parametrize("stored", list(LONG_MIXED))
def test_a_long_name_mixing_both_forms_is_found_typed_whole(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], stored: str
) -> None:
    assert names.ANY_FORM in "".join(names.spellings(names.search_key(LONG_MIXED[stored][0])))
    # Other names the same but for a character the query leaves open in SQL: told apart after it.
    others = ("陈丽华张明国", "阿依古丽·买卖提")
    _found_by_each_spelling(app_client, ctx, stored, LONG_MIXED[stored], others)


def test_a_long_name_is_found_behind_more_names_of_its_beginning_than_one_read_holds(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """钟丽华 takes the open path (钟 has five forms since Part AZ): the names SQL lets through are read OPEN_LIMIT at a
    time, by name, until LIMIT are kept or none is left; a big region's 钟丽一, 钟丽丁… sorting before it were all
    the first read held, and the name typed whole was missed."""
    assert names.ANY_FORM in "".join(roster_search.query_keys("钟丽华"))
    monkeypatch.setattr(roster_search, "OPEN_LIMIT", 4)
    staff = Staff(id=1, username="u", display_name="u", role=Role.ADMIN, csrf="x")
    with ctx.db() as db:
        others = [chr(c) for c in range(0x4E00, 0x4E0B)]  # 一 丁 丂 …: each before 华 (U+534E)
        for i, given in enumerate(others):
            number = factories.id_number(birth=dt.date(1940, 1, 1) + dt.timedelta(days=i), seq=7)
            factories.beneficiary(db, ctx.keyring, name="钟丽" + given, id_number=number)
        target = factories.beneficiary(db, ctx.keyring, name="钟丽华").id
        db.flush()
        today = local_today(ctx.settings)
        kind, found, _ = roster_search.search(db, ctx.keyring, staff, "钟丽华", today)
        assert kind == "name" and [b.id for b in found] == [target]
        _, found, _ = roster_search.search(db, ctx.keyring, staff, "钟丽", today)  # no open path: every one, by name
        assert len(found) == len(others) + 1


@pytest.mark.parametrize(("before", "after"), [("王巨", "王钜"), ("钟丽华", "锺丽华")])
def test_a_name_in_another_simplified_character_on_the_next_roster_is_a_changed_name(
    ctx: ServiceContext, before: str, after: str
) -> None:
    """钜 and 巨, 锺 and 钟 are one name to the search (Part AZ), but two as a card prints them: with another ID
    number, the supervisor's alert (a typo or a handover?) and the relatives' revoked bindings must not take the
    name for unchanged (the bindings would show the new person's name as the old one's)."""
    first, second = (factories.id_number(birth=dt.date(1950, 4, d)) for d in (10, 11))
    with ctx.db() as db:
        import_roster(
            db, ctx.keyring, "r.csv", to_csv([["X-2ND", first, before, "", "enterprise_pension", "", ""]]), "t", TERMS
        )
        again = [["X-2ND", second, after, "", "enterprise_pension", "", ""]]
        report = import_roster(db, ctx.keyring, "r.csv", to_csv(again), "test", TERMS)
    (change,) = report.identity_changed
    assert change["name_changed"] is True
