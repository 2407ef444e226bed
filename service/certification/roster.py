"""Bulk import of the benefit system's roster (CSV or XLSX), validated row by row.

The file is read by service/certification/roster_file.py (encodings, delimiters, Chinese column names, the forms
Excel saves numbers and dates in); the report names the CSV's encoding. Each row is validated by roster_rows.py,
written by roster_upsert.py (a change of ID number: roster_identity.py); the terms and the report are in
roster_terms.py. This module reads, validates and writes a whole file, and records the import; the names other
code uses are all importable from here.

Rows are upserted by the benefit system's ``external_id``; re-importing the same file changes nothing
(each row's digest is stored), and every rejected row is reported with its line number and reasons.
Columns: external_id, id_number, name, region (optional: for a new record the number's place of residence, and
required for a new record of a residence permit's number, which names none; a blank cell or a file without the
column keeps an existing record's region), benefit_types (separated by ``;``), status
(optional, default active; ``suspended`` for an existing record held active keeps its status but takes it out of
the cycle, cycle.stopped_by_roster, and the report names it; for one suspended here it is our suspension echoed),
valid_until (optional ISO date), household (optional: the benefit
system's household id; beneficiaries sharing one are relatives for the kinship face rule, see
service/features/proxy/relatives.py), last_certified_on (optional ISO date: the person's last certification in the
benefit system; the cycle rules give the validity), cycle_start (optional ISO date: this person's cycle start). For
a survivor pension the id_number and name are the dependant's: the dependant is the one who certifies.

The whole file is read and validated before anything is written, and every stored record it names is locked in
id order first (PostgreSQL; service/certification/lock_order.py): an import and the cycle run, or two imports
listing the same people in other orders, then wait for each other instead of deadlocking.

Every active person leaves the import with a validity date a person can see and check (issue 21): the later of
the row's valid_until and the validity of its last_certified_on, else (for a new person, or one stored without a
date) the cycle start (the row's, else the import's; one before the import date counts from the import date)
plus ``Settings.new_import_grace_days``. A new person whose row's date is earlier than ``due_soon_days - 1`` days
from the import (lapsed, or lapsing soon: transferred in with their previous bureau's date) is given that date
instead, a floor (due soon, reminded; named in the report, ``lapsed_on_import``). A person imported today is
therefore never overdue, nor suspended by the cycle run, within ``due_soon_days - 1`` days. A later cycle start for a
person still awaiting a first certification moves their grace date later (never earlier); one the run already
suspended keeps the date and the suspension, named in the report (``suspension_kept``).

A row that gives an existing record (same external_id) another ID number hands the record to that number's
person: the face enrolled for the old number goes, the old person's certification no longer counts (the record is
dated as a new person's, suspension lifted), and every installed feature is told in the import's transaction
(``FeatureHooks.identity_changed``: the proxy feature ends the relatives' bindings, the console raises a
supervisor's alert), so a second person sees each such change.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.models import RosterImport
from service.certification.roster_file import FORMULA_START as FORMULA_START
from service.certification.roster_file import MAX_COLUMNS as MAX_COLUMNS
from service.certification.roster_file import MAX_ROWS as MAX_ROWS
from service.certification.roster_file import open_table
from service.certification.roster_file import read_table as read_table
from service.certification.roster_identity import announce_identity_change
from service.certification.roster_rows import EXTERNAL_ID_SPREADSHEET as EXTERNAL_ID_SPREADSHEET
from service.certification.roster_rows import EXTRA_CELLS_PROBLEM as EXTRA_CELLS_PROBLEM
from service.certification.roster_rows import MAX_YEARS_AHEAD as MAX_YEARS_AHEAD
from service.certification.roster_rows import RosterRow as RosterRow
from service.certification.roster_rows import read_rows
from service.certification.roster_rows import validate_row as validate_row
from service.certification.roster_terms import ImportReport as ImportReport
from service.certification.roster_terms import ImportTerms as ImportTerms
from service.certification.roster_terms import import_terms as import_terms
from service.certification.roster_upsert import LOCK_CHUNK as LOCK_CHUNK
from service.certification.roster_upsert import lock_records, upsert
from service.infra.security import Keyring, mask_id

log = logging.getLogger(__name__)


def import_roster(
    db: Session, keyring: Keyring, filename: str, data: bytes, actor: str, terms: ImportTerms
) -> ImportReport:
    """Validate and upsert every row; the caller commits (one transaction for the whole file). The file is read
    and validated whole first, and every stored record it names is locked in id order (`roster_upsert.lock_records`)
    before the first row is written in the file's order."""
    report = ImportReport(filename=filename)
    table = open_table(filename, data)
    report.encoding = table.encoding
    lines = read_rows(table.rows, terms.today)
    stored = lock_records(db, keyring, [row for _, row, _ in lines if row is not None])
    seen_ext: set[str] = set()
    seen_id: set[str] = set()
    for line, row, refused in lines:
        if row is None:
            report.rejected.append(refused or {})
            continue
        if row.external_id in seen_ext or row.id_number in seen_id:
            errors = ["duplicate of an earlier row in this file"]
        else:
            errors = upsert(db, keyring, row, report, terms, stored.get(row.external_id))
        if errors:
            # A valid row's cells are its fields as read (stripped when read): the entry an invalid row gets.
            entry = {"line": line, "external_id": row.external_id, "id": mask_id(row.id_number), "errors": errors}
            report.rejected.append(entry)
            continue
        seen_ext.add(row.external_id)
        seen_id.add(row.id_number)
    _record_import(db, report, filename, data, actor, terms)
    return report


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
        announce_identity_change(db, change, rec.id, actor, terms)
    log.info("roster %s: %s", filename, {k: v for k, v in report.to_dict().items() if k != "rejected_rows"})
