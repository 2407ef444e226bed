"""Cross-checks of a card's printed fields against its ID number, and place-name fixes from the number's region.

The number itself is judged by the one validator, pipelines/idnumber.py.
"""

from __future__ import annotations

import datetime as dt

from stdnum import numdb

from pipelines.idnumber import NumberCheck

__all__ = [
    "correct_address",
    "cross_check",
    "region_names",
]


def cross_check(number: NumberCheck, birth_field: dt.date | None, sex_field: str | None) -> list[str]:
    """Disagreements between the printed birth date / sex and what the (well-formed) number encodes."""
    issues: list[str] = []
    if not number.format_ok:
        return issues
    if birth_field is not None and number.birth_date is not None and birth_field != number.birth_date:
        issues.append("birth_date")
    if sex_field in ("男", "女") and number.sex is not None and sex_field != number.sex:
        issues.append("sex")
    return issues


def region_names(number: str) -> list[str]:
    """Province, prefecture and county names (every era) for the number's region code."""
    db = numdb.get("cn/loc")
    names: list[str] = []
    for code in (number[:6], number[:4] + "00"):
        for _part, props in db.info(code):
            for key in ("province", "county"):
                for name in props.get(key, "").split(","):
                    name = name.split("]")[-1]
                    if len(name) >= 2 and name not in names and name not in ("市辖区", "县"):
                        names.append(name)
    return names


def correct_address(address: str, number: str) -> tuple[str, list[str]]:
    """Fix one dropped or misread character in the place names at the start of the address, using the names
    of the region the (checksum-valid) number encodes.

    The recogniser drops or confuses rare characters of place names (猇亭区 → 亭区, 溧水区 → 漂水区). A name
    is only corrected when the address holds it at distance one within its first 20 characters and the last
    character (区/县/市/旗…) agrees; a holder who moved away from the birth region has no such near match.
    """
    fixes: list[str] = []
    head = 20
    names = region_names(number)
    for name in names:
        if name in address[: head + 2]:
            continue
        # Spans of the names already read correctly: a fix must not overwrite them (宜昌市亭区 is 猇 dropped,
        # not 市 misread).
        taken: set[int] = set()
        for other in names:
            k = address.find(other, 0, head + len(other))
            if k >= 0:
                taken.update(range(k, k + len(other)))
        n = len(name)
        best: tuple[int, int] | None = None  # (start, length of the misread span)
        for start in range(0, min(head, len(address))):
            short = address[start : start + n - 1]
            sub = address[start : start + n]
            if (
                n >= 3
                and len(short) == n - 1
                and short[-1] == name[-1]
                and any(name[:k] + name[k + 1 :] == short for k in range(n - 1))
                and not taken & set(range(start, start + n - 1))
            ):
                best = (start, n - 1)  # one character dropped
            elif (
                len(sub) == n
                and sub[-1] == name[-1]
                and sum(a != b for a, b in zip(sub, name, strict=True)) == 1
                and not taken & set(range(start, start + n))
            ):
                best = (start, n)  # one character misread
            if best is not None:
                break
        if best is not None:
            start, length = best
            fixes.append(f"{address[start : start + length]}→{name}")
            address = address[:start] + name + address[start + length :]
    return address, fixes
