"""The annual cycle across simulated dates: certified → due soon → overdue → suspended → certified again; a
person newly imported from the roster is dated (last certification, or cycle start + grace) and never suspended
before that date; a row without a date is never suspended."""

from __future__ import annotations

import csv
import datetime as dt
import io

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import (
    CycleRules,
    CycleState,
    SuspensionGuard,
    cycle_state,
    record_certification,
    run_cycle,
    state_of,
    valid_until,
)
from service.certification.models import Beneficiary, CycleEvent
from service.certification.roster import ImportTerms, import_roster
from service.infra.clock import local_today
from tests.service import factories
from tests.service.conftest import ADMIN

RULES = CycleRules(validity_months=12, due_soon_days=30)


def test_twelve_month_validity_handles_month_ends() -> None:
    assert valid_until(dt.date(2025, 3, 15), RULES) == dt.date(2026, 3, 14)
    # 29 Feb + 12 months: the anniversary does not exist, the month's last day is used.
    assert valid_until(dt.date(2024, 2, 29), RULES) == dt.date(2025, 2, 27)
    assert valid_until(dt.date(2025, 1, 1), CycleRules(validity_months=6)) == dt.date(2025, 6, 30)


def test_birthday_month_rule_applies_only_to_its_regions() -> None:
    rules = CycleRules(birthday_month_regions=frozenset({"3701"}))
    born = dt.date(1950, 8, 20)
    # Certified before the birth month: valid to the end of this year's birth month.
    assert valid_until(dt.date(2025, 3, 1), rules, "370102", born) == dt.date(2025, 8, 31)
    # Certified in or after the birth month: carries to next year's.
    assert valid_until(dt.date(2025, 8, 5), rules, "370102", born) == dt.date(2026, 8, 31)
    assert valid_until(dt.date(2025, 11, 5), rules, "370102", born) == dt.date(2026, 8, 31)
    # Another region keeps the 12-month rule.
    assert valid_until(dt.date(2025, 3, 1), rules, "420106", born) == dt.date(2026, 2, 28)


def test_states_over_simulated_dates() -> None:
    until = dt.date(2026, 3, 14)
    assert cycle_state("active", until, dt.date(2025, 6, 1), RULES) is CycleState.CERTIFIED
    # Due soon once fewer than 30 days are left.
    assert cycle_state("active", until, dt.date(2026, 2, 12), RULES) is CycleState.CERTIFIED
    assert cycle_state("active", until, dt.date(2026, 2, 13), RULES) is CycleState.DUE_SOON
    assert cycle_state("active", until, until, RULES) is CycleState.DUE_SOON
    assert cycle_state("active", until, until + dt.timedelta(days=1), RULES) is CycleState.OVERDUE
    # No date at all (a row from before imports dated everyone): not overdue, whatever the day.
    assert cycle_state("active", None, dt.date(2099, 1, 1), RULES) is CycleState.UNDATED
    assert cycle_state("deceased", until, dt.date(2025, 6, 1), RULES) is CycleState.DECEASED


def test_full_cycle_suspends_then_resumes(ctx: ServiceContext, db: Session) -> None:
    b = factories.beneficiary(db, ctx.keyring)
    record_certification(db, b, dt.date(2025, 3, 15), RULES)
    assert b.valid_until == dt.date(2026, 3, 14)

    # The daily run changes nothing while the certification holds, due soon included.
    assert run_cycle(db, dt.date(2026, 3, 1), RULES, cases=()) == []
    assert b.status == "active"
    # The day after expiry: suspended, with an event for the payment system.
    assert run_cycle(db, dt.date(2026, 3, 15), RULES, cases=()) == [b.id]
    assert (b.status, b.suspended_on) == ("suspended", dt.date(2026, 3, 15))
    # Running again the same day is idempotent.
    assert run_cycle(db, dt.date(2026, 3, 15), RULES, cases=()) == []

    until = record_certification(db, b, dt.date(2026, 4, 2), RULES)
    assert (b.status, until, b.suspended_on) == ("active", dt.date(2027, 4, 1), None)
    events = db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == b.id).order_by(CycleEvent.id)).all()
    assert [(e.kind, e.on_date, e.suspended_since) for e in events] == [
        ("suspended", dt.date(2026, 3, 15), None),
        ("resumed", dt.date(2026, 4, 2), dt.date(2026, 3, 15)),
    ]


