"""A roster file's rows validated one by one (service/certification/roster.py imports them).

Each row read from the file (service/certification/roster_file.py) becomes a `RosterRow`, or a report entry with
its line number and reasons (English sentences; the console translates them by their beginning,
service/features/console/labels.py). A refused row's cells are shown masked: a file whose columns slipped puts the
ID number in another column. The whole file is validated before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipelines.names import stored_name
from service.certification import idnumber
from service.certification.cycle import add_months
from service.certification.errors import ServiceError
from service.certification.models import BeneficiaryStatus, BenefitType
from service.certification.roster_file import (
    EXTRA_CELLS,
    FORMULA_START,
    MAX_ROWS,
    private_use,
    spreadsheet_date,
    spreadsheet_text,
)
from service.infra.security import mask_id, mask_number_reads, normalise_id

# An external id Excel turned into a number shown as 1.23457E+19 (idnumber.SPREADSHEET for the ID number).
EXTERNAL_ID_SPREADSHEET = (
    "external_id was changed by a spreadsheet (shown as 1.23457E+19): format the column as text (文本格式) and "
    "enter the ids again"
)
EXTRA_CELLS_PROBLEM = (
    "row has more cells than the header (a delimiter inside a cell?): quote a cell holding the delimiter, "
    "e.g. several benefit types"
)
# A name a Western-locale Excel saved (张秀英 as ???), or one typed with ? for a character staff could not type.
LOST_CHARACTERS = (
    "name holds ? in place of characters (saved in an encoding without Chinese characters?): save the file as CSV "
    "UTF-8 and type the name as on the ID card"
)
# A name written with a legacy system's user-defined character (造字): nobody can type or photograph it.
PRIVATE_USE = (
    "name holds a private-use (user-defined, 造字) character: write it with its standard character, as on the ID card"
)
# A row's valid_until or cycle_start further than this after the import is a typo (2207 for 2027), refused.
MAX_YEARS_AHEAD = 5


@dataclass(slots=True)  # slots: a whole file's rows are held at once (roster.import_roster)
class RosterRow:
    line: int
    external_id: str
    id_number: str
    name: str
    region: str
    benefit_types: list[str]
    status: str
    valid_until: dt.date | None
    birth_date: dt.date | None
    # None: the file has no household column (the stored one is kept); "": the row clears it.
    household: str | None = None
    last_certified_on: dt.date | None = None
    cycle_start: dt.date | None = None
    # False: the file has no region column, or the row's cell is blank. `region` is then the number's place of
    # residence, a new record's region; an existing record keeps its stored one (roster_upsert.kept_region).
    region_given: bool = True

    def digest(self, household: str | None, region: str) -> str:
        """Of every stored field; `household` and `region` are the ones the row leaves stored (see
        `roster_upsert.upsert`)."""
        payload: list[Any] = [
            self.id_number,
            self.name,
            region,
            self.benefit_types,
            self.status,
            str(self.valid_until),
        ]
        if household:
            # Only when there is one: rows stored before the column existed keep their digests (unchanged).
            payload.append(["household", household])
        for key, day in (("last_certified_on", self.last_certified_on), ("cycle_start", self.cycle_start)):
            if day is not None:  # likewise: files without these columns keep their digests
                payload.append([key, day.isoformat()])
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


# (line, the valid row, None) or (line, None, the refused row's report entry).
Line = tuple[int, RosterRow | None, dict[str, Any] | None]


def validate_row(line: int, raw: dict[str, str], today: dt.date) -> tuple[RosterRow | None, list[str]]:
    """The row read from its cells, or what is wrong with it. `today`: the import's date, the bureau's
    (ImportTerms.today), up to which the ID number's birth date is valid."""
    errors: list[str] = []
    ext = _external_id_cell(raw)
    if raw.get(EXTRA_CELLS):  # the cells beyond the header were dropped: the row is not what staff typed
        errors.append(EXTRA_CELLS_PROBLEM)
    if not ext or len(ext) > 64:
        errors.append("external_id missing or longer than 64")
    elif idnumber.spreadsheet_float(ext.upper()):  # a workbook's float reads as 1.2345678901234567e+19
        errors.append(EXTERNAL_ID_SPREADSHEET)
    number = _id_cell(raw)
    birth: dt.date | None = None
    problem = idnumber.validate(number, today)
    if problem and idnumber.damaged_by_spreadsheet(number):
        problem = idnumber.SPREADSHEET  # not "check digit": the digits are gone, the cell must become text
    if problem:
        errors.append(problem)
    else:
        birth = idnumber.birth_date(number)
    # Full-width letters and digits stored as the letters they are (NFKC, as the ID-card step reads a name), so
    # that the console's search finds them typed either way (a name stored before is normalised by its row's next
    # import); the dots and the spaces inside kept as typed, for the pages and the payment exports.
    name = stored_name(raw.get("name", ""))
    if not name or len(name) > 64:
        errors.append("name missing or too long")
    elif "?" in name or "\ufffd" in name:  # NFKC made a full-width ？ the ASCII one
        errors.append(LOST_CHARACTERS)
    elif private_use(name):
        errors.append(PRIVATE_USE)
    if ext.startswith(FORMULA_START) or name.startswith(FORMULA_START):
        errors.append("external_id and name must not start with = + - @ (spreadsheet formula)")
    region = _region(raw, number, problem, errors)
    types = [t.strip() for t in raw.get("benefit_types", "").replace("|", ";").split(";") if t.strip()]
    valid_types = {t.value for t in BenefitType}
    if not types or any(t not in valid_types for t in types):
        # Plain words, not a Python list; the console translates it by its beginning (features/console/labels.py).
        errors.append(f"benefit_types must be among {', '.join(BenefitType)} (several separated by ;)")
    status = raw.get("status", "").strip().lower() or BeneficiaryStatus.ACTIVE.value
    if status not in {s.value for s in BeneficiaryStatus}:
        errors.append("status must be active, suspended or deceased")
    until, certified, start = (_date(raw, col, errors) for col in ("valid_until", "last_certified_on", "cycle_start"))
    household = raw.get("household")
    if household is not None:
        household = household.strip()
        if len(household) > 64 or household.startswith(FORMULA_START):
            errors.append("household must be at most 64 characters, not starting with = + - @")
    if any("\x00" in text for text in (ext, name, household or "")):
        # PostgreSQL stores no NUL in a text column: the whole import was a 500 there (SQLite stored it in a name).
        errors.append("external_id, name and household must not contain a NUL character")
    if errors:
        return None, errors
    row = RosterRow(line, ext, number, name, region, sorted(set(types)), status, until, birth, household)
    row.last_certified_on, row.cycle_start = certified, start
    row.region_given = bool(raw.get("region", "").strip())
    return row, []


