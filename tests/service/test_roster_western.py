"""A roster saved by Excel or WPS in a Western locale (docs/security.md Part AR): Latin-1 / Windows-1252 bytes that
decode as GB18030 without an error (Müller as M黮ler), and Chinese names the save turned into question marks. Real
GB18030 rosters (rare characters, compound surnames, middle-dot names, foreigners' names in GB18030's own Latin
letters) are never refused: measured on generated rosters."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench import roster as bench_roster
from pipelines.names import stored_name
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary
from service.certification.roster import import_roster, read_table
from service.features.console.labels import roster_file_error_zh, roster_problem_zh
from tests.service import factories
from tests.service.test_roster import HEADER, TERMS

# Names as a Western roster holds them; each has an accented letter (or a typographic apostrophe) inside.
WESTERN = ["Müller", "Françoise", "Renée Li", "Björn", "Søren", "O’Brien", "Émile", "Gößmann", "Zoë Wang", "José"]


def text_of(names: list[str]) -> str:
    buf = io.StringIO()
    rows = [
        [f"W{i:03d}", factories.id_number(region="420106", seq=100 + i), name, "", "enterprise_pension", "", ""]
        for i, name in enumerate(names)
    ]
    csv.writer(buf).writerows([HEADER, *rows])
    return buf.getvalue()


def refused(data: bytes) -> ServiceError | None:
    try:
        list(read_table("r.csv", data))
    except ServiceError as exc:
        return exc
    return None


def test_a_windows_1252_roster_is_refused_not_stored_as_mojibake(ctx: ServiceContext, db: Session) -> None:
    # As a Western-locale Excel saves a roster: its Chinese names as ???, the rest in Windows-1252.
    data = text_of(["???", "Müller", "Li Si"]).encode("cp1252")
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    exc = info.value
    assert exc.code == "ROSTER_FORMAT" and "Windows-1252" in exc.detail and exc.detail.endswith("line 3"), exc.detail
    zh = roster_file_error_zh(exc)
    assert "西文" in zh and "第 3 行" in zh and "另存为" in zh, zh
    assert db.scalar(select(Beneficiary)) is None


def test_no_western_name_saved_as_windows_1252_is_imported() -> None:
    """Each name alone in a Windows-1252 file: refused, as GB18030 mojibake or as undecodable (é before a comma)."""
    reasons = {name: refused(text_of([name]).encode("cp1252")) for name in WESTERN}
    assert [name for name, exc in reasons.items() if exc is None] == []
    undecodable = [name for name, exc in reasons.items() if exc is not None and "Windows-1252" not in exc.detail]
    assert undecodable == ["Zoë Wang", "José"], reasons  # é before a space or a comma: "cannot decode line 2, …"


def test_generated_gb18030_rosters_are_never_refused() -> None:
    """False refusals, measured: 6000 generated people (rare 䶮 𠈌, compound surnames, middle dots) as Chinese Excel
    saves them, and foreigners' and pinyin names in GB18030's own Latin letters (ü, é, Ü four-byte)."""
    people = bench_roster.people(6000, seed=11)
    name, data = bench_roster.roster_file(people, "gb18030")
    rows = [cells for _, cells in read_table(name, data)]
    assert [r["姓名" if "姓名" in r else "name"] for r in rows] == [p["name"] for p in people]
    assert any("𠈌" in p["name"] or "䶮" in p["name"] for p in people) and any("·" in p["name"] for p in people)
    latin = ["Müller", "MÜLLER", "Renée", "lǚ", "张Müller", "玥", "王玥", "Anna·玛丽"]
    assert refused(text_of(latin).encode("gb18030")) is None


def test_a_name_whose_characters_were_lost_as_question_marks_is_refused(ctx: ServiceContext, db: Session) -> None:
    """Saved by a Western Excel, 张秀英 becomes ??? (ASCII: read as UTF-8 without a complaint)."""
    data = text_of(["张秀英", "李四"]).encode("cp1252", errors="replace")
    report = import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert report.created == 0 and [e["line"] for e in report.rejected] == [2, 3], report.to_dict()
    [problem] = report.rejected[0]["errors"]
    assert problem.startswith("name holds ? in place of characters"), problem
    assert "乱码" in roster_problem_zh(problem) and "UTF-8" in roster_problem_zh(problem)
    assert db.scalar(select(Beneficiary)) is None


# Real names that put a GBK character whose second byte is ASCII (﹒ A971, – A843, 玥 AB68) or an extended-GBK Han
# character (楊 97EE) beside Latin letters: none is the bytes of a Western accented letter.
REAL_BESIDE_LATIN = ["JOHN﹒SMITH", "JOHN–SMITH", "Jean–Pierre Dupont", "王玥A", "A楊B"]


@pytest.mark.parametrize("name", REAL_BESIDE_LATIN)
def test_a_real_name_beside_latin_letters_does_not_refuse_its_gb18030_file(name: str) -> None:
    exc = refused(text_of(["张秀英", name, "李四"]).encode("gb18030"))
    assert exc is None, exc.detail if exc else None


def test_real_names_beside_latin_letters_import_from_a_gb18030_file(ctx: ServiceContext, db: Session) -> None:
    """The whole file imports, every name as typed (NFKC: the small full stop ﹒ stored as the dot it is)."""
    # 黃 (FC53, ü then S) and 韓 (ED6E, í then n) are a letter's bytes too, but beside upper-case letters only.
    names = [*REAL_BESIDE_LATIN, "陳DAVID", "李A強", "Ma﹒Li", "Anne–Marie", "Zoë王", "黃DAVID", "韓A", "JOHN王SMITH"]
    report = import_roster(db, ctx.keyring, "r.csv", text_of(names).encode("gb18030"), "t", TERMS)
    assert report.encoding == "GB18030" and report.created == len(names) and not report.rejected, report.to_dict()
    stored = {b.name for b in db.scalars(select(Beneficiary))}
    assert stored == {stored_name(n) for n in names}, stored


def test_a_western_roster_is_still_refused_beside_real_names_with_latin_letters() -> None:
    """A Windows-1252 name in a Western file whose other names hold dashes and apostrophes: refused at its line.
    (A file of GB18030 Chinese names and one Windows-1252 name, which no single save makes, is read by its
    Chinese names since Part AZ: a GB18030 roster.)"""
    data = text_of(["JOHN–SMITH", "Jean–Pierre Dupont", "O’Neil", "Anne·Marie", "Françoise"]).encode("cp1252")
    exc = refused(data)
    assert exc is not None and "Windows-1252" in exc.detail and exc.detail.endswith("line 4"), exc  # O’Neil


# Part AZ: a name that may be a Western one's bytes but need not be (ANNA許 is ANNAÔS) is told by its file: a Chinese
# roster holds names of Han characters alone, which no Western name read as GB18030 is. One that is a Western word's
# bytes (A許B is AÔSB, Anna韓 Annaín, Mary王Smith MaryÍõSmith) is refused where the roster's Chinese names could be
# Western bytes too (李娜 is ÀîÄÈ); since Part BI it imports from a roster with a Chinese name no Western bytes make
# (张秀英: test_roster_mixed_names.py), and a Western row appended to a Chinese roster is refused by its characters
# (test_western_rows_appended_to_a_gb18030_roster_are_refused).
MIXED_REAL = ["ANNA許", "Zoë韓", "王A", "Mary·王"]
WORD_BYTES = ["A許B", "Anna韓", "Mary王Smith"]


@pytest.mark.parametrize("name", MIXED_REAL)
def test_a_latin_and_han_name_in_a_chinese_roster_is_imported_as_written(name: str) -> None:
    data = text_of(["张秀英", name, "李四"]).encode("gb18030")
    exc = refused(data)
    assert exc is None, exc.detail if exc else None
    assert [cells["name"] for _, cells in read_table("r.csv", data)][1] == name


@pytest.mark.parametrize("name", WORD_BYTES)
def test_a_name_that_is_a_western_words_bytes_refuses_even_a_chinese_roster(name: str) -> None:
    exc = refused(text_of(["李娜", name, "李四"]).encode("gb18030"))
    assert exc is not None and "Windows-1252" in exc.detail and exc.detail.endswith("line 3"), exc


@pytest.mark.parametrize("names", [["SMITH", "ÉMILE DUPONT"], ["CONCEIÇÃO", "SMITH"], ["Émile", "OLIVER"]])
def test_an_all_capitals_western_name_is_refused_with_its_file(names: list[str]) -> None:
    """An accented capital starting a word (ÉMILE), or two (CONCEIÇÃO): the name's shape was not told before."""
    exc = refused(text_of(names).encode("cp1252"))
    assert exc is not None and "Windows-1252" in exc.detail, exc
    bad = next(i for i, n in enumerate(names) if not n.isascii())
    assert exc.detail.endswith(f"line {bad + 2}"), exc.detail


