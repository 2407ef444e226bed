"""The dashboard and the beneficiary page count with the cycle's own rule (service.certification.cycle.cycle_state):
a person
imported today is certified, not 逾期; a row without any date is shown as 无有效期, never as overdue."""

from __future__ import annotations

import csv
import datetime as dt
import io

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.certification.roster import import_roster, import_terms
from tests.service import factories
from tests.service.features.console.conftest import login


def test_dashboard_and_beneficiary_page_follow_the_cycle_state(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    lapsed = (dt.date.today() - dt.timedelta(days=20)).isoformat()
    numbers = [factories.id_number(region="420106") for _ in range(2)]
    roster = (
        "external_id,id_number,name,benefit_types,valid_until\n"
        f"WH-NEW,{numbers[0]},刘淑贞,enterprise_pension,\n"  # new, no date: the grace
        f"WH-LAPSED,{numbers[1]},黄德胜,enterprise_pension,{lapsed}\n"  # the benefit system's lapsed date
    ).encode()
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, "roster.csv", roster, "test", import_terms(ctx))
        assert (report.created, report.grace_dated) == (2, 1)
        old = factories.beneficiary(db, ctx.keyring, id_number=factories.id_number(region="420106"), name="旧记录")
        ids = {
            ext: db.scalar(select(Beneficiary.id).where(Beneficiary.external_id == ext))
            for ext in ("WH-NEW", "WH-LAPSED")
        }
        ids["OLD"] = old.id

    login(app_client, "rev1")
    table = list(csv.reader(io.StringIO(app_client.get("/console/dashboard.csv", params={"level": 4}).text)))
    header = table[0]
    row = next(dict(zip(header, r, strict=False)) for r in table[1:] if r and r[0] == "4201")
    assert (row["certified"], row["overdue"], row["undated"], row["total"]) == ("1", "1", "1", "3")

    def cycle_label(bid: int | None) -> str:
        page: str = app_client.get(f"/console/beneficiaries/{bid}").text
        return page.split('id="cycle">', 1)[1].split("<", 1)[0]

    assert cycle_label(ids["WH-NEW"]) == "已认证"
    assert cycle_label(ids["WH-LAPSED"]) == "已逾期"
    assert cycle_label(ids["OLD"]) == "无有效期"
