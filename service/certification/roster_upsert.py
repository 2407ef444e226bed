"""Writing a roster file's valid rows: the stored records it changes locked in id order first, then each row
created, updated or left unchanged by its external_id, and dated (service/certification/roster.py calls them).

A row whose stored digest is its own changes nothing (re-importing the same file is idempotent); one whose record
holds one of the number's hashes, no other record holding another (several signing keys in use), is told so from
what `lock_records` read, without two look-ups of its own. A row whose number another record holds, under any key in
use, is refused naming that record; one whose number is the stored one as Excel damaged it is refused as such; one
that gives its record another number is a change of ID number (roster_identity.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification import idnumber
from service.certification.cycle import awaiting_first, roster_word, stopped_by_roster, valid_until
from service.certification.deaths import record_death, roster_death_withdrawn
from service.certification.models import Beneficiary, BeneficiaryStatus, one_of_hashes
from service.certification.roster_identity import identity_changed, new_hash, same_number, zeroed_by_spreadsheet
from service.certification.roster_rows import REGION_REQUIRED, RosterRow, date_problems
from service.certification.roster_terms import ImportReport, ImportTerms
from service.infra.security import Keyring, mask_id

_Key = TypeVar("_Key", int, str)

# Keys per statement when the import locks its records: well under SQLite's and PostgreSQL's parameter limits.
LOCK_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored record as `lock_records` read it, before the import's first write."""

    id: int
    digest: str
    household: str | None
    region: str
    id_hash: str
    # No other record holds the number under another signing key in use (True with one key; False: not known).
    alone: bool = True


def lock_records(db: Session, keyring: Keyring, rows: list[RosterRow]) -> dict[str, Stored]:
    """Lock (PostgreSQL) the stored records this file will change, in id order: the order the cycle run and
    another import take them in (service/certification/lock_order.py). They are found first without a lock (by
    external id; a row whose digest matches its record is left alone by `upsert`, so its record is not locked:
    a full-roster import must not hold every pensioner's row, and their uploads and accepts, for its whole
    length), then locked in ascending chunks, so the UPDATEs that follow in the file's order take no new
    beneficiary lock. A record another transaction changes or stores after this (a new person another import
    commits meanwhile) is locked when updated, as before. The records found, by external id (see `upsert`; with
    several signing keys in use, `_alone` tells whether another record holds a row's number under another key)."""
    by_ext: dict[str, RosterRow] = {}
    for row in rows:
        by_ext.setdefault(row.external_id, row)  # a later row with the same id is refused as a duplicate
    found: dict[str, Stored] = {}
    ids: set[int] = set()
    unchanged: dict[str, tuple[str, ...]] = {}  # several keys in use: the number's hashes of a row as stored
    columns = (Beneficiary.id, Beneficiary.external_id, Beneficiary.roster_digest, Beneficiary.household)
    for chunk in _chunks(sorted(by_ext)):
        read = select(*columns, Beneficiary.region, Beneficiary.id_hash).where(Beneficiary.external_id.in_(chunk))
        for bid, ext, digest, household, region, id_hash in db.execute(read):
            found[ext] = Stored(bid, digest, household, region, id_hash, alone=not keyring.rotating)
            row = by_ext[ext]
            if row.digest(kept_household(row, household), kept_region(row, region)) != digest:
                ids.add(bid)
            elif keyring.rotating:
                unchanged[ext] = keyring.id_hashes(row.id_number)
    found.update(_alone(db, found, unchanged))
    for id_chunk in _chunks(sorted(ids)):
        query = select(Beneficiary.id).where(Beneficiary.id.in_(id_chunk)).order_by(Beneficiary.id).with_for_update()
        db.scalars(query).all()
    return found


def _alone(db: Session, found: dict[str, Stored], unchanged: dict[str, tuple[str, ...]]) -> dict[str, Stored]:
    """Of the records whose rows are unchanged and that hold one of their number's hashes (several signing keys in
    use), those no other record holds the number for under another key: one read per chunk of those other hashes
    (the hash column is unique: a record holding one is another record)."""
    others = {ext: [h for h in hashes if h != found[ext].id_hash] for ext, hashes in unchanged.items()}
    others = {ext: hashes for ext, hashes in others.items() if len(hashes) < len(unchanged[ext])}
    held: set[str] = set()
    for chunk in _chunks(sorted({h for hashes in others.values() for h in hashes})):
        held.update(db.scalars(select(Beneficiary.id_hash).where(Beneficiary.id_hash.in_(chunk))))
    return {ext: replace(found[ext], alone=True) for ext, hashes in others.items() if held.isdisjoint(hashes)}


def kept_household(row: RosterRow, stored: str | None) -> str | None:
    """The household a row leaves stored: an empty cell clears it, a file without the column keeps it."""
    return stored if row.household is None else (row.household or None)


