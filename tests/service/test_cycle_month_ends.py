"""Month ends and 29 February in the annual cycle (docs/service.md "Annual cycle", docs/security.md Part AT): one
rule, `cycle.valid_until`, "valid to the day before the anniversary, an anniversary that the month lacks being the
month's last day", and the same last valid day wherever it shows: the person's validity, the state and the
overdue day, the daily run, a roster import's `last_certified_on`, the certificate's standing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from service.certification.certificates import CertificateStatus, standing
from service.certification.context import ServiceContext
from service.certification.cycle import (
    CycleRules,
    CycleState,
    SuspensionGuard,
    add_months,
    cycle_state,
    record_certification,
    run_cycle,
    valid_until,
)
from service.certification.models import Certification, Channel
from service.certification.roster import ImportTerms, import_roster
from service.certification.sessions import create_session
from tests.service import factories
from tests.service.test_cycle import by_external_id, roster_csv

YEARLY, HALF_YEARLY = CycleRules(validity_months=12), CycleRules(validity_months=6)
LEAP_DAY = dt.date(2028, 2, 29)
LAST_VALID, OVERDUE_ON = dt.date(2029, 2, 27), dt.date(2029, 2, 28)


def test_the_rule_at_month_ends_and_on_29_february() -> None:
    assert add_months(LEAP_DAY, 12) == dt.date(2029, 2, 28)  # the anniversary the month lacks: its last day
    assert valid_until(LEAP_DAY, YEARLY) == LAST_VALID  # the day before it, as for 28 February
    assert valid_until(dt.date(2028, 2, 28), YEARLY) == LAST_VALID
    assert valid_until(dt.date(2028, 3, 1), YEARLY) == OVERDUE_ON
    assert valid_until(dt.date(2027, 2, 28), YEARLY) == dt.date(2028, 2, 27)  # into a leap year: no 29th added
    assert valid_until(LEAP_DAY, CycleRules(validity_months=48)) == dt.date(2032, 2, 28)  # a 29th again
    # 31-day month ends with 6 months: the shorter month's last day is the anniversary.
    assert valid_until(dt.date(2027, 8, 31), HALF_YEARLY) == dt.date(2028, 2, 28)  # 2028-02-29, the day before
    assert valid_until(dt.date(2026, 8, 31), HALF_YEARLY) == dt.date(2027, 2, 27)
    assert valid_until(dt.date(2027, 3, 31), HALF_YEARLY) == dt.date(2027, 9, 29)
    assert valid_until(dt.date(2027, 5, 31), HALF_YEARLY) == dt.date(2027, 11, 29)
    assert valid_until(dt.date(2027, 7, 31), HALF_YEARLY) == dt.date(2028, 1, 30)  # January has a 31st
    # Never a later certification day with an earlier end.
    days = [dt.date(2027, 8, 1) + dt.timedelta(days=n) for n in range(62)]
    ends = [valid_until(day, HALF_YEARLY) for day in days]
    assert ends == sorted(ends)


def test_certified_on_29_february_the_states_and_the_overdue_day() -> None:
    assert cycle_state("active", LAST_VALID, LAST_VALID, YEARLY) is CycleState.DUE_SOON
    assert cycle_state("active", LAST_VALID, OVERDUE_ON, YEARLY) is CycleState.OVERDUE
    assert cycle_state("active", LAST_VALID, dt.date(2029, 1, 29), YEARLY) is CycleState.DUE_SOON  # 29 days left
    assert cycle_state("active", LAST_VALID, dt.date(2029, 1, 28), YEARLY) is CycleState.CERTIFIED


def test_certified_on_29_february_the_run_the_roster_and_the_certificate_agree(
    ctx: ServiceContext, db: Session
) -> None:
    b = factories.beneficiary(db, ctx.keyring, valid_until=None, last_certified_on=None)
    assert record_certification(db, b, LEAP_DAY, YEARLY) == LAST_VALID == b.valid_until
    s = create_session(db, ctx, b, Channel.SELF, False, "test").session
    cert = Certification(beneficiary_id=b.id, session_id=s.id, certified_on=LEAP_DAY, valid_until=LAST_VALID, code="")
    db.add(cert)
    db.flush()
    assert standing(db, cert, LAST_VALID).status is CertificateStatus.VALID
    assert standing(db, cert, OVERDUE_ON).status is CertificateStatus.EXPIRED
    # The roster: a row whose last certification was on 29 February gets the same last valid day.
    row = {"external_id": "LEAP", "id_number": factories.id_number(seq=291), "name": "孙玉兰"}
    terms = ImportTerms(dt.date(2028, 3, 2), YEARLY, grace_days=90)
    report = import_roster(
        db, ctx.keyring, "roster.csv", roster_csv([{**row, "last_certified_on": "2028-02-29"}]), "t", terms
    )
    assert report.rejected == []
    assert by_external_id(db, "LEAP").valid_until == LAST_VALID
    # The daily run: nobody suspended on the last valid day, both on the next.
    guard = SuspensionGuard(max_share=1.0)
    assert run_cycle(db, LAST_VALID, YEARLY, guard, cases=()) == []
    assert sorted(run_cycle(db, OVERDUE_ON, YEARLY, guard, cases=())) == sorted([b.id, by_external_id(db, "LEAP").id])
