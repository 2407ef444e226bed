"""Bulk import of the benefit system's roster (CSV or XLSX), validated row by row.

The file is read by service/certification/roster_file.py (encodings, delimiters, Chinese column names, the forms
Excel saves numbers and dates in); the report names the CSV's encoding.

Rows are upserted by the benefit system's ``external_id``; re-importing the same file changes nothing
(each row's digest is stored), and every rejected row is reported with its line number and reasons.
Columns: external_id, id_number, name, region (optional: the number's first 6 digits), benefit_types
(separated by ``;``), status (optional, default active), valid_until (optional ISO date), household (optional:
the benefit system's household id; beneficiaries sharing one are relatives for the kinship face rule, see
service/features/proxy/relatives.py), last_certified_on (optional ISO date: the person's last certification in the
benefit
system; the cycle rules give the validity), cycle_start (optional ISO date: this person's cycle start). For a
survivor pension the id_number and name are the dependant's: the dependant is the one who certifies.

The whole file is read and validated before anything is written, and every stored record it names is locked in
id order first (PostgreSQL; service/certification/lock_order.py): an import and the cycle run, or two imports
listing the same people in other orders, then wait for each other instead of deadlocking.

Every active person leaves the import with a validity date a person can see and check (issue 21): the later of
the row's valid_until and the validity of its last_certified_on, else (for a new person, or one stored without a
date) the cycle start (the row's, else the import's; one before the import date counts from the import date)
plus ``Settings.new_import_grace_days``. A person imported today is therefore never overdue today, and never
suspended by tonight's cycle run.

A row that gives an existing record (same external_id) another ID number hands the record to that number's
person: the face enrolled for the old number goes, the old person's certification no longer counts (the record is
dated as a new person's, suspension lifted), and every installed feature is told in the import's transaction
(``FeatureHooks.identity_changed``: the proxy feature ends the relatives' bindings, the console raises a
supervisor's alert), so a second person sees each such change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.names import same_name, stored_name
from service.certification import idnumber
from service.certification.audit import audit
from service.certification.contract import IdentityChange
from service.certification.cycle import CycleRules, add_months, first_valid_until, valid_until
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    BenefitType,
    RosterImport,
    one_of_hashes,
    utcnow,
)
from service.certification.roster_file import EXTRA_CELLS, open_table, spreadsheet_date, spreadsheet_text
from service.certification.roster_file import FORMULA_START as FORMULA_START
from service.certification.roster_file import MAX_COLUMNS as MAX_COLUMNS
from service.certification.roster_file import MAX_ROWS as MAX_ROWS
from service.certification.roster_file import read_table as read_table
from service.infra.clock import local_today
from service.infra.security import Keyring, mask_id, mask_number_reads, normalise_id

if TYPE_CHECKING:
    from service.certification.context import ServiceContext
    from service.certification.contract import FeatureHooks

log = logging.getLogger(__name__)

_Key = TypeVar("_Key", int, str)

# An external id Excel turned into a number shown as 1.23457E+19 (idnumber.SPREADSHEET for the ID number).
EXTERNAL_ID_SPREADSHEET = (
    "external_id was changed by a spreadsheet (shown as 1.23457E+19): format the column as text (文本格式) and "
    "enter the ids again"
)
EXTRA_CELLS_PROBLEM = (
    "row has more cells than the header (a delimiter inside a cell?): quote a cell holding the delimiter, "
    "e.g. several benefit types"
)
# Keys per statement when the import locks its records: well under SQLite's and PostgreSQL's parameter limits.
LOCK_CHUNK = 1000
# A row's valid_until or cycle_start further than this after the import is a typo (2207 for 2027), refused.
MAX_YEARS_AHEAD = 5


@dataclass(slots=True)  # slots: a whole file's rows are held at once (import_roster)
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

    def digest(self, household: str | None) -> str:
        """Of every stored field; `household` is the one the row leaves stored (see `_upsert`)."""
        payload: list[Any] = [
            self.id_number,
            self.name,
            self.region,
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


@dataclass(frozen=True)
class ImportTerms:
    """How an import dates the people it brings in (see the module docstring)."""

    today: dt.date
    rules: CycleRules
    grace_days: int
    cycle_start: dt.date | None = None  # the roster's cycle start; None: the import date
    # The features told of each ID-number change (import_terms: the context's); None: no feature is told.
    hooks: FeatureHooks | None = None

    def first_valid_until(self, row: RosterRow) -> dt.date:
        # A start before the import counts from the import: a cycle that began in January, imported in December,
        # made the person overdue on the day of the import and suspended that night, never reminded.
        start = row.cycle_start or self.cycle_start or self.today
        return first_valid_until(max(start, self.today), self.grace_days)


def import_terms(ctx: ServiceContext, cycle_start: dt.date | None = None) -> ImportTerms:
    """The terms of an import made now with the service's settings."""
    grace = ctx.settings.cycle.new_import_grace_days
    return ImportTerms(local_today(ctx.settings), ctx.rules, grace, cycle_start, ctx.hooks)


