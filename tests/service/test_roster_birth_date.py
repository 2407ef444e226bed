"""The roster import judges an ID number's birth date on the import's date, the bureau's (docs/security.md, Part
DF): a person born on the bureau's today is imported, one born the next day refused.

The clock is held at 2099-03-09 17:30 UTC, 2099-03-10 01:30 in Beijing, a day the machine's own date has not
reached: what the old check (the machine's `date.today()`) did each day from 16:00 to 24:00 UTC, when that date is
the day before Beijing's, held still so that the test fails the same way at any hour."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from service.certification import idnumber
from service.certification.context import ServiceContext
from service.certification.roster import import_roster, import_terms
from service.infra import clock
from tests.service import factories
from tests.service.test_roster import to_csv

INSTANT = dt.datetime(2099, 3, 9, 17, 30, tzinfo=dt.UTC)
BEIJING_DAY = dt.date(2099, 3, 10)


@pytest.fixture
def held_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: INSTANT)


def test_a_person_born_on_the_bureaus_today_is_imported_and_the_next_day_refused(
    ctx: ServiceContext, db: Session, held_clock: None
) -> None:
    terms = import_terms(ctx)
    assert terms.today == BEIJING_DAY
    born_today = factories.id_number(region="420106", birth=BEIJING_DAY, seq=21)
    born_tomorrow = factories.id_number(region="420106", birth=BEIJING_DAY + dt.timedelta(days=1), seq=22)
    rows = [
        ["P1", born_today, "张秀英", "", "enterprise_pension", "", ""],
        ["P2", born_tomorrow, "李桂兰", "", "enterprise_pension", "", ""],
    ]
    report = import_roster(db, ctx.keyring, "r.csv", to_csv(rows), "t", terms)
    # Was 0 created and both refused: the machine's date called the bureau's today "the future".
    assert report.created == 1
    assert [(r["line"], r["errors"]) for r in report.rejected] == [(3, [idnumber.BIRTH_DATE])]