# Staff scopes, the birthday-month regions and the dashboard go by region: 830000 would fit none of them. Asked of a
# new record only (roster_upsert.upsert): an existing one keeps its stored region (`RosterRow.region_given`).
REGION_REQUIRED = "region is required for a residence permit number (it names no place of residence)"


def _region(raw: dict[str, str], number: str, problem: str | None, errors: list[str]) -> str:
    """The row's region cell, else the number's place of residence, a new record's (an existing one keeps its
    stored region: `RosterRow.region_given`; an invalid number is refused anyway: its region is not looked for).
    Empty for a residence permit's number (港澳台居民居住证: it names no place) without a cell: the file cannot say
    whether the record exists, so the refusal of a new one without a region is `roster_upsert.upsert`'s. Before, the
    row was refused here, also for a stored record whose region the row would have kept: a mid-year file of dates
    without the optional column refused every permit holder in it."""
    implied = number[:6] if problem else idnumber.residence_region(number) or ""
    region = raw.get("region", "").strip() or implied
    if problem == idnumber.SPREADSHEET and not raw.get("region", "").strip():
        pass  # the region would have come from the number's digits, which the spreadsheet changed
    elif region and not (region.isdigit() and 2 <= len(region) <= 12):
        errors.append("region must be a numeric division code")
    return region


