"""Citizen ID number checks (python-stdnum ``cn.ric``) and the cross-checks against the printed fields."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from stdnum import numdb
from stdnum.cn import ric

# ASCII digits only (\d also matches other scripts' digits) and no trailing newline ($ would allow one).
NUMBER_RE = re.compile(r"^[0-9]{17}[0-9X]\Z")


@dataclass(frozen=True)
class NumberCheck:
    """What is right and wrong with one 18-character citizen ID number."""

    format_ok: bool
    checksum_ok: bool = False
    region_ok: bool = False
    date_ok: bool = False
    birth_date: dt.date | None = None
    sex: str | None = None  # from the parity of the 17th digit: odd = 男
    region: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.format_ok and self.checksum_ok and self.region_ok and self.date_ok


def check_number(number: str | None, today: dt.date | None = None) -> NumberCheck:
    """Format, ISO 7064 MOD 11-2 check digit, region code and birth date of an ID number.

    stdnum's ``ric.validate`` also requires the county to have existed in the birth year; numbers of people
    born before their county was created (most pensioners: numbers were assigned from 1984 on) are real,
    so the region is only required to be a known code of any era.
    """
    if number is None or not NUMBER_RE.match(number):
        return NumberCheck(False, problems=["format"])
    problems: list[str] = []
    checksum_ok = number[-1] == ric.calc_check_digit(number)
    if not checksum_ok:
        problems.append("checksum")
    birth: dt.date | None = None
    try:
        birth = ric.get_birth_date(number)
    except Exception:  # stdnum raises its own ValidationError subclasses
        birth = None
    today = today or dt.date.today()
    date_ok = birth is not None and dt.date(1880, 1, 1) <= birth <= today
    if not date_ok:
        problems.append("birth_date")
    info = {k: v for _part, props in numdb.get("cn/loc").info(number[:6]) for k, v in props.items()}
    region_ok = "province" in info and "county" in info
    if not region_ok:
        problems.append("region")
    region = None
    if region_ok:
        county = info["county"].split(",")[-1].split("]")[-1]
        region = info["province"] + ("" if county == info["province"] else county)
    sex = "男" if int(number[16]) % 2 == 1 else "女"
    return NumberCheck(True, checksum_ok, region_ok, date_ok, birth if date_ok else None, sex, region, problems)


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
