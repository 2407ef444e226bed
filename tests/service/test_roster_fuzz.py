"""Roster parsing under hostile input: every file gives per-row results or one coded refusal, never a crash.

Real rows come from the synthetic card labels in shared data; hypothesis mixes them with random cells, wrong
encodings, formula injection, damaged bytes and XLSX bombs. Parsing only (``read_table`` + ``validate_row``):
what reaches the database is covered by tests/service/test_roster.py and the API bomb tests.
"""

from __future__ import annotations

import csv
import io
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs (as in service/certification/roster.py)

from fuzz import bombs
from fuzz.common import fuzz_settings
from service.adapters.http.errors import http_status
from service.certification.errors import ServiceError
from service.certification.roster import FORMULA_START, MAX_COLUMNS, read_table, validate_row
from service.certification.roster_file import spreadsheet_text
from tests.service.test_roster import HEADER, TERMS, card_rows

CODES = {("ROSTER_FORMAT", 422), ("ROSTER_FORMAT", 415), ("ROSTER_TOO_LARGE", 413)}
CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x")', "", " ", "X"]),
    st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True),
)


@pytest.fixture(scope="module")
def real_rows(data_dir: Path) -> list[list[str]]:
    return card_rows(data_dir, 6)


@pytest.fixture(scope="module")
def real_files(real_rows: list[list[str]]) -> dict[bool, bytes]:
    """Built once: workbooks carry their creation time, and hypothesis needs the same bytes every run."""
    return {True: to_xlsx(list(real_rows)), False: to_csv(real_rows)}


def parse(name: str, data: bytes) -> list[tuple[int, list[str]]] | ServiceError:
    """(line, errors) of every row, or the coded refusal of the whole file."""
    try:
        return [(line, validate_row(line, raw, TERMS.today)[1]) for line, raw in read_table(name, data)]
    except ServiceError as exc:
        assert (exc.code, http_status(exc)) in CODES, exc
        return exc


def to_csv(rows: list[list[str]], encoding: str = "utf-8", bom: bool = False) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER, *rows])
    return ("\ufeff" * bom + buf.getvalue()).encode(encoding)


def to_xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in [HEADER, *rows]:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _sheet_safe(cell: str) -> str:
    # openpyxl refuses control characters in cells (a writer-side error, not the reader under test)
    return "".join(c for c in cell if c >= " " or c in "\t\n\r")


@fuzz_settings(short=60, long=5000)
@given(st.lists(st.lists(CELL, min_size=0, max_size=9), max_size=8), st.booleans(), st.booleans())
def test_random_cells_give_row_errors_never_a_crash(
    real_rows: list[list[str]], cells: list[list[str]], bom: bool, xlsx: bool
) -> None:
    if xlsx:  # openpyxl stores "=..." as a formula, read back empty: checked in the formula test
        cells = [[_sheet_safe(c) for c in row] for row in cells]
    rows = [*real_rows[:2], *cells]
    data = to_xlsx(list(rows)) if xlsx else to_csv(rows, bom=bom)
    result = parse("roster.xlsx" if xlsx else "roster.csv", data)
    assert not isinstance(result, ServiceError), result
    by_line = dict(result)
    assert by_line[2] == [] and by_line[3] == []  # the real rows stay valid whatever follows
    for (line, errors), row in zip(result[2:], [r for r in cells if any(c.strip() for c in r)], strict=False):
        assert line >= 4
        if not xlsx and row and spreadsheet_text(row[0]).startswith(FORMULA_START):  # ="…" is text, unwrapped
            assert any("formula" in e for e in errors)


def test_encodings_bom_and_gbk(real_rows: list[list[str]]) -> None:
    plain = parse("r.csv", to_csv(real_rows))
    assert not isinstance(plain, ServiceError) and all(not errors for _line, errors in plain)
    assert parse("r.csv", to_csv(real_rows, bom=True)) == plain  # Excel's UTF-8 with BOM reads the same
    # Chinese Excel's CSV: GBK / GB18030, read the same (tests/service/test_roster_encodings.py for the rest).
    assert parse("r.csv", to_csv(real_rows, encoding="gbk")) == plain
    assert parse("r.csv", to_csv(real_rows, encoding="gb18030")) == plain
    neither = parse("r.csv", to_csv(real_rows, encoding="gbk").replace(b",", b"\xff", 1))
    assert isinstance(neither, ServiceError) and neither.code == "ROSTER_FORMAT" and "GB18030" in neither.detail
    # The same byte in a UTF-8 file: damaged UTF-8, never read as GB18030 (test_roster_file_damage.py).
    damaged = parse("r.csv", to_csv(real_rows).replace(b",", b"\xff", 1))
    assert isinstance(damaged, ServiceError) and "UTF-8 text with a damaged character" in damaged.detail


