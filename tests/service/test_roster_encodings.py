"""The roster file as bureau staff make it with Excel or WPS on a Chinese Windows: saved as "CSV (逗号分隔)" it is
GBK/GB18030, as "Unicode 文本" UTF-16 with tabs; headers typed in Chinese; semicolons in some locales; ID numbers
that Excel turned into 1.10105E+17 or whose last digits it turned to 000. Files are built here, none committed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs (as in service/certification/roster.py)
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification import registry
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary
from service.certification.roster import EXTERNAL_ID_SPREADSHEET, import_roster, validate_row
from service.features.console.labels import roster_file_error_zh, roster_problem_zh
from tests.service import factories
from tests.service.test_roster import HEADER, TERMS, card_rows

RARE = ["王䶮", "李𠈌", "张秀英"]  # 䶮 (CJK Ext A, not in GBK), 𠈌 (Ext B: a GB18030 four-byte form)


def text_of(rows: list[list[str]], header: list[str] = HEADER, delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows([header, *rows])  # CRLF line ends, as Excel writes
    return buf.getvalue()


def stored(db: Session) -> dict[str, Beneficiary]:
    return {b.external_id: b for b in db.scalars(select(Beneficiary))}


def test_a_gb18030_file_with_rare_names_is_read_and_the_report_names_its_encoding(
    ctx: ServiceContext, db: Session, data_dir: Path
) -> None:
    rows = card_rows(data_dir, 3)
    for row, name in zip(rows, RARE, strict=True):
        row[2] = name
    # Excel's trailing empty columns and rows come along.
    text = text_of([[*r, "", ""] for r in rows] + [[""] * 9, [""] * 9], [*HEADER, "", ""])
    report = import_roster(db, ctx.keyring, "名册.csv", text.encode("gb18030"), "test", TERMS)
    assert (report.created, report.rejected) == (3, [])
    assert report.encoding == "GB18030" and report.to_dict()["encoding"] == "GB18030"
    assert [stored(db)[r[0]].name for r in rows] == RARE


def test_a_gbk_file_and_a_utf8_file_read_the_same(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    rows = card_rows(data_dir, 3)
    gbk = import_roster(db, ctx.keyring, "r.csv", text_of(rows).encode("gbk"), "test", TERMS)
    assert (gbk.created, gbk.encoding) == (3, "GB18030")
    utf8 = import_roster(db, ctx.keyring, "r.csv", text_of(rows).encode(), "test", TERMS)
    assert (utf8.unchanged, utf8.encoding) == (3, "UTF-8")
    bom = import_roster(db, ctx.keyring, "r.csv", ("\ufeff" + text_of(rows)).encode(), "test", TERMS)
    assert (bom.unchanged, bom.encoding) == (3, "UTF-8 (BOM)")


def test_a_file_neither_utf8_nor_gb18030_is_refused_naming_its_line_and_byte(
    ctx: ServiceContext, db: Session, data_dir: Path
) -> None:
    rows = card_rows(data_dir, 2)
    good = text_of(rows).encode("gbk")  # a UTF-8 file with a bad byte: test_roster_file_damage.py
    bad = good + b"P9,\x80\x80,x,,enterprise_pension,,\r\n"
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", bad, "test", TERMS)
    exc = info.value
    assert exc.code == "ROSTER_FORMAT"
    assert f"line 4, byte {len(good) + 4}" in exc.detail and "UTF-8" in exc.detail and "GB18030" in exc.detail
    zh = roster_file_error_zh(exc)
    assert "第 4 行" in zh and "UTF-8" in zh and "另存为" in zh, zh
    assert db.scalar(select(Beneficiary)) is None


def test_excel_unicode_text_utf16_with_tabs_is_read(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    rows = card_rows(data_dir, 3)
    rows[0][2] = RARE[1]
    data = b"\xff\xfe" + text_of(rows, delimiter="\t").encode("utf-16-le")
    report = import_roster(db, ctx.keyring, "roster.txt", data, "test", TERMS)
    assert (report.created, report.rejected, report.encoding) == (3, [], "UTF-16")
    assert stored(db)[rows[0][0]].name == RARE[1]


def test_a_semicolon_separated_file_with_several_benefit_types(
    ctx: ServiceContext, db: Session, data_dir: Path
) -> None:
    rows = card_rows(data_dir, 2)
    rows[0][4] = "enterprise_pension;work_injury"  # quoted by the writer: the cell holds the delimiter
    report = import_roster(db, ctx.keyring, "r.csv", text_of(rows, delimiter=";").encode(), "test", TERMS)
    assert (report.created, report.rejected) == (2, [])
    assert stored(db)[rows[0][0]].benefit_types == ["enterprise_pension", "work_injury"]


CHINESE_HEADER = ["人员编号", "身份证号", "姓名", "地区", "待遇类型", "状态", "认证有效期"]


def test_a_chinese_header_is_read_as_the_documented_columns(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    rows = card_rows(data_dir, 3)
    report = import_roster(db, ctx.keyring, "r.csv", text_of(rows, CHINESE_HEADER).encode("gbk"), "test", TERMS)
    assert (report.created, report.rejected) == (3, [])
    assert stored(db)[rows[0][0]].valid_until == dt.date(2026, 6, 30)
    wb = Workbook()
    for row in [["身份证号码", "姓名", "人员编号", "待遇类型"], [rows[1][1], "改名", rows[1][0], "enterprise_pension"]]:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    sheet = import_roster(db, ctx.keyring, "r.xlsx", buf.getvalue(), "test", TERMS)
    assert (sheet.updated, sheet.rejected, sheet.encoding) == (1, [], None)
    assert stored(db)[rows[1][0]].name == "改名"


def test_a_header_missing_a_column_still_names_it(ctx: ServiceContext, db: Session) -> None:
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", "人员编号;姓名\r\nP1;张三\r\n".encode("gbk"), "test", TERMS)
    assert info.value.detail.startswith("missing columns: id_number")
    both = "人员编号,身份证号,姓名,name,待遇类型\r\n".encode("gbk")
    with pytest.raises(ServiceError) as info:
        import_roster(db, ctx.keyring, "r.csv", both, "test", TERMS)
    assert info.value.detail == "columns given twice: name"
    assert "同一列出现两次" in roster_file_error_zh(info.value)


NUMBER = factories.id_number(region="420106", birth=dt.date(1941, 7, 21), seq=469)
ROW = {"external_id": "P1", "name": "张秀英", "benefit_types": "enterprise_pension"}
DAY = dt.date(2026, 5, 1)  # the import's (the bureau's) date: every birth date here is long before it


def _damaged() -> str:
    """NUMBER as Excel keeps it in a General-format cell: 15 significant digits, the rest 000."""
    return str(round(int(NUMBER), -3))


@pytest.mark.parametrize("cell", ["4.20106E+17", "4.20106194107215E+17", "4.20106e+17", "_damaged"])
def test_an_id_number_damaged_by_excel_is_refused_asking_for_a_text_column(cell: str) -> None:
    cell = _damaged() if cell == "_damaged" else cell
    row, errors = validate_row(2, ROW | {"id_number": cell}, DAY)
    assert row is None and len(errors) == 1, errors
    assert errors[0].startswith("id_number was changed by a spreadsheet"), errors
    assert "文本" in roster_problem_zh(errors[0]) and "校验位" not in roster_problem_zh(errors[0])


def _with_x() -> str:
    return next(n for s in range(1, 999) if (n := factories.id_number(region="420106", seq=s)).endswith("X"))


@pytest.mark.parametrize(
    "cell",
    [
        f"'{NUMBER}",  # Excel's text marker, written by systems that export for Excel
        f'="{NUMBER}"',  # the other one: a formula giving the number as text
        f"  '{NUMBER[:6]} {NUMBER[6:14]} {NUMBER[14:]}",
    ],
)
def test_spreadsheet_text_markers_around_an_id_number_are_dropped(cell: str) -> None:
    row, errors = validate_row(2, ROW | {"id_number": cell}, DAY)
    assert errors == [] and row is not None and row.id_number == NUMBER


def test_a_lower_case_x_and_a_quoted_external_id_are_read() -> None:
    number = _with_x()
    row, errors = validate_row(
        2, ROW | {"id_number": "'" + number.lower(), "external_id": '="00012345678901234567"'}, DAY
    )
    assert errors == [] and row is not None
    assert (row.id_number, row.external_id) == (number, "00012345678901234567")
    _, errors = validate_row(2, ROW | {"id_number": NUMBER, "external_id": "1.23457E+19"}, DAY)
    assert errors == [EXTERNAL_ID_SPREADSHEET] and "文本" in roster_problem_zh(errors[0])
    _, errors = validate_row(2, ROW | {"id_number": NUMBER, "external_id": '=HYPERLINK("http://x")'}, DAY)
    assert any("formula" in e for e in errors)  # only the plain ="…" text form is unwrapped


def test_exports_neutralise_cells_that_start_like_a_formula(ctx: ServiceContext, db: Session) -> None:
    """A name stored before the roster refused such names (or by any other way in) must not run in Excel."""
    rows = [{"external_id": "P1", "name": '=HYPERLINK("http://x","点此")', "region": "420106", "status": "-1"}]
    out = registry.to_csv(rows, ("external_id", "name", "region", "status"))
    cells = next(csv.reader(io.StringIO(out.splitlines()[1])))
    assert cells == ["P1", '\'=HYPERLINK("http://x","点此")', "420106", "'-1"]


@pytest.mark.parametrize("cell", ["2026/6/30", "2026/06/30", "2026-6-30", " 2026/6/30 ", "2026年6月30日"])
def test_a_date_as_chinese_excel_saves_it_is_read(cell: str) -> None:
    """Excel re-saves a date cell as it shows it: 2026/6/30 (a Chinese Windows' short format) or 2026年6月30日."""
    row, errors = validate_row(2, ROW | {"id_number": NUMBER, "valid_until": cell, "cycle_start": cell}, DAY)
    assert errors == [] and row is not None
    assert row.valid_until == row.cycle_start == dt.date(2026, 6, 30)


@pytest.mark.parametrize("cell", ["6/30/2026", "30/6/2026", "2026/6-30", "2026/2/30", "2026年6月30", "26/6/30"])
def test_a_date_in_an_ambiguous_or_impossible_form_is_still_refused(cell: str) -> None:
    _, errors = validate_row(2, ROW | {"id_number": NUMBER, "valid_until": cell}, DAY)
    assert errors == ["valid_until must be YYYY-MM-DD"]
