"""Resident ID numbers for the service: the pipelines' one validator, with the sentences roster rows show.

The rule itself (format, birth date, region policy with the residence permits and permanent residence cards,
check digit) lives in pipelines/idnumber.py, so the roster, proxy sign-up, console lookups and the card reader
judge a number the same way. Callers normalise typed input first (service.infra.security.normalise_id, which is
pipelines.idnumber.normalise: full-width characters, spaces, 15-digit numbers).
"""

from __future__ import annotations

import datetime as dt
import re

from pipelines.idnumber import birth_date, check_digit, check_number, residence_region

__all__ = [
    "age_on",
    "birth_date",
    "check_digit",
    "damaged_by_spreadsheet",
    "residence_region",
    "spreadsheet_float",
    "validate",
]

# The English problem sentences; the console maps them to Chinese by their fixed beginning
# (service/features/console/labels.py ROSTER_PROBLEM_ZH), so keep the beginnings stable.
FORMAT = "id_number must be 17 digits and a digit or X"
BIRTH_DATE = "id_number has an invalid birth date"
CHECKSUM = "id_number check digit does not match"
REGION = "id_number has an unknown region code"
# Excel keeps 15 significant digits of a number in a General or Number cell, and shows (and saves as CSV) an
# 18-digit one as 4.20106E+17: the digits are lost, the column must be text and the numbers typed again.
SPREADSHEET = (
    "id_number was changed by a spreadsheet (shown as 4.20106E+17 or its last digits turned to 000): "
    "format the column as text (文本格式) and enter the numbers again"
)
_FLOAT = re.compile(r"^[0-9]([.,][0-9]+)?E\+[0-9]{1,2}\Z")
_ZEROED = re.compile(r"^[0-9]{15}000\Z")


def age_on(birth: dt.date, today: dt.date) -> int:
    """Full years of age on ``today`` (周岁)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def validate(number: str, today: dt.date) -> str | None:
    """None when valid, else what is wrong (format first, then birth date, check digit and region). `today`: the
    bureau's date (service/infra/clock.local_today), required: a birth date up to it is valid, and the machine's (UTC)
    date is the day before Beijing's from 16:00 to 24:00 UTC, which refused a number born on the bureau's today."""
    check = check_number(number, today)
    if not check.format_ok:
        return FORMAT
    if not check.date_ok:
        return BIRTH_DATE
    if not check.checksum_ok:
        return CHECKSUM
    if not check.region_ok:
        return REGION
    return None


def spreadsheet_float(text: str) -> bool:
    """`text` is a number as a spreadsheet shows a long one: 4.20106E+17 (E upper-case, as Excel writes it)."""
    return _FLOAT.match(text) is not None


def damaged_by_spreadsheet(number: str) -> bool:
    """A normalised number that `validate` refuses is one Excel changed: written as 4.20106E+17, or 18 digits whose
    last three it turned to 000 (a valid number ending 000 is never asked about)."""
    return spreadsheet_float(number) or _ZEROED.match(number) is not None
