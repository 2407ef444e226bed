"""atheris: both ID-number checkers judge any string without crashing, and agree on what they accept."""

from __future__ import annotations

import datetime as dt

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["service.certification.idnumber", "pipelines.idnumber"]):
    from pipelines.idnumber import check_number
    from service.certification import idnumber

from fuzz.harness import main

DAY = dt.date(2026, 5, 1)  # both checkers judge on one day, fixed so that a finding replays alike on any day


def test_one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(40)
    problem = idnumber.validate(text, DAY)
    check = check_number(text, DAY)
    if problem is None and not (check.format_ok and check.checksum_ok):
        raise RuntimeError(f"service accepts {text!r}, the card checker does not: {check}")
    if check.format_ok and check.checksum_ok and check.date_ok and problem is not None and "check digit" in problem:
        raise RuntimeError(f"checkers disagree on the check digit of {text!r}")


if __name__ == "__main__":
    main(test_one_input)