@dataclass
class ImportReport:
    filename: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    import_id: int | None = None
    grace_dated: int = 0  # people given the first-import grace date (no date of their own in the file)
    encoding: str | None = None  # the CSV's, as found (roster_file.decode_csv); None: a workbook
    # Records whose ID number the file changed (external id, the masked numbers before and after, and whether
    # an enrolled face was dropped): each is audited on its own.
    identity_changed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "filename": self.filename,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "grace_dated": self.grace_dated,
            "encoding": self.encoding,
            "identity_changed": len(self.identity_changed),
            "rejected_rows": self.rejected,
        }


def validate_row(line: int, raw: dict[str, str]) -> tuple[RosterRow | None, list[str]]:
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
    problem = idnumber.validate(number)
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
    if ext.startswith(FORMULA_START) or name.startswith(FORMULA_START):
        errors.append("external_id and name must not start with = + - @ (spreadsheet formula)")
    # An invalid number is refused anyway: its region is not looked for.
    implied = number[:6] if problem else idnumber.residence_region(number) or ""
    region = raw.get("region", "").strip() or implied
    if problem == idnumber.SPREADSHEET and not raw.get("region", "").strip():
        pass  # the region would have come from the number's digits, which the spreadsheet changed
    elif not region:
        # Staff scopes, the birthday-month regions and the dashboard go by region: 830000 would fit none of them.
        errors.append("region is required for a residence permit number (it names no place of residence)")
    elif not (region.isdigit() and 2 <= len(region) <= 12):
        errors.append("region must be a numeric division code")
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
    return row, []


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


def import_roster(
    db: Session, keyring: Keyring, filename: str, data: bytes, actor: str, terms: ImportTerms
) -> ImportReport:
    """Validate and upsert every row; the caller commits (one transaction for the whole file). The file is read
    and validated whole first, and every stored record it names is locked in id order (`_lock_records`) before
    the first row is written in the file's order."""
    report = ImportReport(filename=filename)
    table = open_table(filename, data)
    report.encoding = table.encoding
    lines = _read_rows(table.rows)
    _lock_records(db, [row for _, row, _ in lines if row is not None])
    seen_ext: set[str] = set()
    seen_id: set[str] = set()
    for line, row, refused in lines:
        if row is None:
            report.rejected.append(refused or {})
            continue
        if row.external_id in seen_ext or row.id_number in seen_id:
            errors = ["duplicate of an earlier row in this file"]
        else:
            errors = _upsert(db, keyring, row, report, terms)
        if errors:
            # A valid row's cells are its fields as read (stripped when read): the entry an invalid row gets.
            entry = {"line": line, "external_id": row.external_id, "id": mask_id(row.id_number), "errors": errors}
            report.rejected.append(entry)
            continue
        seen_ext.add(row.external_id)
        seen_id.add(row.id_number)
    _record_import(db, report, filename, data, actor, terms)
    return report


def _read_rows(rows: Iterator[tuple[int, dict[str, str]]]) -> list[tuple[int, RosterRow | None, dict[str, Any] | None]]:
    """Every non-empty row: (line, the valid row, None) or (line, None, its report entry); MAX_ROWS is checked
    before anything is written."""
    lines: list[tuple[int, RosterRow | None, dict[str, Any] | None]] = []
    for n, (line, raw) in enumerate(rows):
        if n >= MAX_ROWS:
            raise ServiceError("ROSTER_TOO_LARGE", f"more than {MAX_ROWS} rows")
        row, errors = validate_row(line, raw)
        if row is not None:
            lines.append((line, row, None))
            continue
        masked = mask_id(_id_cell(raw))
        shown = _shown_cell(_external_id_cell(raw))
        lines.append((line, None, {"line": line, "external_id": shown, "id": masked, "errors": errors}))
    return _zeroed_column(lines)


def _zeroed_column(
    lines: list[tuple[int, RosterRow | None, dict[str, Any] | None]],
) -> list[tuple[int, RosterRow | None, dict[str, Any] | None]]:
    """When a row's number was found damaged by a spreadsheet, the whole column was (Excel keeps 15 significant
    digits of every number in a General cell): a number ending 000 that passes its check digit (one in eleven
    damaged ones) is refused too, not imported as a person who does not exist."""
    if not any(refused and idnumber.SPREADSHEET in refused["errors"] for _, _, refused in lines):
        return lines
    out: list[tuple[int, RosterRow | None, dict[str, Any] | None]] = []
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