def kept_region(row: RosterRow, stored: str | None) -> str:
    """The region a row leaves stored: the row's cell, else (no column, or a blank cell) the stored one. The
    number's place of residence only for a new record: a file without the column (a mid-year file of dates) moved
    everyone to their birthplace's district, out of their own district staff's scope."""
    return row.region if row.region_given or stored is None else stored


def _chunks(items: list[_Key]) -> Iterator[list[_Key]]:
    for start in range(0, len(items), LOCK_CHUNK):
        yield items[start : start + LOCK_CHUNK]


def upsert(
    db: Session, keyring: Keyring, row: RosterRow, report: ImportReport, terms: ImportTerms, stored: Stored | None
) -> list[str]:
    """Create, update or leave the row's record (counted in the report); the reasons it is refused, if it is.
    `stored`: the row's record as `lock_records` read it (None: none was found)."""
    problems = date_problems(row, terms.today)
    if problems:
        return problems
    # The number's hash under every signing key in use: a row `pension-cert rekey` has not reached yet still
    # holds a previous key's, and is the same person (found and updated, never a second row for them).
    hashes = keyring.id_hashes(row.id_number)
    if stored is not None and _unchanged(row, stored, hashes):
        report.unchanged += 1
        return []
    existing = db.scalar(select(Beneficiary).where(Beneficiary.external_id == row.external_id))
    holder = _holder(db, hashes, existing)
    new = existing is None  # a new beneficiary: created, with the row's status
    if holder is not None:
        return [f"id_number already belongs to beneficiary {holder.external_id}"]
    if existing is not None and existing.id_hash not in hashes and zeroed_by_spreadsheet(keyring, existing, row):
        return [idnumber.SPREADSHEET]  # not another person: the face and the certification stay
    household = kept_household(row, existing.household if existing is not None else None)
    region = kept_region(row, existing.region if existing is not None else None)
    if not region:  # a new record of a residence permit's number, no region given (roster_rows.REGION_REQUIRED)
        return [REGION_REQUIRED]
    digest = row.digest(household, region)
    if existing is not None and existing.roster_digest == digest:
        report.unchanged += 1
        return []
    b = existing or Beneficiary(external_id=row.external_id)
    if existing is not None and existing.id_hash not in hashes and not same_number(keyring, existing, row):
        identity_changed(existing, row, report)
    if existing is None or existing.id_hash not in hashes:
        # Kept when the same number's under a previous key: the rekey moves it with the relatives' copies of it.
        b.id_hash = new_hash(db, hashes, terms)
    said = b.roster_status  # the roster's word at its last import of the row (None: new, or not known)
    _store(keyring, b, row, digest, region)
    # The roster is the benefit system's word on deaths and on certifications made before this service. A death of
    # a record held as living writes the payment system's row as any other death (deaths.py; no date in the file).
    # A living status does not lift a death on record (docs/security.md Part R): only a supervisor withdraws one
    # (deaths.withdraw_death); the report names the record, so the benefit system's correction is not lost unseen.
    # Nor does a row still saying `deceased`, as at its last import, undo a withdrawal (the same statement, with no
    # date: the death withdrawn); the report names that record too. A `deceased` after the roster said living is a
    # new death. An unchanged row (skipped above by its digest, which holds the status) is the same statement.
    if new:
        b.status = row.status
    elif row.status == BeneficiaryStatus.DECEASED and roster_death_withdrawn(b, said):
        report.death_withdrawn_kept.append(b.external_id)
    elif row.status == BeneficiaryStatus.DECEASED:
        record_death(db, b, None, terms.today)
    elif b.status == BeneficiaryStatus.DECEASED:
        report.death_kept.append(b.external_id)
    elif stopped_by_roster(b):
        # A roster `suspended` (transferred out, 转出) leaves the status (only a certification or a person decides
        # a payment here: Part R) but takes the record out of the cycle (cycle.stopped_by_roster: `roster_status`).
        # Before, it was an unnamed `updated`: reminded, listed overdue, then suspended with a payment row. Not
        # our suspension's echo after our resume (`cycle.roster_word` kept the mark: not stopped, not named).
        report.suspension_not_applied.append(b.external_id)
    _date_validity(b, row, terms, report, new)
    b.household = household
    if new:
        db.add(b)
        report.created += 1
    else:
        report.updated += 1
    db.flush()
    return []


def _holder(db: Session, hashes: tuple[str, ...], existing: Beneficiary | None) -> Beneficiary | None:
    """Another record than the row's own holding the number under a key in use (the first by id). During a rotation
    the row's record may hold it under one key and another record under another: the look-up by every hash took
    whichever the database returned first, and counted the row unchanged or refused it by chance."""
    query = select(Beneficiary).where(one_of_hashes(Beneficiary.id_hash, hashes))
    if existing is not None:
        query = query.where(Beneficiary.id != existing.id)
    return db.scalar(query.order_by(Beneficiary.id).limit(1))


