"""A pensioner whose circumstances change during the year, as the roster tells it (docs/security.md, Part "moves"):
a later file without the region column, a postponed first campaign, a `suspended` row, a person transferred in with
a lapsed date."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification import idnumber
from service.certification.context import ServiceContext
from service.certification.cycle import CycleState, record_certification, run_cycle, state_of, stopped_by_roster
from service.certification.models import Beneficiary, CycleEvent
from service.certification.registry import status_list
from service.certification.roster import import_roster
from service.certification.roster_rows import REGION_REQUIRED
from tests.service import factories
from tests.service.test_roster import TERMS, to_csv

# Born in 郑州 (410102), living in 武昌区 (420106): the benefit system's roster says 420106.
NUMBER = factories.id_number("410102", birth=dt.date(1955, 6, 1), seq=777)
FULL = ["external_id", "id_number", "name", "region", "benefit_types", "valid_until"]


def region_of(db: Session, ext: str = "E1") -> str | None:
    return db.scalar(select(Beneficiary.region).where(Beneficiary.external_id == ext))


def test_a_file_without_the_region_column_keeps_the_stored_region(ctx: ServiceContext, db: Session) -> None:
    """Before: a file without the column (a mid-year file of dates), or a blank cell, moved the person to their
    birthplace's district (the number's first digits), out of their own district staff's scope, as an `updated`."""
    full = [["E1", NUMBER, "王秀兰", "420106", "enterprise_pension", "2026-09-01"]]
    assert import_roster(db, ctx.keyring, "full.csv", to_csv(full, FULL), "t", TERMS).created == 1
    dates = ["external_id", "id_number", "name", "benefit_types", "valid_until"]
    no_column = [["E1", NUMBER, "王秀兰", "enterprise_pension", "2026-09-01"]]
    blank = [["E1", NUMBER, "王秀兰", "", "enterprise_pension", "2026-09-01"]]
    for data in (to_csv(no_column, dates), to_csv(blank, FULL)):
        again = import_roster(db, ctx.keyring, "dates.csv", data, "t", TERMS)
        assert (again.updated, again.unchanged, again.rejected) == (0, 1, []), again.to_dict()
        assert region_of(db) == "420106"
    # A date update without the column is an update that keeps the region.
    later = import_roster(db, ctx.keyring, "dates.csv", to_csv([[*no_column[0][:4], "2026-10-01"]], dates), "t", TERMS)
    assert later.updated == 1 and region_of(db) == "420106"
    # A region the file does give still moves the person; a new record without one takes the number's.
    moved = [["E1", NUMBER, "王秀兰", "420102", "enterprise_pension", "2026-10-01"]]
    newcomer = ["E2", factories.id_number("420111", seq=778), "李桂芳", "", "enterprise_pension", "2026-10-01"]
    report = import_roster(db, ctx.keyring, "move.csv", to_csv([*moved, newcomer], FULL), "t", TERMS)
    assert (report.updated, report.created) == (1, 1)
    assert (region_of(db), region_of(db, "E2")) == ("420102", "420111")


NEW = ["external_id", "id_number", "name", "region", "benefit_types", "cycle_start"]


