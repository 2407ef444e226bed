"""Roster import from the synthetic card labels in shared data: CSV and XLSX, row reports, idempotency."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.context import ServiceContext
from service.db.models import Beneficiary
from service.errors import ServiceError
from service.roster import import_roster

HEADER = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]


def card_rows(data_dir: Path, n: int = 6) -> list[list[str]]:
    with (data_dir / "idcard/synthetic_labels.csv").open(encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))[:n]
    return [
        [f"P{i:05d}", r["id_number"], r["name"], "", "enterprise_pension", "", "2026-06-30"]
        for i, r in enumerate(labels)
    ]


def to_csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER, *rows])
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
    report = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows + bad), "test")
    assert (report.created, report.updated, report.unchanged) == (6, 0, 0)
    assert [r["line"] for r in report.rejected] == [8, 9, 10, 11, 12]
    assert "check digit" in report.rejected[0]["errors"][0]
    assert "duplicate" in report.rejected[1]["errors"][0]
    assert all("*" in r["id"] for r in report.rejected)  # rejected rows never echo a full ID number
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "P00000"))
    assert b is not None and b.region == good[:6] and b.birth_date is not None
    assert good not in b.id_enc and b.id_hash == ctx.keyring.id_hash(good)

    again = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test")
    assert (again.created, again.updated, again.unchanged, len(again.rejected)) == (0, 0, 6, 0)
    rows[2][2] = "改名"
    changed = import_roster(db, ctx.keyring, "roster.csv", to_csv(rows), "test")
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 5)
    assert db.scalar(select(func.count()).select_from(Beneficiary)) == 6


def test_xlsx_import(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in card_rows(data_dir, 3):
        ws.append(row)
    ws.append(["", "", "", "", "", "", ""])  # blank rows are skipped, not rejected
    buf = io.BytesIO()
    wb.save(buf)
    report = import_roster(db, ctx.keyring, "roster.xlsx", buf.getvalue(), "test")
    assert (report.created, len(report.rejected)) == (3, 0)


def test_unreadable_roster_is_refused(ctx: ServiceContext, db: Session) -> None:
    with pytest.raises(ServiceError) as e:
        import_roster(db, ctx.keyring, "roster.csv", b"name,foo\n1,2\n", "test")
    assert e.value.status == 422 and "external_id" in e.value.detail
    with pytest.raises(ServiceError) as e:
        import_roster(db, ctx.keyring, "roster.pdf", b"%PDF-1.4", "test")
    assert e.value.status == 415
    with pytest.raises(ServiceError):
        import_roster(db, ctx.keyring, "roster.xlsx", b"PK\x03\x04garbage", "test")