def _unchanged(row: RosterRow, stored: Stored, hashes: tuple[str, ...]) -> bool:
    """The row is its record as stored, the record holds one of the number's hashes, and no other record holds
    another (`Stored.alone`): the look-ups below would find that record by external id, no other holder (`_holder`),
    and count the row unchanged. What `lock_records` read holds still: no other row of the file writes that record
    (a row writes only the record of its own external id, and a second row with that id is refused as a duplicate),
    none gives another record this number (the look-up of its holder finds this record: refused), and the digest
    is of the row being written. A record whose hash no key in use makes is looked up as any other
    (`test_roster_reimport.py`)."""
    if not stored.alone or stored.id_hash not in hashes:
        return False
    return stored.digest == row.digest(kept_household(row, stored.household), kept_region(row, stored.region))


def _store(keyring: Keyring, b: Beneficiary, row: RosterRow, digest: str, region: str) -> None:
    """The row's fields on the record (its number sealed, its digest with the household and the region it leaves
    stored, its status word as the roster's last)."""
    b.id_enc = keyring.encrypt_field(row.id_number, "beneficiary.id_number")
    b.id_masked = mask_id(row.id_number)
    b.name = row.name
    b.region = region
    b.birth_date = row.birth_date
    b.benefit_types = row.benefit_types
    b.roster_digest = digest
    # What the roster said (deaths.roster_death_withdrawn reads it at the next import), or still our resume's mark
    # while it repeats our suspension's echo (cycle.roster_word).
    b.roster_status = roster_word(b.roster_status, row.status)


def _date_validity(b: Beneficiary, row: RosterRow, terms: ImportTerms, report: ImportReport, new: bool) -> None:
    """The row's dates never shorten a validity already stored (a certification made here is newer). Of the row's
    valid_until and the validity of its last_certified_on, the later counts: a benefit system's valid_until
    computed at its last cycle lags a certification made since. Any date of the row clears the grace mark, whether
    or not it moves the stored date: the benefit system vouches for the person (before, a date no later than the
    grace date left them 待首次认证 although the benefit system held them certified)."""
    until = row.valid_until
    if row.last_certified_on is not None:
        certified_until = valid_until(row.last_certified_on, terms.rules, b.region, row.birth_date)
        until = max(until, certified_until) if until is not None else certified_until
    if until is not None:
        b.grace_dated = False  # the benefit system vouches for this person: "never shorten" is about the date
    if new and until is not None and until < terms.arrival_valid_until() and b.status == BeneficiaryStatus.ACTIVE:
        # A new record whose row's date has lapsed or lapses within the window (transferred in with their previous
        # bureau's date): overdue on the day of the import, or days after it, and suspended with a payment row,
        # hardly reminded. The window is a floor (before, only a date already lapsed got it: one ending tomorrow
        # was suspended two nights later); named in the report for staff to act on.
        until = terms.arrival_valid_until()
        report.lapsed_on_import.append(b.external_id)
    if until is not None and (b.valid_until is None or until > b.valid_until):
        b.valid_until = until
    certified = row.last_certified_on
    if certified is not None and (b.last_certified_on is None or certified > b.last_certified_on):
        b.last_certified_on = certified
    if b.status == BeneficiaryStatus.ACTIVE:
        _grace(b, row, terms, report, until is None)
    elif b.status == BeneficiaryStatus.SUSPENDED and until is None and awaiting_first(b):
        _postponed_after_suspension(b, row, terms, report)


def _grace(b: Beneficiary, row: RosterRow, terms: ImportTerms, report: ImportReport, undated_row: bool) -> None:
    """The first-import grace date of an active record nothing dates; `undated_row`: the row gives no date."""
    if b.valid_until is None:
        first: dt.date | None = terms.first_valid_until(row)
    elif undated_row and awaiting_first(b):
        # A postponed first campaign (a later cycle start) moves the grace date of people never certified: before,
        # they were reminded and suspended on the old date (the import said `updated`).
        first = terms.named_first_valid_until(row)
    else:
        return
    if first is not None and (b.valid_until is None or first > b.valid_until):
        b.valid_until = first
        b.grace_dated = True  # nothing vouches for it: the person awaits a first certification (cycle.awaiting_first)
        report.grace_dated += 1


def _postponed_after_suspension(b: Beneficiary, row: RosterRow, terms: ImportTerms, report: ImportReport) -> None:
    """A postponed first campaign (a later grace date still ahead) for a record never certified that the cycle run
    already suspended on the old grace date. Its date and its suspension stay: lifting it is a resume, a payment
    decision that only a certification (the person's, or one staff record at the counter or a home visit: it
    resumes at once) makes here, never a roster row (docs/security.md Part R); a later date without the resume
    would only take away the person's `suspended` notice (how payment resumes). Before, an unnamed `updated`:
    the report now names it (`suspension_kept`) so staff tell the person."""
    first = terms.named_first_valid_until(row)
    if first is not None and b.valid_until is not None and first > b.valid_until and first >= terms.today:
        report.suspension_kept.append(b.external_id)