# Review of Part AZ: a Western file's names hold other Windows-1252 bytes too (a no-break space A0, ´ B4 typed as an
# apostrophe, ª, º, curly quotes), which read as GB18030 without an error: no sign of a Chinese roster.
ODD_BYTES = {
    "no-break space": ["SMITH", "Müller", "Jean\u00a0Dupont"],
    "acute as apostrophe": ["SMITH", "Müller", "D´Angelo"],
    "curly quotes": ["SMITH", "Müller", "Robert “Bob” Jones"],
    "ordinal": ["SMITH", "Müller", "Mª Carmen"],
    "no-break space inside": ["Françoise\u00a0Martin", "Pierre"],
}


@pytest.mark.parametrize("case", list(ODD_BYTES))
def test_a_western_roster_with_other_windows_1252_bytes_is_refused(case: str) -> None:
    exc = refused(text_of(ODD_BYTES[case]).encode("cp1252"))
    assert exc is not None and ("Windows-1252" in exc.detail or "cannot decode" in exc.detail), exc


def test_western_rows_appended_to_a_gb18030_roster_are_refused(ctx: ServiceContext, db: Session) -> None:
    """Rows a Western-locale Excel saved, appended to a Chinese roster: M黮ler is no name, whatever the others are."""
    data = text_of(["张秀英", "Müller", "李四"]).encode("gb18030").replace("Müller".encode("gb18030"), b"M\xfcller")
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert "Windows-1252" in info.value.detail and info.value.detail.endswith("line 3"), info.value.detail
    assert db.scalar(select(Beneficiary)) is None


# A small Chinese roster: its Han-only names may all be bytes of accented letters (李娜 is ÀîÄÈ, 李永 ÀîÓÀ, 田丽 ÌïÀö:
# some 13 % of generated names), its Latin-and-Han names no Western word's (王A is ÍõA, 韓A ínA: a lower-case letter
# before a capital).
SMALL_CHINESE = [["李娜", "王A"], ["王A"], ["韓A"], ["林芳", "张A"], ["李永", "韓A"], ["田丽", "JOHN王SMITH"]]


@pytest.mark.parametrize("names", SMALL_CHINESE)
def test_a_small_chinese_roster_with_latin_letters_is_not_refused(names: list[str]) -> None:
    data = text_of(names).encode("gb18030")
    exc = refused(data)
    assert exc is None, exc.detail if exc else None
    assert [cells["name"] for _, cells in read_table("r.csv", data)] == names
