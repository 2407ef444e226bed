"""Resident ID numbers (GB 11643): format, birth date and ISO 7064 MOD 11-2 check digit.

The region prefix is not checked against a table: division codes change, and the roster is authoritative.
"""

from __future__ import annotations

import datetime as dt

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_digit(first17: str) -> str:
    r = (12 - sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11) % 11
    return "X" if r == 10 else str(r)


def birth_date(number: str) -> dt.date | None:
    try:
        return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def validate(number: str) -> str | None:
    """None when valid, else what is wrong."""
    # isascii(): str.isdigit() also accepts '²' (int() then fails) and other scripts' digits ('١').
    if len(number) != 18 or not number.isascii() or not number[:17].isdigit() or number[17] not in "0123456789X":
        return "id_number must be 17 digits and a digit or X"
    born = birth_date(number)
    if born is None or not dt.date(1900, 1, 1) <= born <= dt.date.today():
        return "id_number has an invalid birth date"
    if check_digit(number[:17]) != number[17]:
        return "id_number check digit does not match"
    return None
