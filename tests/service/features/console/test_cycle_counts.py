"""The dashboard and the beneficiary page count with the cycle's own rule (service.certification.cycle.cycle_state):
a person imported today awaits a first certification (待首次认证), neither 已认证 nor 逾期; a row without any date is
shown as 无有效期, never as overdue."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, SessionDecision
from service.certification.roster import import_roster, import_terms
from service.infra.clock import local_midnight, local_today
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import login


def _dashboard(client: TestClient, level: int = 4) -> dict[str, dict[str, str]]:
    table = list(csv.reader(io.StringIO(client.get("/console/dashboard.csv", params={"level": level}).text)))
    return {r[0]: dict(zip(table[0], r, strict=False)) for r in table[1:] if r}


def _cycle_label(client: TestClient, bid: int | None) -> str:
    page: str = client.get(f"/console/beneficiaries/{bid}").text
    return page.split('id="cycle">', 1)[1].split("<", 1)[0]


def test_dashboard_and_beneficiary_page_follow_the_cycle_state(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    lapsed = (local_today(ctx.settings) - dt.timedelta(days=20)).isoformat()
    numbers = [factories.id_number(region="420106") for _ in range(2)]
    roster = (
        "external_id,id_number,name,benefit_types,valid_until\n"
        f"WH-NEW,{numbers[0]},刘淑贞,enterprise_pension,\n"  # new, no date: the grace
        # The benefit system's date, lapsed (transferred in): due soon from the import, not overdue on its day.
        f"WH-LAPSED,{numbers[1]},黄德胜,enterprise_pension,{lapsed}\n"
    ).encode()
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, "roster.csv", roster, "test", import_terms(ctx))
        assert (report.created, report.grace_dated, report.lapsed_on_import) == (2, 1, ["WH-LAPSED"])
        old = factories.beneficiary(db, ctx.keyring, id_number=factories.id_number(region="420106"), name="旧记录")
        ids = {
            ext: db.scalar(select(Beneficiary.id).where(Beneficiary.external_id == ext))
            for ext in ("WH-NEW", "WH-LAPSED")
        }
        ids["OLD"] = old.id

    login(app_client, "rev1")
    row = _dashboard(app_client)["4201"]
    counts = ("certified", "awaiting_first", "due_soon", "overdue", "undated", "total")
    assert tuple(row[c] for c in counts) == ("0", "1", "1", "0", "1", "3")
    assert _cycle_label(app_client, ids["WH-NEW"]) == "待首次认证"
    assert _cycle_label(app_client, ids["WH-LAPSED"]) == "即将到期"
    assert _cycle_label(app_client, ids["OLD"]) == "无有效期"


def test_a_roster_loaded_today_is_not_counted_certified_until_people_certify(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: people imported without dates got the grace date (90 days), more than due_soon_days ahead, so the
    dashboard, its CSV, the person page and the API said 已认证 / certified for a whole roster nobody had certified
    (a rate of 100 % sent up on the day of loading). Now they await their first certification, and one
    certification moves exactly one person to 已认证. A date the benefit system gives (its valid_until, no
    certification here) stays certified: it vouched for the person."""
    today = local_today(ctx.settings)
    vouched = (today + dt.timedelta(days=200)).isoformat()
    rows = ["external_id,id_number,name,benefit_types,valid_until"]
    rows += [f"E{i:03d},{factories.id_number('420106')},王{i},enterprise_pension," for i in range(3)]
    rows.append(f"V001,{factories.id_number('420106')},赵六,enterprise_pension,{vouched}")
    r = app_client.post(
        "/api/v1/roster", files={"file": ("r.csv", "\n".join(rows).encode(), "text/csv")}, headers=ADMIN
    )
    assert (r.status_code, r.json()["created"], r.json()["grace_dated"]) == (200, 4, 3)
    csrf = login(app_client, "sup1")
    total = _dashboard(app_client)["total"]
    assert (total["certified"], total["awaiting_first"], total["due_soon"], total["total"]) == ("1", "3", "0", "4")
    assert app_client.get("/api/v1/beneficiaries/E000", headers=ADMIN).json()["cycle_state"] == "awaiting_first"
    assert app_client.get("/api/v1/beneficiaries/V001", headers=ADMIN).json()["cycle_state"] == "certified"
    with ctx.db() as db:
        bid = db.scalar(select(Beneficiary.id).where(Beneficiary.external_id == "E000"))
    counter = {"csrf": csrf, "kind": "counter", "on_date": today.isoformat(), "evidence": "本人持证到柜台"}
    assert app_client.post(f"/console/beneficiaries/{bid}/certify", data=counter).status_code == 200
    total = _dashboard(app_client)["total"]
    assert (total["certified"], total["awaiting_first"]) == ("2", "2")
    assert _cycle_label(app_client, bid) == "已认证"
    assert app_client.get("/api/v1/beneficiaries/E000", headers=ADMIN).json()["cycle_state"] == "certified"