def test_deceased_are_never_suspended(ctx: ServiceContext, db: Session) -> None:
    b = factories.beneficiary(db, ctx.keyring, status="deceased", valid_until=dt.date(2020, 1, 1))
    assert b.id not in run_cycle(db, dt.date(2026, 1, 1), RULES, cases=())
    assert b.status == "deceased"


def test_early_recertification_never_shortens_validity(ctx: ServiceContext, db: Session) -> None:
    b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2026, 12, 31))
    record_certification(db, b, dt.date(2025, 6, 1), RULES)
    assert b.valid_until == dt.date(2026, 12, 31)


def roster_csv(rows: list[dict[str, str]]) -> bytes:
    header = ["external_id", "id_number", "name", "benefit_types", "valid_until", "last_certified_on", "cycle_start"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header)
    w.writeheader()
    for r in rows:
        w.writerow({"benefit_types": "enterprise_pension", **r})
    return buf.getvalue().encode()


def by_external_id(db: Session, external_id: str) -> Beneficiary:
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == external_id))
    assert b is not None
    return b


def test_a_new_import_is_neither_overdue_nor_suspended_until_its_grace_date(ctx: ServiceContext, db: Session) -> None:
    imported_on = dt.date(2026, 12, 4)
    terms = ImportTerms(imported_on, RULES, grace_days=90)
    n = iter(range(100, 200))
    rows = [
        {"external_id": "NEW", "id_number": factories.id_number(seq=next(n)), "name": "周桂芳"},  # no date at all
        {
            "external_id": "CERT",
            "id_number": factories.id_number(seq=next(n)),
            "name": "吴国华",
            "last_certified_on": "2026-03-10",
        },
        {
            "external_id": "START",
            "id_number": factories.id_number(seq=next(n)),
            "name": "郑秀兰",
            "cycle_start": "2027-01-01",
        },
        # The benefit system says this certification ran out in June (a person transferred in with their previous
        # bureau's date): due soon from the import, named in the report (before: overdue that day, suspended that
        # night, never reminded).
        {
            "external_id": "LAPSED",
            "id_number": factories.id_number(seq=next(n)),
            "name": "冯志强",
            "valid_until": "2026-06-30",
        },
    ]
    report = import_roster(db, ctx.keyring, "roster.csv", roster_csv(rows), "test", terms)
    assert (report.created, report.grace_dated, report.rejected, report.lapsed_on_import) == (4, 2, [], ["LAPSED"])
    new, cert, start, lapsed = (by_external_id(db, r["external_id"]) for r in rows)
    assert new.valid_until == dt.date(2027, 3, 4)  # the import day + 90 days
    assert (cert.valid_until, cert.last_certified_on) == (dt.date(2027, 3, 9), dt.date(2026, 3, 10))
    assert start.valid_until == dt.date(2027, 4, 1)  # its own cycle start + 90 days
    assert lapsed.valid_until == dt.date(2027, 1, 2)  # the import day + due_soon_days - 1
    assert [cycle_state(b.status, b.valid_until, imported_on, RULES) for b in (new, cert, start, lapsed)] == [
        CycleState.CERTIFIED,
        CycleState.CERTIFIED,
        CycleState.CERTIFIED,
        CycleState.DUE_SOON,
    ]

    # The first night suspends nobody; each holds until their date passes.
    guard = SuspensionGuard()
    assert run_cycle(db, imported_on + dt.timedelta(days=1), RULES, guard, cases=()) == []
    assert run_cycle(db, dt.date(2027, 1, 3), RULES, guard, cases=()) == [lapsed.id]
    assert cycle_state(new.status, new.valid_until, dt.date(2027, 2, 3), RULES) is CycleState.DUE_SOON
    assert run_cycle(db, dt.date(2027, 3, 4), RULES, guard, cases=()) == []
    assert run_cycle(db, dt.date(2027, 3, 5), RULES, guard, cases=()) == [new.id]
    assert run_cycle(db, dt.date(2027, 3, 10), RULES, guard, cases=()) == [cert.id]
    assert run_cycle(db, dt.date(2027, 4, 2), RULES, guard, cases=()) == [start.id]
    assert [b.suspended_on for b in (new, cert, start, lapsed)] == [
        dt.date(2027, 3, 5),
        dt.date(2027, 3, 10),
        dt.date(2027, 4, 2),
        dt.date(2027, 1, 3),
    ]


