"""Registry endpoints over real HTTP (TestClient): roster upload, lookups, status lists, CSV exports, cycle."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry
from service.infra import clock
from tests.service.conftest import ADMIN
from tests.service.test_roster import card_rows, to_csv


def upload_roster(client: TestClient, data: bytes, name: str = "roster.csv") -> dict[str, object]:
    r = client.post("/api/v1/roster", files={"file": (name, data, "text/csv")}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_api_key_required(client: TestClient) -> None:
    r = client.get("/api/v1/lists/overdue", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    assert r.json()["error"]["message"]  # a Chinese message for every error


def test_roster_lookup_lists_and_exports(client: TestClient, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = card_rows(data_dir, 4)
    rows[0][6] = "2026-01-10"  # certified until 10 Jan
    rows[1][6] = "2026-02-20"
    rows[2][6] = "2025-11-30"  # lapsed in November 2025 (an import without a date is never overdue: test_cycle.py)
    rows[3][5] = "deceased"
    # Imported on 1 December 2025 (the days below are simulated after it): P00002, lapsed before the import, is due
    # soon from it until 30 December (ImportTerms.arrival_valid_until: tests/service/test_roster_moves.py).
    with monkeypatch.context() as held:
        held.setattr(clock, "now_utc", lambda: dt.datetime(2025, 12, 1, 2, tzinfo=dt.UTC))
        report = upload_roster(client, to_csv(rows))
        assert report["created"] == 4 and report["rejected"] == 0 and report["lapsed_on_import"] == ["P00002"]
        assert upload_roster(client, to_csv(rows))["unchanged"] == 4

    b = client.get("/api/v1/beneficiaries/P00000", params={"today": "2025-12-20"}).json()
    assert b["cycle_state"] == "due_soon" and b["id_masked"].count("*") == 10
    assert rows[0][1] not in str(b)  # the full number never leaves the service
    by_number = client.get("/api/v1/beneficiaries", params={"id_number": rows[1][1]})
    assert by_number.json()["external_id"] == "P00001"
    assert client.get("/api/v1/beneficiaries/NOPE").status_code == 404

    due = client.get("/api/v1/lists/due_soon", params={"today": "2025-12-20"}, headers=ADMIN).json()
    assert [i["external_id"] for i in due["items"]] == ["P00002", "P00000"]  # P00002: its window after the import
    overdue = client.get("/api/v1/lists/overdue", params={"today": "2026-01-15"}, headers=ADMIN).json()
    assert [i["external_id"] for i in overdue["items"]] == ["P00002", "P00000"]  # longest lapsed first

    run = client.post("/api/v1/cycle/run", params={"today": "2026-01-15"}, headers=ADMIN).json()
    assert run["suspended"] == 2
    csv_text = client.get("/api/v1/lists/suspended", params={"format": "csv"}, headers=ADMIN).text
    suspended = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["external_id"] for r in suspended} == {"P00000", "P00002"}
    assert all(r["status"] == "suspended" for r in suspended)
    export = client.get(
        "/api/v1/exports/suspensions.csv", params={"since": dt.date(2026, 1, 1).isoformat()}, headers=ADMIN
    )
    events = list(csv.DictReader(io.StringIO(export.text)))
    assert [(e["external_id"], e["kind"], e["on_date"]) for e in events] == [
        ("P00000", "suspended", "2026-01-15"),
        ("P00002", "suspended", "2026-01-15"),
    ]
    assert client.get("/api/v1/lists/nonsense", headers=ADMIN).status_code == 404


def test_roster_bad_file_is_a_clear_4xx(client: TestClient) -> None:
    r = client.post("/api/v1/roster", files={"file": ("roster.csv", b"a,b\n1,2\n", "text/csv")}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "ROSTER_FORMAT"
    r = client.post("/api/v1/roster", files={"file": ("roster.pdf", b"%PDF", "application/pdf")}, headers=ADMIN)
    assert r.status_code == 415


def test_whole_lists_are_the_operators_and_every_read_is_audited(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    """A channel key (a bank's, the WeChat back end's: the client's default key here) may look one person up,
    not pull the lists of everyone overdue or the payment exports; each read names its caller in the audit."""
    rows = card_rows(data_dir, 2)
    upload_roster(client, to_csv(rows))
    for path in ("/api/v1/lists/overdue", "/api/v1/lists/due_soon?format=csv", "/api/v1/exports/suspensions.csv"):
        r = client.get(path)
        assert r.status_code == 403 and r.json()["error"]["code"] == "ADMIN_KEY_REQUIRED", path
    assert client.get("/api/v1/beneficiaries", params={"id_number": rows[1][1]}).status_code == 200
    assert client.get("/api/v1/lists/overdue", headers=ADMIN).status_code == 200
    with ctx.db() as db:
        reads = [
            (e.action, e.target, e.detail)
            for e in db.scalars(select(AuditEntry).where(AuditEntry.action.in_(["beneficiary.read", "list.read"])))
        ]
    assert ("beneficiary.read", rows[1][0], {"by": "id_number"}) in reads
    listed = client.get("/api/v1/lists/overdue", headers=ADMIN).json()
    shown = [item["external_id"] for item in listed["items"]]  # whom the list showed, named (docs/security.md AC)
    assert ("list.read", "overdue", {"people": listed["count"], "format": "json", "shown": shown}) in reads
    assert rows[1][1] not in str(reads)  # the number looked up is never written