def test_a_postponed_first_campaign_moves_the_grace_date_of_people_never_certified(
    ctx: ServiceContext, db: Session
) -> None:
    """Before: a later `cycle_start` in a re-import counted as `updated` but left the first grace date: the people
    were reminded and suspended on the old schedule."""
    start, later = TERMS.today, TERMS.today + dt.timedelta(days=60)
    grace = dt.timedelta(days=TERMS.grace_days)
    rows = [
        ["N1", factories.id_number("420106", seq=779), "赵建国", "420106", "enterprise_pension", start.isoformat()],
        ["N2", factories.id_number("420106", seq=780), "钱淑珍", "420106", "enterprise_pension", start.isoformat()],
    ]
    assert import_roster(db, ctx.keyring, "new.csv", to_csv(rows, NEW), "t", TERMS).grace_dated == 2
    certified = db.scalars(select(Beneficiary).where(Beneficiary.external_id == "N2")).one()
    certified.last_certified_on = start + dt.timedelta(days=5)  # N2 certified here since
    db.flush()
    for row in rows:
        row[-1] = later.isoformat()
    report = import_roster(db, ctx.keyring, "moved.csv", to_csv(rows, NEW), "t", TERMS)
    assert (report.updated, report.grace_dated) == (2, 1)
    b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == "N1")).one()
    assert (b.valid_until, b.grace_dated) == (later + grace, True)
    assert state_of(b, start + grace + dt.timedelta(days=1), TERMS.rules) is CycleState.AWAITING_FIRST
    assert certified.valid_until == start + grace  # certified since: their date is theirs
    # An earlier start never shortens it, and a file naming no start does not add the grace again.
    for row in rows:
        row[-1] = start.isoformat()
    import_roster(db, ctx.keyring, "back.csv", to_csv(rows, NEW), "t", TERMS)
    renamed = [[*rows[0][:2], "赵建华", *rows[0][3:5]]]
    late = replace(TERMS, today=TERMS.today + dt.timedelta(days=30))
    assert import_roster(db, ctx.keyring, "name.csv", to_csv(renamed, NEW[:5]), "t", late).updated == 1
    assert b.valid_until == later + grace


def test_a_person_transferred_in_with_a_lapsed_date_is_due_soon_not_suspended_that_night(
    ctx: ServiceContext, db: Session
) -> None:
    """Before: a new record took the row's lapsed date (their previous bureau's): overdue on the day of the import
    and suspended by that night's run, with a payment row, never reminded."""
    header = ["external_id", "id_number", "name", "region", "benefit_types", "last_certified_on"]
    long_ago = (TERMS.today - dt.timedelta(days=400)).isoformat()
    rows = [["X1", factories.id_number("420106", seq=807), "陈玉珍", "420106", "enterprise_pension", long_ago]]
    report = import_roster(db, ctx.keyring, "transfer.csv", to_csv(rows, header), "t", TERMS)
    b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == "X1")).one()
    assert run_cycle(db, TERMS.today, TERMS.rules, cases=ctx.hooks.case_sources()) == []
    assert state_of(b, TERMS.today, TERMS.rules) is CycleState.DUE_SOON
    window = TERMS.today + dt.timedelta(days=TERMS.rules.due_soon_days - 1)
    assert (b.valid_until, b.last_certified_on) == (window, TERMS.today - dt.timedelta(days=400))
    assert (report.created, report.lapsed_on_import, report.to_dict()["lapsed_on_import"]) == (1, ["X1"], ["X1"])
    assert run_cycle(db, window, TERMS.rules, cases=ctx.hooks.case_sources()) == []
    # Overdue once the window is over, as anyone; a record already stored keeps its own date, unnamed.
    assert run_cycle(db, window + dt.timedelta(days=1), TERMS.rules, cases=ctx.hooks.case_sources()) == [b.id]
    rows[0][-1] = (TERMS.today - dt.timedelta(days=390)).isoformat()
    again = import_roster(db, ctx.keyring, "again.csv", to_csv(rows, header), "t", TERMS)
    assert (again.updated, again.lapsed_on_import, b.valid_until) == (1, [], window)


def test_a_suspended_row_takes_a_record_held_active_out_of_the_cycle(ctx: ServiceContext, db: Session) -> None:
    """Before: a roster `suspended` (transferred out) for an existing record was an unnamed `updated`; the person
    stayed active here, listed overdue, reminded, then suspended by the cycle run with a payment row. The status is
    kept (Part R: a certification or a person decides a payment), the cycle leaves the record alone
    (cycle.stopped_by_roster; the reminders: tests/service/features/wechat/test_roster_stopped.py), and the report
    names it; a later `active` row puts it back."""
    header = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]
    number = factories.id_number("420106", seq=788)
    row = ["T1", number, "李桂芳", "420106", "enterprise_pension", "active", "2026-06-11"]
    assert import_roster(db, ctx.keyring, "r.csv", to_csv([row], header), "t", TERMS).created == 1
    row[5] = "suspended"
    report = import_roster(db, ctx.keyring, "r.csv", to_csv([row], header), "t", TERMS)
    assert (report.updated, report.suspension_not_applied) == (1, ["T1"])
    assert report.to_dict()["suspension_not_applied"] == ["T1"]
    b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == "T1")).one()
    assert (b.status, b.roster_status) == ("active", "suspended")
    lapsed = dt.date(2026, 6, 12)
    cases = ctx.hooks.case_sources()
    assert status_list(db, "overdue", lapsed, TERMS.rules, cases=cases) == []
    assert run_cycle(db, lapsed, TERMS.rules, cases=cases) == []
    assert db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == b.id)).all() == []
    row[5] = "active"  # the benefit system pays them here again: back in the cycle, nothing to name
    assert import_roster(db, ctx.keyring, "r.csv", to_csv([row], header), "t", TERMS).suspension_not_applied == []
    assert status_list(db, "overdue", lapsed, TERMS.rules, cases=cases) == [b]
    assert run_cycle(db, lapsed, TERMS.rules, cases=cases) == [b.id]


