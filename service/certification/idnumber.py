"""Resident ID numbers for the service: the pipelines' one validator, with the sentences roster rows show.

The rule itself (format, birth date, region policy with the residence permits and permanent residence cards,
check digit) lives in pipelines/idnumber.py, so the roster, proxy sign-up, console lookups and the card reader
judge a number the same way. Callers normalise typed input first (service.infra.security.normalise_id, which is
pipelines.idnumber.normalise: full-width characters, spaces, 15-digit numbers).
"""

from __future__ import annotations

import datetime as dt

from pipelines.idnumber import birth_date, check_digit, check_number, residence_region

__all__ = ["age_on", "birth_date", "check_digit", "residence_region", "validate"]

# The English problem sentences; the console maps them to Chinese by their fixed beginning
# (service/features/console/labels.py ROSTER_PROBLEM_ZH), so keep the beginnings stable.
FORMAT = "id_number must be 17 digits and a digit or X"
BIRTH_DATE = "id_number has an invalid birth date"
CHECKSUM = "id_number check digit does not match"
REGION = "id_number has an unknown region code"


def age_on(birth: dt.date, today: dt.date) -> int:
    """Full years of age on ``today`` (周岁)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def validate(number: str, today: dt.date | None = None) -> str | None:
    """None when valid, else what is wrong (format first, then birth date, check digit and region)."""
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