def _list(client: TestClient, which: str, day: dt.date) -> list[tuple[str, str]]:
    body = client.get(f"/api/v1/lists/{which}", params={"today": day.isoformat()}, headers=ADMIN).json()
    return [(i["external_id"], i["cycle_state"]) for i in body["items"]]


def _cycle_on_page(client: TestClient, bid: int) -> str:
    """The 认证周期 the console's person page shows."""
    found = re.search(r'<b id="cycle">([^<]*)</b>', client.get(f"/console/beneficiaries/{bid}").text)
    assert found is not None
    return found.group(1)


def test_a_certification_made_in_time_and_waiting_for_staff_is_not_listed_overdue(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a pensioner who recorded their video at 23:30 Beijing time on their last valid day, the case sent to
    staff review, was left unsuspended by the daily run (cycle.being_decided) but listed in lists/overdue and
    counted under the dashboard's 逾期 like someone who never certified. Now they are `awaiting_decision`
    (认证待审核): their own list and column, the same rule as the run's; after a staff rejection they are overdue
    again and the next run suspends them."""
    today = local_today(ctx.settings)
    last = today - dt.timedelta(days=2)
    at = local_midnight(ctx.settings, last) + dt.timedelta(hours=23, minutes=30)  # the last valid day, in Beijing
    with ctx.db() as db:
        waiting = factories.beneficiary(db, ctx.keyring, external_id="INTIME", valid_until=last)
        factories.beneficiary(db, ctx.keyring, external_id="LAPSED", valid_until=last)
        case = factories.review_session(
            waiting.id, queued_at=at, created_at=at, decided_at=at + dt.timedelta(minutes=2)
        )
        db.add(case)
        db.flush()
        case_id, waiting_id = case.id, waiting.id
    assert _list(app_client, "overdue", today) == [("LAPSED", "overdue")]
    assert _list(app_client, "awaiting_decision", today) == [("INTIME", "awaiting_decision")]
    assert app_client.get("/api/v1/beneficiaries/INTIME", headers=ADMIN).json()["cycle_state"] == "awaiting_decision"
    login(app_client, "rev1")
    total = _dashboard(app_client)["total"]
    assert (total["overdue"], total["awaiting_decision"], total["total"]) == ("1", "1", "2")
    # The person's page says the same (before: 已逾期, from state_of, which cannot see the session).
    assert _cycle_on_page(app_client, waiting_id) == "认证待审核"
    run = app_client.post("/api/v1/cycle/run", params={"today": today.isoformat()}, headers=ADMIN)
    assert run.status_code == 200 and run.json()["suspended"] == 1  # LAPSED: the lists and the run agree
    factories.update(ctx, CertSession, case_id, decision=SessionDecision.REJECT)  # staff reject the case
    assert _list(app_client, "overdue", today) == [("INTIME", "overdue")]
    assert _list(app_client, "awaiting_decision", today) == []
    assert _cycle_on_page(app_client, waiting_id) == "已逾期"
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    run = app_client.post("/api/v1/cycle/run", params={"today": tomorrow}, headers=ADMIN)
    assert run.status_code == 200 and run.json()["suspended"] == 1