def test_our_suspension_echoed_by_the_roster_leaves_a_resumed_person_in_the_cycle(
    ctx: ServiceContext, db: Session
) -> None:
    """Before: the roster's `suspended` that repeats this service's own suspension (the benefit system stopped paying
    on our exports/suspensions.csv row) took the person out of the cycle for good: once they certified here and were
    resumed, no list, reminder or suspension reached them until a file said `active`. It is our suspension echoed:
    it stops nothing, and the resume answers it (cycle.stopped_by_roster, cycle.resume; the reminders:
    tests/service/features/wechat/test_roster_stopped.py)."""
    header = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]
    row = [
        "S1",
        factories.id_number("420106", seq=901),
        "王秀兰",
        "420106",
        "enterprise_pension",
        "active",
        "2026-06-11",
    ]
    assert import_roster(db, ctx.keyring, "r.csv", to_csv([row], header), "t", TERMS).created == 1
    b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == "S1")).one()
    cases = ctx.hooks.case_sources()
    assert run_cycle(db, dt.date(2026, 6, 12), TERMS.rules, cases=cases) == [b.id]  # our suspension, a payment row
    row[5] = "suspended"  # the benefit system stopped paying, and its next file says so
    echo = import_roster(db, ctx.keyring, "r2.csv", to_csv([row], header), "t", TERMS)
    assert (echo.updated, echo.suspension_not_applied, b.roster_status) == (1, [], "suspended")
    assert not stopped_by_roster(b) and status_list(
        db, "suspended", dt.date(2026, 6, 20), TERMS.rules, cases=cases
    ) == [b]
    until = record_certification(db, b, dt.date(2026, 7, 1), TERMS.rules, dt.date(2026, 7, 1))
    db.flush()
    assert (b.status, b.roster_status, stopped_by_roster(b)) == ("active", "resumed", False)
    # The same file again is the same statement (unchanged): the person stays in the cycle.
    assert import_roster(db, ctx.keyring, "r2.csv", to_csv([row], header), "t", TERMS).unchanged == 1
    soon, lapsed = until - dt.timedelta(days=5), until + dt.timedelta(days=10)
    assert status_list(db, "due_soon", soon, TERMS.rules, cases=cases) == [b]
    assert status_list(db, "overdue", lapsed, TERMS.rules, cases=cases) == [b]
    assert run_cycle(db, lapsed, TERMS.rules, cases=cases) == [b.id]