def _lock_records(db: Session, rows: list[RosterRow]) -> None:
    """Lock (PostgreSQL) the stored records this file will change, in id order: the order the cycle run and
    another import take them in (service/certification/lock_order.py). They are found first without a lock (by
    external id; a row whose digest matches its record is left alone by `_upsert`, so its record is not locked:
    a full-roster import must not hold every pensioner's row, and their uploads and accepts, for its whole
    length), then locked in ascending chunks, so the UPDATEs that follow in the file's order take no new
    beneficiary lock. A record another transaction changes or stores after this (a new person another import
    commits meanwhile) is locked when updated, as before."""
    by_ext: dict[str, RosterRow] = {}
    for row in rows:
        by_ext.setdefault(row.external_id, row)  # a later row with the same id is refused as a duplicate
    ids: set[int] = set()
    for chunk in _chunks(sorted(by_ext)):
        stored = select(Beneficiary.id, Beneficiary.external_id, Beneficiary.roster_digest, Beneficiary.household)
        for bid, ext, digest, household in db.execute(stored.where(Beneficiary.external_id.in_(chunk))):
            row = by_ext[ext]
            if row.digest(_kept_household(row, household)) != digest:
                ids.add(bid)
    for id_chunk in _chunks(sorted(ids)):
        query = select(Beneficiary.id).where(Beneficiary.id.in_(id_chunk)).order_by(Beneficiary.id).with_for_update()
        db.scalars(query).all()


def _kept_household(row: RosterRow, stored: str | None) -> str | None:
    """The household a row leaves stored: an empty cell clears it, a file without the column keeps it."""
    return stored if row.household is None else (row.household or None)


def _chunks(items: list[_Key]) -> Iterator[list[_Key]]:
    for start in range(0, len(items), LOCK_CHUNK):
        yield items[start : start + LOCK_CHUNK]


def _record_import(
    db: Session, report: ImportReport, filename: str, data: bytes, actor: str, terms: ImportTerms
) -> None:
    """The import's record and audit entry, then each ID-number change announced."""
    rec = RosterImport(
        filename=filename[:256],
        sha256=hashlib.sha256(data).hexdigest(),
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected=len(report.rejected),
        report=report.rejected[:1000],
    )
    db.add(rec)
    db.flush()
    report.import_id = rec.id
    audit(db, actor, "roster.import", str(rec.id), report.to_dict() | {"rejected_rows": len(report.rejected)})
    for change in report.identity_changed:
        _announce_identity_change(db, change, rec.id, actor, terms)
    log.info("roster %s: %s", filename, {k: v for k, v in report.to_dict().items() if k != "rejected_rows"})


def _zeroed_by_spreadsheet(keyring: Keyring, b: Beneficiary, row: RosterRow) -> bool:
    """The row's number is the stored one as Excel keeps it: its first 15 digits, then 000."""
    if not row.id_number.endswith("000"):
        return False
    try:
        stored = keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
    except (InvalidTag, ValueError):  # sealed with a key no longer in use: judged as before, by the hash
        return False
    return stored != row.id_number and stored[:15] + "000" == row.id_number


def _same_number(keyring: Keyring, b: Beneficiary, row: RosterRow) -> bool:
    """The record's sealed number is the row's although no signing key in use made its stored hash (the key was
    dropped before `pension-cert rekey` reached it): the same person, whose hash is made again, not a change of ID
    number (docs/security.md, Part AH)."""
    try:
        stored = keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
    except (InvalidTag, ValueError):  # sealed with a media key no longer in use: judged by the hash, as before
        return False
    return normalise_id(stored) == normalise_id(row.id_number)


def _new_hash(db: Session, hashes: tuple[str, ...], terms: ImportTerms) -> str:
    """The hash a record takes for a number: during a rotation the one the person's rows elsewhere carry (a
    relative's claim or verified identity, still under a previous key: `FeatureHooks.person_hash`), so that one
    person keeps one hash until the rekey moves them all; else the current key's."""
    if len(hashes) > 1 and terms.hooks is not None:
        return terms.hooks.person_hash(db, hashes) or hashes[0]
    return hashes[0]


def _identity_changed(b: Beneficiary, row: RosterRow, report: ImportReport) -> None:
    """The record now names another ID number: a typo corrected, or the record handed to someone else. Neither
    the face enrolled for the old number nor the old person's certification is this number's person's: the face
    goes (the next certification is checked against the new card, and enrols again), and the record is dated as
    a new person's (`_date_validity` then gives the row's dates, else the first-import grace date; a suspension
    for the old person's lapse is lifted), so the new person must certify. Audited with both masked numbers."""
    enrolled = b.template is not None
    b.template, b.template_model, b.template_consent = None, None, False
    before, certified_before, since_before = b.valid_until, b.last_certified_on, b.identity_since
    b.valid_until, b.last_certified_on = None, None
    b.identity_since = utcnow()  # the certifications stored so far are the previous person's
    if b.status == BeneficiaryStatus.SUSPENDED:
        b.status, b.suspended_on = row.status, None
    report.identity_changed.append(
        {
            "external_id": b.external_id,
            "from": b.id_masked,
            "to": mask_id(row.id_number),
            "template_cleared": enrolled,
            "name_changed": not same_name(b.name, row.name),  # not another middle dot: the ID-card step's rule
            "valid_until_before": before.isoformat() if before else None,
            # What a supervisor's "same person" finding gives back (service/certification/identity_review.py).
            "last_certified_on_before": certified_before.isoformat() if certified_before else None,
            "identity_since_before": since_before.isoformat() if since_before else None,
        }
    )


