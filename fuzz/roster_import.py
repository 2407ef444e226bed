"""atheris: roster parsing (CSV or XLSX, then row validation) gives row errors or a coded refusal only."""

from __future__ import annotations

import datetime as dt

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["service.certification.roster", "service.certification.idnumber"]):
    from service.certification.errors import ServiceError
    from service.certification.roster import read_table, validate_row

from fuzz.harness import expect_roster_error, main

DAY = dt.date(2026, 5, 1)  # the import's date: a fixed day, so that a finding replays alike on any day


def test_one_input(data: bytes) -> None:
    # The first byte picks the file name: the same bytes are read as CSV or as XLSX.
    name = "roster.xlsx" if data[:1] == b"x" else "roster.csv"
    try:
        for line, raw in read_table(name, data[1:]):
            validate_row(line, raw, DAY)
    except ServiceError as exc:
        expect_roster_error(exc)


if __name__ == "__main__":
    main(test_one_input)