def test_our_echo_in_a_changed_row_after_the_resume_leaves_the_person_in_the_cycle(
    ctx: ServiceContext, db: Session
) -> None:
    """Before: the resume cleared the roster's word, so the benefit system's next file, still saying `suspended`
    (it had not yet acted on our `resumed` row) but with another column changed (the date of our certification), was
    taken as a new transfer-out: the person left the cycle again and was named in `suspension_not_applied`. The
    roster's `suspended` stays our echo until it says another word once (cycle.roster_word); after an `active`, a
    `suspended` is a real stop again."""
    header = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]
    row = [
        "S2",
        factories.id_number("420106", seq=902),
        "王秀兰",
        "420106",
        "enterprise_pension",
        "active",
        "2026-06-11",
    ]
    import_roster(db, ctx.keyring, "r.csv", to_csv([row], header), "t", TERMS)
    b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == "S2")).one()
    cases = ctx.hooks.case_sources()
    assert run_cycle(db, dt.date(2026, 6, 12), TERMS.rules, cases=cases) == [b.id]  # our suspension
    row[5] = "suspended"  # the echo
    import_roster(db, ctx.keyring, "r2.csv", to_csv([row], header), "t", TERMS)
    until = record_certification(db, b, dt.date(2026, 7, 1), TERMS.rules, dt.date(2026, 7, 1))
    db.flush()
    row[6] = until.isoformat()  # the benefit system took our certification's date, not yet our `resumed` row
    report = import_roster(db, ctx.keyring, "r3.csv", to_csv([row], header), "t", TERMS)
    assert (report.updated, report.suspension_not_applied) == (1, [])
    assert (b.status, b.roster_status, stopped_by_roster(b)) == ("active", "resumed", False)
    soon, lapsed = until - dt.timedelta(days=5), until + dt.timedelta(days=10)
    assert status_list(db, "due_soon", soon, TERMS.rules, cases=cases) == [b]
    assert status_list(db, "overdue", lapsed, TERMS.rules, cases=cases) == [b]
    # The roster says `active` once (it acted on our `resumed` row); a `suspended` after that is a real stop.
    row[5] = "active"
    assert import_roster(db, ctx.keyring, "r4.csv", to_csv([row], header), "t", TERMS).suspension_not_applied == []
    assert b.roster_status == "active"
    row[5] = "suspended"
    stop = import_roster(db, ctx.keyring, "r5.csv", to_csv([row], header), "t", TERMS)
    assert (stop.suspension_not_applied, b.roster_status, stopped_by_roster(b)) == (["S2"], "suspended", True)
    assert status_list(db, "overdue", lapsed, TERMS.rules, cases=cases) == []
    assert run_cycle(db, lapsed, TERMS.rules, cases=cases) == []


def test_the_arrival_window_is_a_floor_for_every_new_record(ctx: ServiceContext, db: Session) -> None:
    """Before: only a new record whose row's date had already lapsed got the window: one whose date ended tomorrow
    kept it, unnamed, and was suspended with a payment row two nights after arriving."""
    header = ["external_id", "id_number", "name", "region", "benefit_types", "valid_until"]
    today = TERMS.today
    window = TERMS.today + dt.timedelta(days=TERMS.rules.due_soon_days - 1)
    dates = {"Y1": today - dt.timedelta(days=1), "D1": today, "T1": today + dt.timedelta(days=1), "W1": window}
    dates["L1"] = today + dt.timedelta(days=60)
    rows = [
        [
            ext,
            factories.id_number("420106", seq=910 + n),
            "甲乙丙丁戊"[n],
            "420106",
            "enterprise_pension",
            day.isoformat(),
        ]
        for n, (ext, day) in enumerate(dates.items())
    ]
    report = import_roster(db, ctx.keyring, "transfer.csv", to_csv(rows, header), "t", TERMS)
    got = {b.external_id: b.valid_until for b in db.scalars(select(Beneficiary))}
    assert got == {"Y1": window, "D1": window, "T1": window, "W1": window, "L1": dates["L1"]}
    assert (report.created, report.lapsed_on_import) == (5, ["Y1", "D1", "T1"])
    cases = ctx.hooks.case_sources()
    assert run_cycle(db, today + dt.timedelta(days=2), TERMS.rules, cases=cases) == []
    assert run_cycle(db, window, TERMS.rules, cases=cases) == []
    lapsed = run_cycle(db, window + dt.timedelta(days=1), TERMS.rules, cases=cases)
    assert sorted(db.get_one(Beneficiary, i).external_id for i in lapsed) == ["D1", "T1", "W1", "Y1"]


