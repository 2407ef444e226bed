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
