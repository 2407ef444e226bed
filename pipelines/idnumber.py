"""The one resident ID number validator (GB 11643).

Used by the card reader (pipelines/id_card) and, through service/certification/idnumber.py, by the roster,
proxy sign-up and lookups, so that a number is judged the same everywhere: 17 ASCII digits and a digit or X,
a birth date from 1900-01-01 to today, a region code known to the one region policy
(pipelines.divisions.known_region) or the prefix of a residence permit or permanent residence card (below), and
the ISO 7064 MOD 11-2 check digit. ``normalise`` is the one form typed input is brought to (full-width
characters, spaces, hyphens, zero-width characters, X look-alikes, 15-digit numbers). A module of its own,
outside pipelines/id_card, so that the service loads it without the card reader and its models.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

from pipelines.divisions import historic_info, known_region, table

# ASCII digits only (\d also matches other scripts' digits) and no trailing newline ($ would allow one).
NUMBER_RE = re.compile(r"^[0-9]{17}[0-9X]\Z")
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Nobody born earlier is alive to be certified; an earlier date is a misread or mistyped number.
EARLIEST_BIRTH = dt.date(1900, 1, 1)
# 港澳台居民居住证 (2018): the same 18-character number, its first six digits one of these instead of a county.
PERMIT_PREFIXES = {"810000": "香港居民居住证", "820000": "澳门居民居住证", "830000": "台湾居民居住证"}
# 外国人永久居留身份证 (2023 format): 9, the issuing province's two digits, a three-digit nationality code
# (GB/T 2659), then the birth date, a sequence and the same check digit.
FOREIGNER_FIRST = "9"
# Full-width digits and X/x (a Chinese input method) → ASCII; whitespace (U+3000 included) is dropped.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")
# Hyphens and dashes people type between the groups (110101-19490101-002X), dropped like spaces.
_SEPARATORS = str.maketrans(dict.fromkeys("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"))
# What a phone offers for X when its digit pad has none (the H5 fields are inputmode="numeric"): the Chinese IME's
# Roman numeral Ⅹ/ⅹ, the multiplication sign ×, ✕/✖, Greek Χ/χ. Read as X only as the check digit: anywhere else
# the number stays malformed and the validator refuses it.
_X_LOOKALIKES = frozenset("\u2169\u2179\u00d7\u2715\u2716\u03a7\u03c7")
_LEGACY_RE = re.compile(r"^[0-9]{15}\Z")


def _visible(text: str) -> str:
    """`text` without format characters (Unicode Cf: zero-width space and joiners, BOM, word joiner, direction
    marks), which a number pasted from a chat carries invisibly."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def normalise(text: str) -> str:
    """The printed form of a typed number: ASCII, no spaces, hyphens or invisible characters, X upper-case (and
    the X look-alikes of a phone's symbol panel read as X in the check digit's place); a 15-digit
    first-generation number becomes its 18-digit form (GB 11643-1999: "19" before the year, the check digit
    appended; every 15-digit number was issued to someone born in the 1900s). Anything else is returned for the
    validator to refuse."""
    number = "".join(_visible(text).translate(_FULL_WIDTH).translate(_SEPARATORS).split()).upper()
    if len(number) == 18 and number[-1] in _X_LOOKALIKES:
        number = number[:-1] + "X"
    if _LEGACY_RE.match(number):
        body = number[:6] + "19" + number[6:]
        number = body + check_digit(body)
    return number


def check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    r = (12 - sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11) % 11
    return "X" if r == 10 else str(r)


def birth_date(number: str) -> dt.date | None:
    """The date encoded in digits 7–14, or None when it is not a calendar date."""
    try:
        return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


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


def _region_label(code: str) -> str | None:
    """Province and county name (stdnum, any era) of a region code, for the reader's result."""
    info = historic_info(code)
    if "province" not in info or "county" not in info:
        names = table()  # a division newer than stdnum's data
        province, county = names.get(code[:2] + "0000"), names.get(code)
        return province + county if province and county else None
    county = info["county"].split(",")[-1].split("]")[-1]
    return info["province"] + ("" if county == info["province"] else county)


def _region_ok(code: str) -> bool:
    """A county code of any era, a residence permit's prefix, or a permanent residence card's mainland province
    and nationality (a nationality code is never 000)."""
    if code in PERMIT_PREFIXES:
        return True
    if code.startswith(FOREIGNER_FIRST):
        # Issued on the mainland: its provinces' codes start 1–6 (71 台湾省 and 81/82 are not issuing provinces).
        mainland = code[1] in "123456" and "province" in historic_info(code[1:3] + "0000")
        return mainland and code[3:6] != "000"
    return known_region(code)


def residence_region(number: str) -> str | None:
    """The division code a valid number places its holder in, where it does: a resident's county; a foreigner's
    permanent residence card, its issuing province (9 + province + nationality: the nationality is no place);
    a residence permit none (810000/820000/830000 say which side of the border, not where the holder lives)."""
    code = number[:6]
    if code in PERMIT_PREFIXES:
        return None
    if code.startswith(FOREIGNER_FIRST):
        return code[1:3] + "0000"
    return code


def _label(code: str) -> str | None:
    if code in PERMIT_PREFIXES:
        return PERMIT_PREFIXES[code]
    if code.startswith(FOREIGNER_FIRST):
        return historic_info(code[1:3] + "0000")["province"] + "外国人永久居留身份证"
    return _region_label(code)


def check_number(number: str | None, today: dt.date | None = None) -> NumberCheck:
    """Format, ISO 7064 MOD 11-2 check digit, region code and birth date of an ID number.

    A lowercase x check digit is read as X: people type it so, and it is the same number. Other
    normalisation (spaces, full-width digits) is the caller's: a card line or a form field.
    stdnum's ``ric.validate`` also requires the county to have existed in the birth year; numbers of people
    born before their county was created (most pensioners: numbers were assigned from 1984 on) are real,
    so the region is only required to be a known code of any era (divisions.known_region). Hong Kong, Macau
    and Taiwan residents' permits (810000/820000/830000) and foreigners' permanent residence cards (9…) carry
    numbers of the same form and are judged alike (``_region_ok``).
    """
    if number is not None and number.endswith("x"):
        number = number[:-1] + "X"
    if number is None or not NUMBER_RE.match(number):
        return NumberCheck(False, problems=["format"])
    problems: list[str] = []
    checksum_ok = number[-1] == check_digit(number[:17])
    if not checksum_ok:
        problems.append("checksum")
    birth = birth_date(number)
    today = today or dt.date.today()
    date_ok = birth is not None and EARLIEST_BIRTH <= birth <= today
    if not date_ok:
        problems.append("birth_date")
    region_ok = _region_ok(number[:6])
    if not region_ok:
        problems.append("region")
    region = _label(number[:6]) if region_ok else None
    sex = "男" if int(number[16]) % 2 == 1 else "女"
    return NumberCheck(True, checksum_ok, region_ok, date_ok, birth if date_ok else None, sex, region, problems)
