"""The last gaps of the GB18030 / Windows-1252 choice (docs/security.md Part BI), with the bytes Excel writes saved
as files: a Western roster whose only accents are a no-break space, ´ or © (imported garbled before), and a
Chinese roster's names that set Latin letters beside Han characters (A許B, Anna韓: refused before)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary
from service.certification.roster import import_roster
from service.features.console.labels import roster_file_error_zh
from tests.service.test_roster import TERMS
from tests.service.test_roster_western import text_of


def saved(tmp_path: Path, names: list[str], encoding: str) -> bytes:
    """The roster written to a file as the save writes it, and read back."""
    path = tmp_path / f"roster-{encoding}.csv"
    path.write_bytes(text_of(names).encode(encoding))
    return path.read_bytes()


def refusal(db: Session, ctx: ServiceContext, data: bytes) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert db.scalar(select(Beneficiary)) is None
    return info.value


def stored(db: Session, ctx: ServiceContext, data: bytes) -> set[str]:
    report = import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert not report.rejected, report.to_dict()
    return {b.name for b in db.scalars(select(Beneficiary))}


# A Western file whose only non-ASCII bytes are A0 (no-break space), B4 (´ typed for an apostrophe) or A9 (©), each
# before a letter: read as GB18030 without an error (Jean燚upont, D碅ngelo, Smith㎎ones). The line the name is on.
ONLY_ODD_BYTES = {
    "no-break space": (["SMITH", "Jean\u00a0Dupont"], 3),
    "no-break space, capitals": (["JEAN\u00a0DUPONT", "PIERRE"], 2),
    "acute as apostrophe": (["SMITH", "D´Angelo", "O´NEIL"], 3),
    "copyright sign": (["SMITH", "Smith©Jones"], 3),
    "copyright sign in a Chinese roster": (["张秀英", "Smith©Jones", "李四"], 3),
}


@pytest.mark.parametrize("case", list(ONLY_ODD_BYTES))
def test_a_western_roster_whose_only_accents_are_a_no_break_space_acute_or_copyright_is_refused(
    case: str, tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    names, line = ONLY_ODD_BYTES[case]
    encoding = "gb18030" if "Chinese" in case else "cp1252"
    data = saved(tmp_path, names, encoding)
    if encoding == "gb18030":  # the Western row appended byte for byte
        data = data.replace("Smith©Jones".encode("gb18030"), "Smith©Jones".encode("cp1252"))
    exc = refusal(db, ctx, data)
    assert exc.code == "ROSTER_FORMAT" and "Windows-1252" in exc.detail, exc.detail
    assert exc.detail.endswith(f"line {line}"), exc.detail
    zh = roster_file_error_zh(exc)
    assert "西文" in zh and f"第 {line} 行" in zh and "CSV UTF-8" in zh, zh


def test_chinese_names_of_those_bytes_still_import(tmp_path: Path, ctx: ServiceContext, db: Session) -> None:
    """燚 (A044) and 碩 (B454) are a no-break space's and ´'s bytes before a letter, and names' characters."""
    names = ["王燚", "李碩", "张燚A", "Anna·王燚", "张秀英"]
    assert stored(db, ctx, saved(tmp_path, names, "gb18030")) == set(names)


# Names of a Chinese roster whose Han character is the bytes of an accented letter and a Latin letter beside Latin
# letters (許 D453: Ô S; 韓 ED6E: í n; 王 CDF5: Í õ): refused as a Western word's bytes before, whatever the file.
MIXED = ["A許B", "Anna韓", "Mary王Smith", "JOHN許SMITH", "韓A許B"]


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_a_latin_and_han_name_that_may_be_western_bytes_imports_from_a_clearly_chinese_roster(
    encoding: str, tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    names = ["张秀英", *MIXED, "李四"]
    assert stored(db, ctx, saved(tmp_path, names, encoding)) == set(names)


# Western rows appended byte for byte to that Chinese roster: their character is no name's (黮 of Müller, 鏾 of
# Françoise), or a Latin word goes on after it in lower case (Mart韓ez, C閏ile): refused, as before.
WESTERN_IN_A_CHINESE_ROSTER = ["Müller", "Françoise", "Martínez", "Cécile"]


@pytest.mark.parametrize("western", WESTERN_IN_A_CHINESE_ROSTER)
def test_a_western_row_in_a_chinese_roster_is_still_refused(
    western: str, tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    data = saved(tmp_path, ["张秀英", "A許B", western, "李四"], "gb18030")
    data = data.replace(western.encode("gb18030"), western.encode("cp1252"))
    exc = refusal(db, ctx, data)
    assert "Windows-1252" in exc.detail and exc.detail.endswith("line 4"), exc.detail


@pytest.mark.parametrize("chinese", [["李娜"], ["李永", "田丽"], []])
def test_a_mixed_name_is_refused_where_the_chinese_names_could_be_western_bytes_too(
    chinese: list[str], tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    """李娜 is ÀîÄÈ, 李永 ÀîÓÀ, 田丽 ÌïÀö: a Western file could hold them; then A許B (AÔSB) cannot be told: refused,
    saying to save as CSV UTF-8."""
    exc = refusal(db, ctx, saved(tmp_path, [*chinese, "A許B"], "gb18030"))
    assert "Windows-1252" in exc.detail and exc.detail.endswith(f"line {len(chinese) + 2}"), exc.detail
    assert "CSV UTF-8" in roster_file_error_zh(exc)
