"""Roster import from the synthetic card labels in shared data: CSV and XLSX, row reports, idempotency."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs (as in service/certification/roster.py)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.adapters.http.errors import http_status
from service.certification.context import ServiceContext
from service.certification.cycle import CycleRules, run_cycle
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, Beneficiary, Certification
from service.certification.roster import ImportTerms, import_roster
from service.infra.security import mask_id
from tests.service import factories

TERMS = ImportTerms(dt.date(2026, 5, 1), CycleRules(), grace_days=90)
HEADER = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]


def card_rows(data_dir: Path, n: int = 6) -> list[list[str]]:
    with (data_dir / "idcard/synthetic_labels.csv").open(encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))[:n]
    return [
        [f"P{i:05d}", r["id_number"], r["name"], "", "enterprise_pension", "", "2026-06-30"]
        for i, r in enumerate(labels)
    ]


def to_csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    return ("\ufeff" + buf.getvalue()).encode()


def test_csv_import_reports_bad_rows_and_is_idempotent(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    rows = card_rows(data_dir)
    good = rows[0][1]
    bad = [
        ["X1", good[:-1] + ("0" if good[-1] != "0" else "1"), "错号", "", "enterprise_pension", "", ""],
        ["X2", rows[1][1], "重复号码", "", "resident_pension", "", ""],  # same person as row P00001
        ["X3", "370102195003140017", "", "", "enterprise_pension", "", ""],  # no name
        ["X4", "370102195003140017", "李四", "", "lottery", "", ""],  # unknown benefit
        ["X5", "370102195003140017", "李四", "", "survivor_pension", "", "2026-13-01"],
    ]
    report = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows + bad), "test", TERMS)
    assert (report.created, report.updated, report.unchanged) == (6, 0, 0)
    assert [r["line"] for r in report.rejected] == [8, 9, 10, 11, 12]
    assert "check digit" in report.rejected[0]["errors"][0]
    assert "duplicate" in report.rejected[1]["errors"][0]
    assert all("*" in r["id"] for r in report.rejected)  # rejected rows never echo a full ID number
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "P00000"))
    assert b is not None and b.region == good[:6] and b.birth_date is not None
    assert good not in b.id_enc and b.id_hash == ctx.keyring.id_hash(good)

    again = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    assert (again.created, again.updated, again.unchanged, len(again.rejected)) == (0, 0, 6, 0)
    rows[2][2] = "改名"
    changed = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 5)
    assert db.scalar(select(func.count()).select_from(Beneficiary)) == 6


def households(db: Session, rows: list[list[str]]) -> list[str | None]:
    by_ext = {b.external_id: b.household for b in db.scalars(select(Beneficiary))}
    return [by_ext[r[0]] for r in rows]


def test_household_column_is_optional_stored_and_idempotent(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    rows = card_rows(data_dir, 3)
    old = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)  # a file from before the column
    assert old.created == 3 and households(db, rows) == [None, None, None]
    header = [*HEADER, "household"]
    with_hh = [[*r, hh] for r, hh in zip(rows, ["H-0001", "H-0001", ""], strict=True)]
    added = import_roster(db, ctx.keyring, "roster.csv", to_csv(with_hh, header), "test", TERMS)
    assert (added.updated, added.unchanged, added.rejected) == (2, 1, [])
    assert households(db, rows) == ["H-0001", "H-0001", None]
    # Re-importing it, or a file without the column, changes nothing: the stored households stay.
    for data in (to_csv(with_hh, header), to_csv(rows)):
        again = import_roster(db, ctx.keyring, "roster.csv", data, "test", TERMS)
        assert (again.updated, again.unchanged) == (0, 3)
    assert households(db, rows) == ["H-0001", "H-0001", None]
    # Moving one member to another household and clearing the other's are updates.
    with_hh[0][-1], with_hh[1][-1] = "H-0002", ""
    moved = import_roster(db, ctx.keyring, "roster.csv", to_csv(with_hh, header), "test", TERMS)
    assert (moved.updated, moved.unchanged) == (2, 1)
    assert households(db, rows) == ["H-0002", None, None]
    bad = [[*rows[0], "=HYPERLINK(1)"], [*rows[1], "H" * 65]]
    refused = import_roster(db, ctx.keyring, "roster.csv", to_csv(bad, header), "test", TERMS)
    assert [r["line"] for r in refused.rejected] == [2, 3]
    assert all("household" in r["errors"][0] for r in refused.rejected)
    assert households(db, rows) == ["H-0002", None, None]


def test_xlsx_import(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in card_rows(data_dir, 3):
        ws.append(row)
    ws.append(["", "", "", "", "", "", ""])  # blank rows are skipped, not rejected
    buf = io.BytesIO()
    wb.save(buf)
    report = import_roster(db, ctx.keyring, "roster.xlsx", buf.getvalue(), "test", TERMS)
    assert (report.created, len(report.rejected)) == (3, 0)


def test_unreadable_roster_is_refused(ctx: ServiceContext, db: Session) -> None:
    with pytest.raises(ServiceError) as e:
        import_roster(db, ctx.keyring, "roster.csv", b"name,foo\n1,2\n", "test", TERMS)
    assert http_status(e.value) == 422 and "external_id" in e.value.detail
    with pytest.raises(ServiceError) as e:
        import_roster(db, ctx.keyring, "roster.pdf", b"%PDF-1.4", "test", TERMS)
    assert http_status(e.value) == 415
    with pytest.raises(ServiceError):
        import_roster(db, ctx.keyring, "roster.xlsx", b"PK\x03\x04garbage", "test", TERMS)


def test_roster_dates_last_certification_and_cycle_start(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    rows = card_rows(data_dir, 5)
    header = [*HEADER, "last_certified_on", "cycle_start"]
    dated = [
        [*rows[0][:6], "", "2025-11-20", ""],  # last certification: valid 12 months from it
        [*rows[1][:6], "", "", "2026-07-01"],  # own cycle start + the grace
        [*rows[2][:6], "", "", ""],  # nothing: the import's cycle start (its date) + the grace
        [*rows[3][:6], "", "2026-05-02", ""],  # after the import date: refused
        [*rows[4][:6], "", "2025-02-30", "soon"],  # not dates: refused
    ]
    report = import_roster(db, ctx.keyring, "roster.csv", to_csv(dated, header), "test", TERMS)
    assert (report.created, report.grace_dated) == (3, 2)
    assert [r["line"] for r in report.rejected] == [5, 6]
    assert report.rejected[0]["errors"] == ["last_certified_on is after the import date (2026-05-02 > 2026-05-01)"]
    assert report.rejected[1]["errors"] == ["last_certified_on must be YYYY-MM-DD", "cycle_start must be YYYY-MM-DD"]
    stored = {b.external_id: b for b in db.scalars(select(Beneficiary))}
    first, second, third = (stored[r[0]] for r in dated[:3])
    assert (first.valid_until, first.last_certified_on) == (dt.date(2026, 11, 19), dt.date(2025, 11, 20))
    assert (second.valid_until, second.last_certified_on) == (dt.date(2026, 9, 29), None)
    assert third.valid_until == dt.date(2026, 7, 30)
    # The same file again changes nothing; an older last certification never shortens a stored validity.
    again = import_roster(db, ctx.keyring, "roster.csv", to_csv(dated[:3], header), "test", TERMS)
    assert (again.unchanged, again.grace_dated) == (3, 0)
    dated[0][6] = "2025-01-05"
    older = import_roster(db, ctx.keyring, "roster.csv", to_csv(dated[:1], header), "test", TERMS)
    assert older.updated == 1 and first.valid_until == dt.date(2026, 11, 19)
    assert first.last_certified_on == dt.date(2025, 11, 20)


def test_a_record_given_another_id_number_drops_its_face_and_is_audited(
    ctx: ServiceContext, db: Session, data_dir: Path
) -> None:
    """Re-importing an external id with another number (a corrected typo, or the record handed to someone else,
    whose face would then certify it) clears the enrolled face and audits the change with both masked numbers."""
    rows = card_rows(data_dir, 3)
    import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == rows[0][0]))
    assert b is not None
    b.template, b.template_model, b.template_consent = b"sealed-embedding", "model@1", True
    db.flush()
    old = rows[0][1]
    other = "11010519491231002X"  # another person's (valid) number for the same record
    rows[0][1] = other
    report = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    assert (report.updated, report.unchanged) == (1, 2)
    assert report.identity_changed == [
        {
            "external_id": rows[0][0],
            "from": mask_id(old),
            "to": mask_id(other),
            "template_cleared": True,
            "name_changed": False,
            "valid_until_before": "2026-06-30",
            "last_certified_on_before": None,
            "identity_since_before": None,
            "grace_dated_before": False,  # the row's own date (a same-person finding gives it back as such)
        }
    ]
    db.refresh(b)
    assert b.id_hash == ctx.keyring.id_hash(other)
    assert b.template is None and b.template_model is None and not b.template_consent
    (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "roster.identity_changed")).all()
    assert entry.target == rows[0][0] and entry.detail["from"] == mask_id(old) and old not in str(entry.detail)
    # A name change alone keeps the face.
    b.template = b"sealed-embedding"
    rows[1][2] = "改名"
    assert import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS).identity_changed == []


def test_a_record_given_another_id_number_is_dated_as_a_new_persons(
    ctx: ServiceContext, db: Session, data_dir: Path
) -> None:
    """The old person's certification is not the new person's: the stored dates (later than anything the row
    says, which a row could never shorten before) go, a suspension for the old person's lapse is lifted, and the
    record is dated like a newly imported person's: the row's own dates, else the first-import grace date."""
    rows = card_rows(data_dir, 3)
    import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    stored = {b.external_id: b for b in db.scalars(select(Beneficiary))}
    dated, undated, kept = (stored[r[0]] for r in rows)
    for b in (dated, undated, kept):  # certified here after the roster's date: the later date is the one kept
        b.valid_until, b.last_certified_on = dt.date(2027, 3, 1), dt.date(2026, 3, 2)
    undated.status, undated.suspended_on = "suspended", dt.date(2026, 4, 1)  # as if the old person had lapsed
    db.flush()
    rows[0][1] = "11010519491231002X"  # the row gives its own valid_until (2026-06-30)
    rows[1][1], rows[1][6] = "110105194912310003", ""  # no date: the grace date
    report = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    assert len(report.identity_changed) == 2 and report.grace_dated == 1
    assert (dated.valid_until, dated.last_certified_on, dated.status) == (dt.date(2026, 6, 30), None, "active")
    assert (undated.valid_until, undated.last_certified_on) == (TERMS.today + dt.timedelta(days=90), None)
    assert undated.status == "active" and undated.suspended_on is None
    # The record whose number did not change keeps its certification.
    assert (kept.valid_until, kept.last_certified_on) == (dt.date(2027, 3, 1), dt.date(2026, 3, 2))


def _certified(db: Session, beneficiary_id: int, on: dt.date, until: dt.date) -> None:
    """A certification of the record stored as the service stores one (with its session)."""
    s = factories.session_row(beneficiary_id)
    db.add(s)
    db.flush()
    db.add(Certification(beneficiary_id=beneficiary_id, session_id=s.id, certified_on=on, valid_until=until, code=s.id))
    db.flush()


def test_the_previous_persons_certification_keeps_nobody_s_benefit_running(
    ctx: ServiceContext, db: Session, data_dir: Path
) -> None:
    """The record's previous person certified here (valid to 2027-03-01); the roster then gave the record another
    number. The new person got the grace date, and the cycle run after it suspended them only if they had not
    certified: it counted the previous person's certification as theirs, so the new person was paid until
    2027 without ever proving they are alive."""
    rows = card_rows(data_dir, 2)
    import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    changed, kept = (db.scalar(select(Beneficiary).where(Beneficiary.external_id == r[0])) for r in rows)
    assert changed is not None and kept is not None
    for b in (changed, kept):
        _certified(db, b.id, dt.date(2026, 3, 2), dt.date(2027, 3, 1))
        b.valid_until, b.last_certified_on = dt.date(2027, 3, 1), dt.date(2026, 3, 2)
    db.flush()
    rows[0][1], rows[0][6] = "110105194912310003", ""  # another number, no date: the grace date
    import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test", TERMS)
    assert changed.identity_since is not None and kept.identity_since is None
    after_grace = TERMS.today + dt.timedelta(days=91)
    assert changed.valid_until is not None and changed.valid_until < after_grace
    assert run_cycle(db, after_grace, TERMS.rules, cases=()) == [changed.id]
    assert changed.status == "suspended" and kept.status == "active"
    # The new person certifies: that certification is theirs and counts.
    _certified(db, changed.id, after_grace, dt.date(2027, 8, 31))
    changed.status, changed.suspended_on, changed.valid_until = "active", None, None  # as if the row lagged
    db.flush()
    assert run_cycle(db, after_grace + dt.timedelta(days=1), TERMS.rules, cases=()) == []
