"""Edges of the annual cycle and the roster import found by an outside review (docs/security.md Part R): cycle
starts and dates far from the import, a row's lagging valid_until, a certification entered late, the
birthday-month reminder window, a pensioner whose case waits for staff across the last valid day (in the
bureau's calendar), and a refused row whose external-id cell holds an ID number."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import CycleRules, CycleState, cycle_state, record_certification, run_cycle
from service.certification.models import (
    Beneficiary,
    CertSession,
    CycleEvent,
    RosterImport,
    SessionDecision,
    SessionState,
)
from service.certification.roster import ImportTerms, import_roster
from service.features.console.labels import roster_problem_zh
from tests.service import factories

RULES = CycleRules(validity_months=12, due_soon_days=30)
IMPORTED_ON = dt.date(2026, 12, 4)


def roster_csv(rows: list[dict[str, str]]) -> bytes:
    header = ["external_id", "id_number", "name", "benefit_types", "cycle_start"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header)
    w.writeheader()
    for r in rows:
        w.writerow({"benefit_types": "enterprise_pension", **r})
    return buf.getvalue().encode()


def test_a_cycle_start_long_before_the_import_still_gives_the_grace_from_the_import(
    ctx: ServiceContext, db: Session
) -> None:
    # The benefit system's cycle began on 1 January; the office imports its roster in December. The grace date
    # was counted from the row's start (2026-01-01 + 90 days = 2026-04-01): the person was overdue on the day of
    # the import and suspended by that night's run, with no reminder and no chance to certify.
    terms = ImportTerms(IMPORTED_ON, RULES, grace_days=90)
    rows = [
        {
            "external_id": "JAN",
            "id_number": factories.id_number(seq=501),
            "name": "许桂兰",
            "cycle_start": "2026-01-01",
        },
        {
            "external_id": "LATER",
            "id_number": factories.id_number(seq=502),
            "name": "何建国",
            "cycle_start": "2027-01-01",
        },
    ]
    report = import_roster(db, ctx.keyring, "roster.csv", roster_csv(rows), "test", ImportTerms(IMPORTED_ON, RULES, 90))
    assert (report.created, report.grace_dated, report.rejected) == (2, 2, [])
    jan = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "JAN"))
    later = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "LATER"))
    assert jan is not None and later is not None
    assert jan.valid_until == IMPORTED_ON + dt.timedelta(days=90)  # counted from the import, not from January
    assert later.valid_until == dt.date(2027, 4, 1)  # a start ahead of the import still counts from itself
    assert cycle_state(jan.status, jan.valid_until, IMPORTED_ON, RULES) is CycleState.CERTIFIED
    assert run_cycle(db, IMPORTED_ON + dt.timedelta(days=1), RULES, cases=()) == []
    assert jan.status == "active"
    # The same file again changes nothing.
    again = import_roster(db, ctx.keyring, "roster.csv", roster_csv(rows), "test", terms)
    assert (again.unchanged, again.grace_dated) == (2, 0)


def test_a_certification_entered_late_whose_validity_ran_out_resumes_nothing(ctx: ServiceContext, db: Session) -> None:
    # Suspended on 2026-03-15; on 2026-04-02 a counter certification is entered dated a year too early
    # (2025-03-10 for 2026-03-10). Its validity (to 2026-03-09) had run out before the suspension: the benefit was
    # resumed (a `resumed` event: the payment system pays back from the suspension), and suspended again by the
    # next night's run.
    today = dt.date(2026, 4, 2)
    b = factories.beneficiary(
        db,
        ctx.keyring,
        status="suspended",
        valid_until=dt.date(2026, 3, 14),
        suspended_on=dt.date(2026, 3, 15),
        last_certified_on=dt.date(2025, 3, 15),
    )
    record_certification(db, b, dt.date(2025, 3, 10), RULES, today=today)
    assert (b.status, b.suspended_on, b.valid_until) == ("suspended", dt.date(2026, 3, 15), dt.date(2026, 3, 14))
    assert b.last_certified_on == dt.date(2025, 3, 15)  # never moved back by an older certification
    assert db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == b.id)).all() == []

    # A visit made on 10 March 2026 and entered today is still valid today: it resumes, dated by the visit.
    until = record_certification(db, b, dt.date(2026, 3, 10), RULES, today=today)
    assert (b.status, b.suspended_on, until, b.last_certified_on) == (
        "active",
        None,
        dt.date(2027, 3, 9),
        dt.date(2026, 3, 10),
    )
    events = db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == b.id)).all()
    assert [(e.kind, e.on_date, e.suspended_since) for e in events] == [
        ("resumed", dt.date(2026, 3, 10), dt.date(2026, 3, 15))
    ]


def test_a_rejected_row_never_keeps_an_id_number_from_its_external_id_cell(ctx: ServiceContext, db: Session) -> None:
    # A file whose columns slipped: the ID number sits in the external_id column, the name in id_number. The
    # rejected row's report (shown on the console, answered by the API, stored with the import in clear) echoed
    # the external_id cell as it was: a full ID number; and a cell of any length was stored whole.
    number = factories.id_number(seq=503)
    data = (
        "external_id,id_number,name,benefit_types\n"
        f"{number},孙凤英,enterprise_pension,\n"
        f"{'9' * 5000},{factories.id_number(seq=504)},钱玉兰,enterprise_pension\n"
    ).encode()
    report = import_roster(db, ctx.keyring, "roster.csv", data, "test", ImportTerms(IMPORTED_ON, RULES, 90))
    assert [r["line"] for r in report.rejected] == [2, 3]
    assert report.rejected[0]["external_id"] == number[:4] + "*" * 10 + number[-4:]
    assert len(report.rejected[1]["external_id"]) <= 64 and "9" * 20 not in report.rejected[1]["external_id"]
    stored = db.scalar(select(RosterImport).where(RosterImport.id == report.import_id))
    assert stored is not None and number not in repr(stored.report) and "9" * 20 not in repr(stored.report)


def test_a_birthday_month_certification_made_when_reminded_counts_for_the_next_year(
    ctx: ServiceContext, db: Session
) -> None:
    # Birthday-month rule, born in February: the validity ends on 28 February, and fewer than DUE_SOON_DAYS (30)
    # are left from 30 January, so the pensioner is reminded in January. A certification then was valid "to the end
    # of the next birth month ahead": the same 28 February. It counted for nothing, and the person was suspended on
    # 1 March unless they certified a second time.
    rules = CycleRules(due_soon_days=30, birthday_month_regions=frozenset({"3701"}))
    number = factories.id_number(region="370102", birth=dt.date(1952, 2, 11), seq=505)
    b = factories.beneficiary(db, ctx.keyring, id_number=number, valid_until=dt.date(2026, 2, 28))
    reminded_on = dt.date(2026, 1, 30)
    assert cycle_state(b.status, b.valid_until, reminded_on, rules) is CycleState.DUE_SOON
    until = record_certification(db, b, reminded_on, rules)
    assert until == dt.date(2027, 2, 28)
    assert cycle_state(b.status, b.valid_until, reminded_on, rules) is CycleState.CERTIFIED
    assert run_cycle(db, dt.date(2026, 3, 1), rules, cases=()) == []
    # Earlier in the year the rule is unchanged: to the end of this year's birth month.
    assert record_certification(
        db,
        factories.beneficiary(
            db, ctx.keyring, id_number=factories.id_number(region="370102", birth=dt.date(1952, 8, 11), seq=506)
        ),
        dt.date(2026, 3, 1),
        rules,
    ) == dt.date(2026, 8, 31)
    # Born in January, certified on 20 December with a 60-day reminder: 42 days left, so next year's too.
    wide = CycleRules(due_soon_days=60, birthday_month_regions=frozenset({"3701"}))
    jan = factories.beneficiary(
        db, ctx.keyring, id_number=factories.id_number(region="370102", birth=dt.date(1950, 1, 3), seq=507)
    )
    assert record_certification(db, jan, dt.date(2025, 12, 20), wide) == dt.date(2027, 1, 31)


def test_a_row_s_last_certification_counts_even_when_its_valid_until_is_older(ctx: ServiceContext, db: Session) -> None:
    # The benefit system's valid_until lags (computed at its last cycle) while its last_certified_on is newer: the
    # row's valid_until won, and a person who certified in September was overdue on the day of the import and
    # suspended that night.
    data = (
        "external_id,id_number,name,benefit_types,valid_until,last_certified_on\n"
        f"LAG,{factories.id_number(seq=508)},严秀珍,enterprise_pension,2026-06-30,2026-09-01\n"
        f"AHEAD,{factories.id_number(seq=509)},卫国强,enterprise_pension,2027-12-31,2026-09-01\n"
    ).encode()
    report = import_roster(db, ctx.keyring, "roster.csv", data, "test", ImportTerms(IMPORTED_ON, RULES, 90))
    assert (report.created, report.rejected) == (2, [])
    lag = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "LAG"))
    ahead = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "AHEAD"))
    assert lag is not None and ahead is not None
    assert (lag.valid_until, lag.last_certified_on) == (dt.date(2027, 8, 31), dt.date(2026, 9, 1))
    assert ahead.valid_until == dt.date(2027, 12, 31)  # the later of the two, whichever column gives it
    assert run_cycle(db, IMPORTED_ON + dt.timedelta(days=1), RULES, cases=()) == []


def test_a_date_years_ahead_is_refused_not_a_500_nor_a_pension_never_due(ctx: ServiceContext, db: Session) -> None:
    # A cycle_start of 9999-12-31 overflowed the grace date's arithmetic: the whole import was a 500. A typo such
    # as 2207 for 2027 in valid_until or cycle_start was taken: that pensioner was never reminded, never overdue.
    data = (
        "external_id,id_number,name,benefit_types,valid_until,cycle_start\n"
        f"OVER,{factories.id_number(seq=510)},沈玉梅,enterprise_pension,,9999-12-31\n"
        f"TYPO,{factories.id_number(seq=511)},韩志刚,enterprise_pension,2207-01-31,\n"
        f"NEAR,{factories.id_number(seq=512)},杨淑华,enterprise_pension,2027-01-31,2027-01-01\n"
    ).encode()
    report = import_roster(db, ctx.keyring, "roster.csv", data, "test", ImportTerms(IMPORTED_ON, RULES, 90))
    assert report.created == 1
    assert [(r["external_id"], r["errors"]) for r in report.rejected] == [
        ("OVER", ["cycle_start is more than 5 years after the import date (9999-12-31 > 2031-12-04)"]),
        ("TYPO", ["valid_until is more than 5 years after the import date (2207-01-31 > 2031-12-04)"]),
    ]
    # Staff read them in Chinese (the console's import report).
    assert [roster_problem_zh(r["errors"][0]) for r in report.rejected] == [
        "认证周期起始日晚于导入日期 5 年以上（请核对年份）",
        "认证有效期晚于导入日期 5 年以上（请核对年份）",
    ]


def test_a_pensioner_who_certified_in_time_is_not_suspended_while_the_office_decides(
    ctx: ServiceContext, db: Session
) -> None:
    # Valid to 14 March; the pensioner records the video on the 14th and the case goes to staff review (or the job
    # waits in the queue, or fails and waits for staff). The run of the 15th suspended them for the office's
    # backlog: a `suspended` event, the payment stopped, for someone who certified in time.
    last_day = dt.date(2026, 3, 14)
    states: dict[str, dict[str, str]] = {
        "review": {"state": SessionState.DECIDED, "decision": SessionDecision.REVIEW},
        "queued": {"state": SessionState.QUEUED},
        "failed": {"state": SessionState.FAILED},
        "rejected": {"state": SessionState.DECIDED, "decision": SessionDecision.REJECT},  # decided: no shelter
        "late": {"state": SessionState.DECIDED, "decision": SessionDecision.REVIEW},  # recorded the next day
    }
    in_time = dt.datetime(2026, 3, 14, 15, 50)  # naive UTC, as stored: 23:50 on the 14th in Beijing
    too_late = dt.datetime(2026, 3, 14, 16, 10)  # 00:10 on the 15th in Beijing (still the 14th in UTC)
    people: dict[str, Beneficiary] = {}
    for name, fields in states.items():
        b = factories.beneficiary(db, ctx.keyring, valid_until=last_day)
        queued = too_late if name == "late" else in_time
        db.add(factories.session_row(b.id, id=f"cycle-{name}", queued_at=queued, **fields))
        people[name] = b
    db.flush()
    suspended = run_cycle(db, last_day + dt.timedelta(days=1), RULES, cases=())
    assert sorted(suspended) == sorted([people["rejected"].id, people["late"].id])
    assert {n: b.status for n, b in people.items()} == {
        "review": "active",
        "queued": "active",
        "failed": "active",
        "rejected": "suspended",
        "late": "suspended",
    }
    # Staff reject the review case: the next run suspends as it would have.
    s = db.get(CertSession, "cycle-review")
    assert s is not None
    s.decision = SessionDecision.REJECT
    db.flush()
    assert run_cycle(db, last_day + dt.timedelta(days=4), RULES, cases=()) == [people["review"].id]


def test_only_a_case_made_for_the_lapsed_validity_and_decided_soon_shelters(ctx: ServiceContext, db: Session) -> None:
    # The shelter above asked only "queued by the last valid day and undecided": an earlier cycle's case left in
    # the review queue (the person certified at the counter instead), or the record's previous person's case,
    # kept a person unsuspended every later year (found by the whole-diff review, 2026-12-05).
    last_day = dt.date(2026, 2, 28)
    review = {"state": SessionState.DECIDED, "decision": SessionDecision.REVIEW}
    old_cycle = factories.beneficiary(db, ctx.keyring, valid_until=last_day, last_certified_on=dt.date(2025, 3, 1))
    db.add(factories.session_row(old_cycle.id, id="cycle-old", queued_at=dt.datetime(2025, 2, 1, 2), **review))
    changed = factories.beneficiary(
        db, ctx.keyring, valid_until=last_day, identity_since=dt.datetime(2026, 2, 20, 1), last_certified_on=None
    )
    opened = {"created_at": dt.datetime(2026, 2, 10, 1), "queued_at": dt.datetime(2026, 2, 10, 2)}
    db.add(factories.session_row(changed.id, id="cycle-previous", **opened, **review))
    in_time = factories.beneficiary(db, ctx.keyring, valid_until=last_day, last_certified_on=dt.date(2025, 3, 1))
    db.add(factories.session_row(in_time.id, id="cycle-in-time", queued_at=dt.datetime(2026, 2, 27, 2), **review))
    db.flush()
    assert sorted(run_cycle(db, last_day + dt.timedelta(days=1), RULES, cases=())) == sorted([old_cycle.id, changed.id])
    assert in_time.status == "active"
    # The office's backlog shelters for `due_soon_days` past the last valid day, not for ever: an undecided case
    # (or a session that certifies nobody, an elder's consent to a relative) no longer holds the suspension off.
    assert run_cycle(db, last_day + dt.timedelta(days=RULES.due_soon_days), RULES, cases=()) == []
    assert run_cycle(db, last_day + dt.timedelta(days=RULES.due_soon_days + 1), RULES, cases=()) == [in_time.id]