def _announce_identity_change(
    db: Session, change: dict[str, Any], import_id: int, actor: str, terms: ImportTerms
) -> None:
    """Audit one ID-number change and tell the features (in the import's transaction: all or nothing). The
    record's row is locked already (`_lock_records`, then updated by `_upsert`); the features' hooks lock their
    rows after it (the proxy feature: the record's bindings), in the lock order of
    service/certification/lock_order.py."""
    audit(db, actor, "roster.identity_changed", change["external_id"], change | {"import": import_id})
    if terms.hooks is None:
        return
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == change["external_id"]))
    if b is None:
        return
    told = IdentityChange(
        b.id, b.external_id, change["from"], change["to"], bool(change["name_changed"]), import_id, actor
    )
    terms.hooks.identity_changed(db, told)


def _date_problems(row: RosterRow, today: dt.date) -> list[str]:
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


def _upsert(db: Session, keyring: Keyring, row: RosterRow, report: ImportReport, terms: ImportTerms) -> list[str]:
    problems = _date_problems(row, terms.today)
    if problems:
        return problems
    # The number's hash under every signing key in use: a row `pension-cert rekey` has not reached yet still
    # holds a previous key's, and is the same person (found and updated, never a second row for them).
    hashes = keyring.id_hashes(row.id_number)
    existing = db.scalar(select(Beneficiary).where(Beneficiary.external_id == row.external_id))
    holder = db.scalar(select(Beneficiary).where(one_of_hashes(Beneficiary.id_hash, hashes)))
    new = existing is None  # a new beneficiary: created, with the row's status
    if holder is not None and (existing is None or holder.id != existing.id):
        return [f"id_number already belongs to beneficiary {holder.external_id}"]
    if existing is not None and existing.id_hash not in hashes and _zeroed_by_spreadsheet(keyring, existing, row):
        return [idnumber.SPREADSHEET]  # not another person: the face and the certification stay
    household = _kept_household(row, existing.household if existing is not None else None)
    digest = row.digest(household)
    if existing is not None and existing.roster_digest == digest:
        report.unchanged += 1
        return []
    b = existing or Beneficiary(external_id=row.external_id)
    if existing is not None and existing.id_hash not in hashes and not _same_number(keyring, existing, row):
        _identity_changed(existing, row, report)
    if existing is None or existing.id_hash not in hashes:
        # Kept when the same number's under a previous key: the rekey moves it with the relatives' copies of it.
        b.id_hash = _new_hash(db, hashes, terms)
    b.id_enc = keyring.encrypt_field(row.id_number, "beneficiary.id_number")
    b.id_masked = mask_id(row.id_number)
    b.name = row.name
    b.region = row.region
    b.birth_date = row.birth_date
    b.benefit_types = row.benefit_types
    b.roster_digest = digest
    # The roster is the benefit system's word on deaths and on certifications made before this service.
    if row.status == BeneficiaryStatus.DECEASED or new:
        b.status = row.status
    _date_validity(b, row, terms, report)
    b.household = household
    if new:
        db.add(b)
        report.created += 1
    else:
        report.updated += 1
    db.flush()
    return []


def _date_validity(b: Beneficiary, row: RosterRow, terms: ImportTerms, report: ImportReport) -> None:
    """The row's dates never shorten a validity already stored (a certification made here is newer). Of the row's
    valid_until and the validity of its last_certified_on, the later counts: a benefit system's valid_until
    computed at its last cycle lags a certification made since."""
    until = row.valid_until
    if row.last_certified_on is not None:
        certified_until = valid_until(row.last_certified_on, terms.rules, row.region, row.birth_date)
        until = max(until, certified_until) if until is not None else certified_until
    if until is not None and (b.valid_until is None or until > b.valid_until):
        b.valid_until = until
    certified = row.last_certified_on
    if certified is not None and (b.last_certified_on is None or certified > b.last_certified_on):
        b.last_certified_on = certified
    if b.valid_until is None and b.status == BeneficiaryStatus.ACTIVE:
        b.valid_until = terms.first_valid_until(row)
        report.grace_dated += 1