def test_a_postponed_first_campaign_names_a_person_already_suspended(ctx: ServiceContext, db: Session) -> None:
    """Before: a later `cycle_start` re-dated only the people never certified still held active; one the run had
    already suspended on the old grace date stayed suspended, as an unnamed `updated`. The suspension stays (a
    resume is a certification's decision, docs/security.md Part R), and the report names the person."""
    start = TERMS.today
    grace = dt.timedelta(days=TERMS.grace_days)
    rows = [
        ["P1", factories.id_number("420106", seq=921), "孙桂英", "420106", "enterprise_pension", start.isoformat()],
        ["P2", factories.id_number("420106", seq=922), "周国强", "420106", "enterprise_pension", start.isoformat()],
    ]
    import_roster(db, ctx.keyring, "new.csv", to_csv(rows, NEW), "t", TERMS)
    p1, p2 = (db.scalars(select(Beneficiary).where(Beneficiary.external_id == e)).one() for e in ("P1", "P2"))
    p2.valid_until = start + grace + dt.timedelta(days=10)  # P2 not yet lapsed on the night of the run
    db.flush()
    day = start + grace + dt.timedelta(days=1)
    assert run_cycle(db, day, TERMS.rules, cases=ctx.hooks.case_sources()) == [p1.id]
    later = start + dt.timedelta(days=120)  # the campaign postponed
    for row in rows:
        row[-1] = later.isoformat()
    moved = import_roster(db, ctx.keyring, "moved.csv", to_csv(rows, NEW), "t", replace(TERMS, today=day))
    assert (moved.updated, moved.grace_dated, moved.suspension_kept) == (2, 1, ["P1"])
    assert moved.to_dict()["suspension_kept"] == ["P1"]
    assert (p1.status, p1.valid_until, p2.valid_until) == ("suspended", start + grace, later + grace)
    assert db.scalars(select(CycleEvent.kind).where(CycleEvent.beneficiary_id == p1.id)).all() == ["suspended"]
    # The same file again names nobody; a certification then resumes the person, as any suspended one.
    assert (
        import_roster(db, ctx.keyring, "moved.csv", to_csv(rows, NEW), "t", replace(TERMS, today=day)).suspension_kept
        == []
    )
    record_certification(db, p1, day, TERMS.rules, day)
    assert p1.status == "active"


def test_a_residence_permit_holder_keeps_their_region_in_a_file_without_the_column(
    ctx: ServiceContext, db: Session
) -> None:
    """A Taiwan resident's permit (830000…: no place of residence in the number), stored in 厦门 思明区 by the full
    file. Before: a later file of dates without the optional region column, or with the cell blank, refused the row
    ("region is required for a residence permit number"): the date the benefit system sent never reached the
    record, as for no other pensioner (an ID card's row keeps its stored region, Part DH). A new record of a permit
    without a region is still refused: nothing would place it."""
    body = "83000019480305002"
    permit = body + idnumber.check_digit(body)
    full = [["T1", permit, "林淑芬", "350203", "enterprise_pension", "2026-09-01"]]
    assert import_roster(db, ctx.keyring, "full.csv", to_csv(full, FULL), "t", TERMS).created == 1
    dates = ["external_id", "id_number", "name", "benefit_types", "valid_until"]
    later = import_roster(
        db,
        ctx.keyring,
        "dates.csv",
        to_csv([["T1", permit, "林淑芬", "enterprise_pension", "2026-10-01"]], dates),
        "t",
        TERMS,
    )
    assert (later.updated, later.rejected) == (1, []), later.to_dict()
    blank = import_roster(
        db,
        ctx.keyring,
        "blank.csv",
        to_csv([["T1", permit, "林淑芬", "", "enterprise_pension", "2026-10-01"]], FULL),
        "t",
        TERMS,
    )
    assert (blank.unchanged, blank.rejected) == (1, []), blank.to_dict()
    b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == "T1")).one()
    assert (b.region, b.valid_until) == ("350203", dt.date(2026, 10, 1))
    other = "83000019500101003"
    newcomer = [["T2", other + idnumber.check_digit(other), "陈美玲", "enterprise_pension", "2026-10-01"]]
    refused = import_roster(db, ctx.keyring, "new.csv", to_csv(newcomer, dates), "t", TERMS)
    assert refused.created == 0 and [r["errors"] for r in refused.rejected] == [[REGION_REQUIRED]]
    assert region_of(db, "T2") is None
