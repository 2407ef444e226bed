"""Dashboard figures against a roster in known states and real review decisions; CSV and SVG exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from pipelines.decision.runner import Certifier
from service.certification.context import ServiceContext
from service.certification.registry import status_list
from service.features.console import dashboard
from service.features.proxy import operators
from service.features.proxy.sessions import open_verification
from service.infra.clock import local_today, now_utc
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import Sample, login, make_case


def test_counts_by_region_backlog_and_exports(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    strict_certifier: Certifier,
    sample: Sample,
    data_dir: Path,
) -> None:
    today = dt.date.today()
    with ctx.db() as db:
        birth = dt.date(1948, 5, 1)
        for days in (200, 300):  # certified
            factories.beneficiary(
                db,
                ctx.keyring,
                id_number=factories.id_number("370102", birth=birth),
                valid_until=today + dt.timedelta(days=days),
            )
        factories.beneficiary(
            db,
            ctx.keyring,
            id_number=factories.id_number("370102", birth=birth),
            valid_until=today + dt.timedelta(days=5),
        )
        factories.beneficiary(
            db,
            ctx.keyring,
            id_number=factories.id_number("370203", birth=birth),
            valid_until=today - dt.timedelta(days=5),
        )
        factories.beneficiary(db, ctx.keyring, id_number=factories.id_number("370203", birth=birth), status="deceased")
        # A relative's verification (proxy certification) adds no beneficiary: never counted.
        op = operators.login(db, ctx, "wechat", "openid-relative", "test").operator
        open_verification(db, ctx, op, factories.id_number("370102", birth=birth), "李建国", consent=False)
    make_case(ctx, strict_certifier, sample)  # one real borderline case waits (region 6101, suspended)

    login(app_client, "rev1")
    page = app_client.get("/console/dashboard")
    assert page.status_code == 200 and 'id="backlog">1<' in page.text and "<svg" in page.text
    assert "山东省济南市" in page.text and "陕西省西安市" in page.text  # region names, not bare codes
    r = app_client.get("/console/dashboard.csv", params={"level": 4})
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = table[0]
    rows = {row[0]: dict(zip(header, row, strict=False)) for row in table[1:] if row and row[0] not in ("",)}
    assert rows["3701"]["region_name"] == "山东省济南市" and rows["6101"]["region_name"] == "陕西省西安市"
    assert rows["3701"]["certified"] == "2" and rows["3701"]["due_soon"] == "1" and rows["3702"]["overdue"] == "1"
    assert rows["3702"]["deceased"] == "1" and rows["6101"]["suspended"] == "1" and rows["total"]["total"] == "6"
    assert rows["review_backlog"]["region_name"] == "1"  # second column of the key/value block
    assert rows["machine_decisions"]["region_name"] == "1" and rows["auto_accept_rate"]["region_name"] == "0.0000"

    level2 = list(csv.reader(io.StringIO(app_client.get("/console/dashboard.csv", params={"level": 2}).text)))
    assert {row[0] for row in level2[1:4]} == {"37", "61", "total"}

    svg = app_client.get("/console/dashboard/regions.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "山东省济南市 已认证 2" in titles and "陕西省西安市 暂停发放 1" in titles  # names, not codes
    labels = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "山东省济南市" in labels and not any(label.isdigit() and len(label) == 4 for label in labels)
    assert app_client.get("/console/dashboard/nothing.svg").status_code == 404


def test_a_person_the_roster_stopped_is_counted_in_their_own_column(ctx: ServiceContext, db: Session) -> None:
    """Before: `_by_region` took the state from the status and the date alone, so a person held active whom the
    roster says the benefit system stopped paying (transferred out: cycle.stopped_by_roster) was counted 逾期 or
    即将到期 on the page and in dashboard.csv, while the overdue and due-soon lists, the reminders and the run
    leave them out. Now they count under 名册已停发 (`stopped_by_roster`), and the total still adds up."""
    today = local_today(ctx.settings)
    for days in (-3, 5):  # lapsed three days ago; due in five days
        factories.beneficiary(
            db,
            ctx.keyring,
            id_number=factories.id_number(region="420106"),
            region="420106",
            valid_until=today + dt.timedelta(days=days),
            roster_status="suspended",
        )
    cases = ctx.hooks.case_sources()
    assert status_list(db, "overdue", today, ctx.rules, cases=cases) == []
    assert status_list(db, "due_soon", today, ctx.rules, cases=cases) == []
    st = dashboard.compute(db, ctx.rules, now_utc(), 4, today=today)
    row = st.by_region["4201"]
    assert (row["overdue"], row["due_soon"], row["stopped_by_roster"], sum(row.values())) == (0, 0, 2, 2)
    table = list(csv.reader(io.StringIO(dashboard.to_csv(st))))
    rows = {r[0]: dict(zip(table[0], r, strict=False)) for r in table[1:] if r}
    assert (rows["4201"]["overdue"], rows["4201"]["due_soon"], rows["4201"]["stopped_by_roster"]) == ("0", "0", "2")
    assert rows["total"]["stopped_by_roster"] == "2" and rows["total"]["total"] == "2"


def test_a_person_the_roster_stopped_reads_the_same_on_the_person_page_and_the_api(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The same two people as above: the dashboard counts them 名册已停发. Before, the person page's 认证周期 still
    read 已逾期 / 即将到期 and the API's `cycle_state` `overdue` / `due_soon` (cycle.state_of went by the date
    alone), though no list, reminder or run chases them. Now every view reads the state from the one rule."""
    today = local_today(ctx.settings)
    people = []
    with ctx.db() as db:
        for days in (-3, 5):
            b = factories.beneficiary(db, ctx.keyring, valid_until=today + dt.timedelta(days=days))
            b.roster_status = "suspended"
            people.append((b.id, b.external_id))
    login(app_client, "sup1")
    for bid, ext in people:
        page = app_client.get(f"/console/beneficiaries/{bid}").text
        assert '认证周期：<b id="cycle">名册已停发</b>' in page
        view = app_client.get(f"/api/v1/beneficiaries/{ext}", headers=ADMIN).json()
        assert view["cycle_state"] == "stopped_by_roster", view
