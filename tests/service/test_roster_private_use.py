"""A roster name written with a private-use character (造字): how legacy population and social-security systems store
a rare character (GBK's user-defined areas; GB18030-2005's stand-ins, FE51 for 𠂇, U+E816). Nobody can type or
photograph it, so the person could never certify. Before, a UTF-8 roster imported 王\\ue816明 silently, and a
GB18030 one was refused as a whole, "Big5?", for that one name. Now the row is refused in every encoding with its
own reason, and the rest of the file imports; a GB18030-read file whose names hold such characters throughout is
still refused as Big5."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.certification.roster import import_roster
from service.certification.roster_rows import PRIVATE_USE
from service.features.console.labels import roster_problem_zh
from tests.service.test_roster import TERMS
from tests.service.test_roster_mixed_names import refusal, saved

PUA_NAME = "王\ue816明"  # GBK FE51, GB18030-2005's private-use stand-in for 𠂇 (U+20087)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("name", [PUA_NAME, "李\U000f0001"])  # and a supplementary private-use character
def test_a_name_with_a_private_use_character_is_refused_as_a_row(
    encoding: str, name: str, tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    data = saved(tmp_path, ["张秀英", name], encoding)
    report = import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert report.created == 1 and {b.name for b in db.scalars(select(Beneficiary))} == {"张秀英"}
    assert [(r["line"], r["errors"]) for r in report.rejected] == [(3, [PRIVATE_USE])], report.to_dict()


def test_the_console_tells_staff_to_write_the_standard_character() -> None:
    zh = roster_problem_zh(PRIVATE_USE)
    assert zh.startswith("姓名含自造字") and "标准汉字" in zh, zh


def test_a_big5_roster_whose_names_read_as_private_use_is_still_refused_whole(
    tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    # Read as GB18030, 王一 is U+E77B U+E5E6 and 林大 林 U+E610, no kana or Greek among them: the evidence of Big5 is
    # that name after name holds private-use characters. Nothing of the file is stored.
    names = ["王一", "林大", "陳一"]
    data = saved(tmp_path, names, "big5")
    assert all(any(0xE000 <= ord(c) <= 0xF8FF for c in n.encode("big5").decode("gb18030")) for n in names)
    exc = refusal(db, ctx, data)
    assert exc.code == "ROSTER_FORMAT" and "Big5" in exc.detail and exc.detail.endswith("line 2"), exc.detail


# GB18030-2005's private-use stand-ins for ideographs that GB18030-2022 maps to their standard code points: the
# bytes an older Windows tool writes (FE59 for 龴 U+9FB4), which Python's codec reads as U+E81E.
STAND_INS = {"FE59": "\u9fb4", "FE61": "\u9fb5", "FE66": "\u9fb6", "FE67": "\u9fb7"}
STAND_INS |= {"FE6D": "\u9fb8", "FE7E": "\u9fb9", "FE90": "\u9fba", "FEA0": "\u9fbb"}


@pytest.mark.parametrize("code", list(STAND_INS))
def test_a_gb18030_2005_stand_in_is_imported_as_its_gb18030_2022_character(
    code: str, tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    """Before: the name was refused as a 造字 (PRIVATE_USE); GB18030-2022 reads these bytes as the standard
    character, and so does the import now."""
    data = saved(tmp_path, ["张秀英", "王明"], "gb18030").replace("明".encode("gb18030"), bytes.fromhex(code))
    assert bytes.fromhex(code).decode("gb18030") != STAND_INS[code]  # the codec's own reading is the stand-in
    report = import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert not report.rejected and report.created == 2, report.to_dict()
    assert {b.name for b in db.scalars(select(Beneficiary))} == {"张秀英", "王" + STAND_INS[code]}


@pytest.mark.parametrize("code", ["FE51", "A6D9"])  # 𠂇's stand-in (U+E816); a vertical comma (U+E78D)
def test_a_stand_in_gb18030_2022_keeps_private_or_a_vertical_form_is_still_refused_as_a_row(
    code: str, tmp_path: Path, ctx: ServiceContext, db: Session
) -> None:
    """GB18030-2022 still maps FE51 to private use; A6D9 is U+FE10 there, which NFKC would store as a comma."""
    data = saved(tmp_path, ["张秀英", "王明"], "gb18030").replace("明".encode("gb18030"), bytes.fromhex(code))
    report = import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert [(r["line"], r["errors"]) for r in report.rejected] == [(3, [PRIVATE_USE])], report.to_dict()