def _external_id_cell(raw: dict[str, str]) -> str:
    """The row's external id, the spreadsheet's text markers dropped as from the ID number ('00012345 is 00012345:
    a ' typed first only keeps Excel from reading the leading zeros away; no benefit system's id begins with one)."""
    return spreadsheet_text(raw.get("external_id", "")).removeprefix("'").strip()


def _id_cell(raw: dict[str, str]) -> str:
    """The row's ID number in the printed form, the spreadsheet's text markers (a leading ', ="…") dropped."""
    return normalise_id(spreadsheet_text(raw.get("id_number", "")).removeprefix("'"))


def _date(raw: dict[str, str], column: str, errors: list[str]) -> dt.date | None:
    text = raw.get(column, "").strip()
    if not text:
        return None
    day = spreadsheet_date(text)
    if day is None:
        errors.append(f"{column} must be YYYY-MM-DD")  # 2026/6/30 and 2026年6月30日 are read too (Excel's)
    return day


def read_rows(rows: Iterator[tuple[int, dict[str, str]]], today: dt.date) -> list[Line]:
    """Every non-empty row: (line, the valid row, None) or (line, None, its report entry); MAX_ROWS is checked
    before anything is written. `today`: the import's date (validate_row)."""
    lines: list[Line] = []
    for n, (line, raw) in enumerate(rows):
        if n >= MAX_ROWS:
            raise ServiceError("ROSTER_TOO_LARGE", f"more than {MAX_ROWS} rows")
        row, errors = validate_row(line, raw, today)
        if row is not None:
            lines.append((line, row, None))
            continue
        masked = mask_id(_id_cell(raw))
        shown = _shown_cell(_external_id_cell(raw))
        lines.append((line, None, {"line": line, "external_id": shown, "id": masked, "errors": errors}))
    return _zeroed_column(lines)


def _zeroed_column(lines: list[Line]) -> list[Line]:
    """When a row's number was found damaged by a spreadsheet, the whole column was (Excel keeps 15 significant
    digits of every number in a General cell): a number ending 000 that passes its check digit (one in eleven
    damaged ones) is refused too, not imported as a person who does not exist."""
    if not any(refused and idnumber.SPREADSHEET in refused["errors"] for _, _, refused in lines):
        return lines
    out: list[Line] = []
    for line, row, refused in lines:
        if row is not None and row.id_number.endswith("000"):
            entry = {"line": line, "external_id": _shown_cell(row.external_id), "id": mask_id(row.id_number)}
            row, refused = None, entry | {"errors": [idnumber.SPREADSHEET]}
        out.append((line, row, refused))
    return out


def _shown_cell(text: str) -> str:
    """A refused row's external-id cell as its report shows and stores it: at most 64 characters, any ID number or
    long run of digits in it masked (a file whose columns slipped puts the ID number there; the report is shown,
    answered by the API and stored with the import, in clear)."""
    return mask_number_reads(text)[:64]


def date_problems(row: RosterRow, today: dt.date) -> list[str]:
    """A row's dates against the import date: no certification after it, and no validity or cycle start more than
    MAX_YEARS_AHEAD after it (9999-12-31 overflowed the grace date, a 500 for the whole file; 2207 for 2027 left a
    pensioner never reminded and never overdue)."""
    if row.last_certified_on is not None and row.last_certified_on > today:
        return [f"last_certified_on is after the import date ({row.last_certified_on} > {today})"]
    limit = add_months(today, 12 * MAX_YEARS_AHEAD)
    return [
        f"{column} is more than {MAX_YEARS_AHEAD} years after the import date ({day} > {limit})"
        for column, day in (("valid_until", row.valid_until), ("cycle_start", row.cycle_start))
        if day is not None and day > limit
    ]
