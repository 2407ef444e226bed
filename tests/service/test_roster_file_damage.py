"""A review of the roster file as Chinese staff produce it (docs/security.md Part AK): an ID-number column Excel
damaged, a UTF-8 file with one bad byte, a Big5 file, a semicolon file whose benefit types spill into another
column, a truncated UTF-16 file, Excel's ' text marker on an external id. Each test failed on the code before its
fix."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification import idnumber
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary
from service.certification.roster import import_roster, validate_row
from service.certification.roster_file import decode_csv
from service.features.console.labels import roster_file_error_zh, roster_problem_zh
from tests.service import factories
from tests.service.test_roster import HEADER, TERMS, to_csv

NAMES = ["张三", "李四", "王芳", "刘洋", "陈静", "杨勇", "赵磊", "黄敏", "周杰", "吴刚"]


def damage_passing_check() -> tuple[str, str]:
    """A number, and what Excel makes of it (15 significant digits, then 000), the latter passing the check digit
    (about one number in eleven)."""
    for seq in range(1, 999):
        number = factories.id_number(region="420106", birth=dt.date(1950, 3, 14), seq=seq)
        damaged = number[:15] + "000"
        if damaged != number and idnumber.validate(damaged, TERMS.today) is None:
            return number, damaged
    raise LookupError("no such number")


def damage_failing_check() -> tuple[str, str]:
    for seq in range(1, 999):
        number = factories.id_number(region="420106", birth=dt.date(1948, 8, 2), seq=seq)
        damaged = number[:15] + "000"
        if damaged != number and idnumber.validate(damaged, TERMS.today) is not None:
            return number, damaged
    raise LookupError("no such number")


def row(ext: str, number: str, name: str = "张秀英", types: str = "enterprise_pension") -> list[str]:
    return [ext, number, name, "420106", types, "active", "2026-06-30"]


def people(db: Session) -> dict[str, Beneficiary]:
    return {b.external_id: b for b in db.scalars(select(Beneficiary))}


def test_a_damaged_number_that_passes_the_check_digit_is_refused_with_its_damaged_column(
    ctx: ServiceContext, db: Session
) -> None:
    """Excel damaged the whole column: one number fails its check digit (flagged), another happens to pass it and
    was imported as a valid number, a person who does not exist."""
    _, passing = damage_passing_check()
    _, failing = damage_failing_check()
    report = import_roster(db, ctx.keyring, "r.csv", to_csv([row("P1", failing), row("P2", passing)]), "t", TERMS)
    assert report.created == 0, report.to_dict()
    assert [r["errors"] for r in report.rejected] == [[idnumber.SPREADSHEET], [idnumber.SPREADSHEET]]
    assert people(db) == {}


def test_a_damaged_number_for_a_stored_person_is_not_an_identity_change(ctx: ServiceContext, db: Session) -> None:
    """The same file re-saved by Excel from a General-format column: the one number it holds lost its last digits
    but passes the check digit. Read as another person, the face enrolled went and the certification no longer
    counted; it is refused as the spreadsheet's damage, the record untouched."""
    real, damaged = damage_passing_check()
    import_roster(db, ctx.keyring, "r.csv", to_csv([row("P1", real)]), "t", TERMS)
    b = people(db)["P1"]
    b.template, b.template_model, b.template_consent = b"sealed", "m@1", True
    db.flush()
    report = import_roster(db, ctx.keyring, "r.csv", to_csv([row("P1", damaged)]), "t", TERMS)
    assert report.identity_changed == [] and report.updated == 0
    assert [r["errors"] for r in report.rejected] == [[idnumber.SPREADSHEET]]
    db.refresh(b)
    assert b.template == b"sealed" and b.id_hash in ctx.keyring.id_hashes(real)


def utf8_file(n: int = 20) -> bytes:
    rows = [row(f"P{i}", factories.id_number(region="420106", seq=100 + i), NAMES[i % 10]) for i in range(n)]
    return to_csv(rows).removeprefix("\ufeff".encode())


def test_a_utf8_file_with_one_bad_byte_is_refused_naming_it_not_read_as_gb18030(
    ctx: ServiceContext, db: Session
) -> None:
    good = utf8_file(3)
    at = good.index("王芳".encode()) + 4  # the second byte of 芳
    bad = good[:at] + b"\xfe" + good[at + 1 :]
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", bad, "t", TERMS)
    exc = info.value
    assert exc.code == "ROSTER_FORMAT" and f"line 4, byte {at}" in exc.detail and "UTF-8" in exc.detail, exc.detail
    zh = roster_file_error_zh(exc)
    assert "第 4 行" in zh and "UTF-8" in zh and "损坏" in zh, zh
    assert people(db) == {}