def test_a_benefit_system_date_before_the_grace_date_clears_the_grace_mark(ctx: ServiceContext, db: Session) -> None:
    """Before: the mark was cleared only by a date later than the grace date, so a person the benefit system dated
    80 days ahead (the grace: 90) stayed 待首次认证 although it vouched for them. The stored date never shortens."""
    imported_on = dt.date(2026, 12, 4)
    terms = ImportTerms(imported_on, RULES, grace_days=90)
    rows = [
        {"external_id": "UNTIL", "id_number": factories.id_number(seq=401), "name": "周桂芳"},
        {"external_id": "CERTIFIED", "id_number": factories.id_number(seq=402), "name": "吴国华"},
    ]
    assert import_roster(db, ctx.keyring, "r1.csv", roster_csv(rows), "test", terms).grace_dated == 2
    until, certified = by_external_id(db, "UNTIL"), by_external_id(db, "CERTIFIED")
    assert [state_of(b, imported_on, RULES) for b in (until, certified)] == [CycleState.AWAITING_FIRST] * 2
    rows[0]["valid_until"] = "2027-02-22"  # 80 days ahead, before the grace date 2027-03-04
    rows[1]["last_certified_on"] = "2026-02-20"  # valid until 2027-02-19 by the rules: before it too
    report = import_roster(db, ctx.keyring, "r2.csv", roster_csv(rows), "test", terms)
    assert (report.updated, report.grace_dated) == (2, 0)
    assert (until.valid_until, until.grace_dated) == (dt.date(2027, 3, 4), False)  # the date kept, the mark gone
    assert [state_of(b, imported_on, RULES) for b in (until, certified)] == [CycleState.CERTIFIED] * 2


def test_a_row_without_a_date_is_never_suspended_and_a_reimport_dates_it(ctx: ServiceContext, db: Session) -> None:
    # Rows of an older database: imported before every person got a date.
    old = [factories.beneficiary(db, ctx.keyring, name=f"旧名册{i}", valid_until=None) for i in range(12)]
    far = dt.date(2035, 1, 1)
    assert all(cycle_state(b.status, b.valid_until, far, RULES) is CycleState.UNDATED for b in old)
    assert run_cycle(db, far, RULES, SuspensionGuard(), cases=()) == []
    assert run_cycle(db, far, RULES, SuspensionGuard(), force=True, cases=()) == []
    assert {b.status for b in old} == {"active"}

    # The next import that touches one gives it the grace date (the benefit system vouched for it again).
    b = old[0]
    row = {
        "external_id": b.external_id,
        "id_number": ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number"),
        "name": b.name,
    }
    report = import_roster(
        db,
        ctx.keyring,
        "roster.csv",
        roster_csv([row]),
        "test",
        ImportTerms(dt.date(2026, 12, 4), RULES, grace_days=30),
    )
    assert (report.updated, report.grace_dated) == (1, 1)
    assert b.valid_until == dt.date(2027, 1, 3)
    assert run_cycle(db, dt.date(2027, 1, 3), RULES, cases=()) == []
    assert run_cycle(db, dt.date(2027, 1, 4), RULES, cases=()) == [b.id]


def test_the_api_import_dates_new_people_and_the_cycle_run_leaves_them(client: TestClient, ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)  # the bureau's date, as the import dates new people
    rows = [{"external_id": "API-NEW", "id_number": factories.id_number(seq=321), "name": "陈淑英"}]
    r = client.post("/api/v1/roster", files={"file": ("roster.csv", roster_csv(rows), "text/csv")}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["grace_dated"]) == (1, 1)
    grace = ctx.settings.cycle.new_import_grace_days
    view = client.get("/api/v1/beneficiaries/API-NEW").json()
    assert view["valid_until"] == (today + dt.timedelta(days=grace)).isoformat()
    assert view["cycle_state"] == "awaiting_first"  # a grace date, no certification (cycle.awaiting_first)
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    run = client.post("/api/v1/cycle/run", params={"today": tomorrow}, headers=ADMIN)
    assert run.status_code == 200, run.text
    assert client.get("/api/v1/beneficiaries/API-NEW").json()["status"] == "active"
    assert client.get("/api/v1/lists/overdue", params={"today": tomorrow}, headers=ADMIN).json()["count"] == 0