def test_formula_injection_is_rejected_per_row(real_rows: list[list[str]]) -> None:
    rows = [list(r) for r in real_rows[:4]]
    rows[1][2] = "=cmd|' /C calc'!A0"
    rows[2][0] = "@SUM(1+1)*cmd|' /C calc'!A0"
    for data, name in ((to_csv(rows), "r.csv"), (to_xlsx(list(rows)), "r.xlsx")):
        result = parse(name, data)
        assert not isinstance(result, ServiceError)
        assert [bool(errors) for _line, errors in result] == [False, True, True, False]


@fuzz_settings(short=40, long=3000)
@given(st.binary(max_size=2048), st.sampled_from(["r.csv", "r.xlsx", "r.txt", "r.pdf"]))
def test_random_bytes_are_refused_with_a_code(data: bytes, name: str) -> None:
    result = parse(name, data)
    if name == "r.pdf" and data[:2] != b"PK":  # a zip is read as XLSX whatever its name
        assert isinstance(result, ServiceError) and http_status(result) == 415
    elif isinstance(result, ServiceError):
        assert http_status(result) in (413, 422)


@fuzz_settings(short=40, long=3000)
@given(st.data())
def test_damaged_workbooks_and_csvs_never_crash(real_files: dict[bool, bytes], data: st.DataObject) -> None:
    xlsx = data.draw(st.booleans())
    base = bytearray(real_files[xlsx])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(base) // 2, len(base)))
    parse("r.xlsx" if xlsx else "r.csv", bytes(base[:cut]))


def test_csv_field_over_the_csv_module_limit_is_a_format_error(real_rows: list[list[str]]) -> None:
    rows = [*real_rows[:1], ["P9", "1", "x" * 200_000, "enterprise_pension"]]
    result = parse("r.csv", to_csv(rows))
    assert isinstance(result, ServiceError) and result.code == "ROSTER_FORMAT"


def test_wide_sheets_read_only_the_header_columns(real_rows: list[list[str]]) -> None:
    wide = [[*r, *([""] * 3), "stray"] for r in real_rows]
    result = parse("r.xlsx", to_xlsx(wide))
    assert not isinstance(result, ServiceError) and all(not errors for _line, errors in result)
    beyond = [[*r, *(["extra"] * MAX_COLUMNS)] for r in real_rows[:2]]
    assert not isinstance(parse("r.xlsx", to_xlsx(beyond)), ServiceError)


@pytest.mark.parametrize(
    ("make", "code"),
    [(lambda: bombs.xlsx_zip_bomb(600 << 20), "ROSTER_TOO_LARGE"), (bombs.xlsx_dimension_bomb, "ROSTER_TOO_LARGE")],
    ids=["zip_bomb_600MiB", "dimension_A1_XFD1048576"],
)
def test_xlsx_bombs_are_refused_cheaply(make: object, code: str) -> None:
    assert callable(make)
    data: bytes = make()
    assert len(data) < 4 << 20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    result = parse("r.xlsx", data)
    assert isinstance(result, ServiceError) and result.code == code
    # Refused from the zip directory or after a bounded walk over blank rows: no inflating, no cell grid.
    assert time.process_time() - start < 10  # a hang guard, not a speed target: it ran for minutes
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 50 * 1024  # KiB


REGRESSIONS = sorted((Path(__file__).parents[2] / "fuzz/regressions/roster_import").glob("*"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_inputs_the_fuzzers_found(path: Path) -> None:
    """Every input atheris once crashed the parser with (fuzz/regressions/; first byte "x" = read as XLSX)."""
    data = path.read_bytes()
    parse("r.xlsx" if data[:1] == b"x" else "r.csv", data[1:])
