"""Registry answers name the region with its city (service/certification/regions.py), next to the roster's code:
a lookup,
a status list and its CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from tests.service import factories
from tests.service.conftest import ADMIN


def test_lookup_lists_and_export_carry_the_region_name(client: TestClient, ctx: ServiceContext) -> None:
    with ctx.db() as db:
        wuchang = factories.beneficiary(db, ctx.keyring, region="420106", valid_until=dt.date(2025, 11, 30))
        unknown = factories.beneficiary(db, ctx.keyring, region="990000", valid_until=dt.date(2025, 11, 30))
        ids = wuchang.external_id, unknown.external_id
        db.commit()

    b = client.get(f"/api/v1/beneficiaries/{ids[0]}").json()
    assert b["region"] == "420106" and b["region_name"] == "湖北省武汉市武昌区"
    assert client.get(f"/api/v1/beneficiaries/{ids[1]}").json()["region_name"] is None  # not a division code

    overdue = client.get("/api/v1/lists/overdue", params={"today": "2026-01-15"}, headers=ADMIN).json()["items"]
    names = {i["external_id"]: i["region_name"] for i in overdue}
    assert names[ids[0]] == "湖北省武汉市武昌区" and names[ids[1]] is None
    text = client.get("/api/v1/lists/overdue", params={"today": "2026-01-15", "format": "csv"}, headers=ADMIN).text
    rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows[ids[0]]["region"] == "420106" and rows[ids[0]]["region_name"] == "湖北省武汉市武昌区"
    assert rows[ids[1]]["region_name"] == ""
