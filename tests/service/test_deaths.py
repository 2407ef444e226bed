"""Every way a death reaches the service writes the payment system's row by one rule (service/certification/
deaths.py): here, a roster row whose status is `deceased` (the console's registration:
tests/service/features/console/test_death_registration.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification import registry
from service.certification.context import ServiceContext
from service.certification.deaths import withdraw_death
from service.certification.models import Beneficiary
from service.certification.roster import import_roster, import_terms
from tests.service import factories
from tests.service.test_roster import to_csv

HEADER = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]


def _stops(db: Session, ctx: ServiceContext) -> list[tuple[str, str, str]]:
    rows = registry.events(db, registry.EXPORTS["suspensions"], None, ctx.settings)
    return [(r["external_id"], r["kind"], r["on_date"]) for r in rows]


def test_a_roster_death_of_a_living_record_stops_the_payment_once(ctx: ServiceContext, db: Session) -> None:
    """Before: a roster row `deceased` for a person held as active only changed the status: no row of the payment
    files named them. Now it is a `deceased` row dated by the day of the import (the file carries no date of
    death), once: the same file again, or another change to the dead record, writes none; a person the roster
    creates as deceased (never paid here) has none."""
    terms = import_terms(ctx)
    until = (terms.today + dt.timedelta(days=200)).isoformat()
    alive, born_dead = factories.id_number("420106"), factories.id_number("420106")
    first = [["R001", alive, "王秀兰", "", "enterprise_pension", "active", until]]
    import_roster(db, ctx.keyring, "r1.csv", to_csv(first, HEADER), "test", terms)
    assert _stops(db, ctx) == []
    dead = [
        ["R001", alive, "王秀兰", "", "enterprise_pension", "deceased", until],
        ["R002", born_dead, "李建国", "", "enterprise_pension", "deceased", until],
    ]
    report = import_roster(db, ctx.keyring, "r2.csv", to_csv(dead, HEADER), "test", terms)
    assert (report.created, report.updated) == (1, 1)
    assert _stops(db, ctx) == [("R001", "deceased", terms.today.isoformat())]
    import_roster(db, ctx.keyring, "r2.csv", to_csv(dead, HEADER), "test", terms)
    dead[0][4] = "survivor_pension"  # another change to the dead record: nothing new is known of the death
    assert import_roster(db, ctx.keyring, "r3.csv", to_csv(dead, HEADER), "test", terms).updated == 1
    assert _stops(db, ctx) == [("R001", "deceased", terms.today.isoformat())]


def test_a_roster_row_saying_living_for_a_death_on_record_is_named_and_a_withdrawal_is_undone_by_a_new_death(
    ctx: ServiceContext, db: Session
) -> None:
    """The roster does not lift a death (Part R): only a supervisor does (deaths.withdraw_death). Before, a row saying
    `active` for a deceased record was counted `updated` and its status dropped without a word; now the report
    names the record. Once withdrawn, a roster death of the living record stops the payment again (a new row)."""
    terms = import_terms(ctx)
    until = (terms.today + dt.timedelta(days=200)).isoformat()
    rows = [["R001", factories.id_number("420106"), "王秀兰", "", "enterprise_pension", "active", until]]
    import_roster(db, ctx.keyring, "r1.csv", to_csv(rows, HEADER), "test", terms)
    rows[0][5] = "deceased"
    assert import_roster(db, ctx.keyring, "r2.csv", to_csv(rows, HEADER), "test", terms).death_kept == []
    rows[0][5] = "active"
    report = import_roster(db, ctx.keyring, "r3.csv", to_csv(rows, HEADER), "test", terms)
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "R001"))
    assert b is not None and b.status == "deceased"
    assert report.death_kept == ["R001"] and report.to_dict()["death_kept"] == ["R001"]
    event = withdraw_death(db, b)
    assert event is not None and b.status == "active" and withdraw_death(db, b) is None  # once
    today = terms.today.isoformat()
    assert _stops(db, ctx) == [("R001", "deceased", today), ("R001", "death_withdrawn", today)]
    rows[0][5] = "deceased"
    import_roster(db, ctx.keyring, "r4.csv", to_csv(rows, HEADER), "test", terms)
    assert [k for _, k, _ in _stops(db, ctx)] == ["deceased", "death_withdrawn", "deceased"]