def test_no_single_damaged_byte_of_a_utf8_file_is_read_as_gb18030() -> None:
    """The reviewer's experiment: one byte of a UTF-8 roster of two-character names changed at random; about half
    such files were read as GB18030 and every name stored garbled."""
    good, rng, tried = utf8_file(), random.Random(2), 0
    wide = [at for at, byte in enumerate(good) if byte >= 0x80]
    for _ in range(300):
        bad = bytearray(good)
        at = rng.choice(wide)
        bad[at] = rng.randrange(0x80, 0x100)
        try:
            bytes(bad).decode("utf-8")
            continue
        except UnicodeDecodeError:
            pass
        tried += 1
        with pytest.raises(ServiceError):
            decode_csv(bytes(bad))
    assert tried > 50


def test_a_big5_file_is_refused_not_stored_as_nonsense(ctx: ServiceContext, db: Session) -> None:
    rows = [row("P1", factories.id_number(region="420106", seq=7), "陳大文")]
    rows.append(row("P2", factories.id_number(region="420106", seq=8), "黃美玲"))
    data = to_csv(rows).decode().lstrip("\ufeff").encode("big5")
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", data, "t", TERMS)
    assert info.value.code == "ROSTER_FORMAT" and "GB18030" in info.value.detail
    zh = roster_file_error_zh(info.value)
    assert "编码可能不是 GBK/GB18030" in zh and "第 2 行" in zh, zh
    assert people(db) == {}


def test_rare_names_in_gb18030_and_any_name_in_utf8_still_pass(ctx: ServiceContext, db: Session) -> None:
    """Extension A and B characters (䶮, 𠈌) are GB18030's own; a UTF-8 file is not judged by the Big5 check."""
    rows = [row("P1", factories.id_number(region="420106", seq=9), "王䶮")]
    rows.append(row("P2", factories.id_number(region="420106", seq=10), "李𠈌"))
    report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows).decode().encode("gb18030"), "t", TERMS)
    assert (report.created, report.encoding) == (2, "GB18030"), report.to_dict()
    rows.append(row("P3", factories.id_number(region="420106", seq=11), "Ольга"))
    report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows), "t", TERMS)
    assert (report.created, report.unchanged, report.encoding) == (1, 2, "UTF-8 (BOM)"), report.to_dict()


def test_a_second_benefit_type_spilling_into_a_cell_beyond_the_header_is_refused(
    ctx: ServiceContext, db: Session
) -> None:
    """Unquoted, `enterprise_pension;work_injury` in a semicolon file is two cells: the second one lay beyond the
    header and was dropped, the person imported without their work-injury benefit. Excel's empty trailing cells
    are still ignored."""
    header = ["external_id", "id_number", "name", "benefit_types"]
    one, two = factories.id_number(region="420106", seq=12), factories.id_number(region="420106", seq=13)
    text = ";".join(header) + f"\r\nP1;{one};张三;enterprise_pension;work_injury\r\nP2;{two};李四;work_injury;;\r\n"
    report = import_roster(db, ctx.keyring, "r.csv", text.encode("gbk"), "t", TERMS)
    assert report.created == 1 and "P2" in people(db), report.to_dict()
    [refused] = report.rejected
    assert refused["line"] == 2 and refused["errors"][0].startswith("row has more cells than the header")
    assert "该行列数多于表头" in roster_problem_zh(refused["errors"][0])


def test_a_truncated_utf16_file_gets_its_own_reason() -> None:
    data = b"\xff\xfe" + "\t".join(HEADER).encode("utf-16-le") + b"\r"  # cut in the middle of a character
    with pytest.raises(ServiceError) as info:
        decode_csv(data)
    assert "UTF-16" in info.value.detail and "neither" not in info.value.detail, info.value.detail
    zh = roster_file_error_zh(info.value)
    assert "UTF-16" in zh and "不完整" in zh and "CSV UTF-8" not in zh, zh


def test_excels_text_marker_is_dropped_from_the_external_id_too() -> None:
    number = factories.id_number(region="420106", seq=14)
    parsed, errors = validate_row(
        2,
        {"external_id": "'00012345", "id_number": "'" + number, "name": "张三"}
        | {"benefit_types": "enterprise_pension"},
        TERMS.today,
    )
    assert errors == [] and parsed is not None
    assert (parsed.external_id, parsed.id_number) == ("00012345", number)
