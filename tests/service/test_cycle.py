"""The annual cycle across simulated dates: certified → due soon → overdue → suspended → certified again."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.context import ServiceContext
from service.cycle import CycleRules, CycleState, cycle_state, record_certification, run_cycle, valid_until
from service.db.models import CycleEvent
from tests.service import factories

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
    assert cycle_state("active", None, dt.date(2026, 1, 1), RULES) is CycleState.OVERDUE
    assert cycle_state("deceased", until, dt.date(2025, 6, 1), RULES) is CycleState.DECEASED


def test_full_cycle_suspends_then_resumes(ctx: ServiceContext, db: Session) -> None:
    b = factories.beneficiary(db, ctx.keyring)
    record_certification(db, b, dt.date(2025, 3, 15), RULES)
    assert b.valid_until == dt.date(2026, 3, 14)

    # The daily run changes nothing while the certification holds, due soon included.
    assert run_cycle(db, dt.date(2026, 3, 1), RULES) == []
    assert b.status == "active"
    # The day after expiry: suspended, with an event for the payment system.
    assert run_cycle(db, dt.date(2026, 3, 15), RULES) == [b.id]
    assert (b.status, b.suspended_on) == ("suspended", dt.date(2026, 3, 15))
    # Running again the same day is idempotent.
    assert run_cycle(db, dt.date(2026, 3, 15), RULES) == []

    until = record_certification(db, b, dt.date(2026, 4, 2), RULES)
    assert (b.status, until, b.suspended_on) == ("active", dt.date(2027, 4, 1), None)
    events = db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == b.id).order_by(CycleEvent.id)).all()
    assert [(e.kind, e.on_date, e.suspended_since) for e in events] == [
        ("suspended", dt.date(2026, 3, 15), None),
        ("resumed", dt.date(2026, 4, 2), dt.date(2026, 3, 15)),
    ]


def test_deceased_are_never_suspended(ctx: ServiceContext, db: Session) -> None:
    b = factories.beneficiary(db, ctx.keyring, status="deceased", valid_until=dt.date(2020, 1, 1))
    assert b.id not in run_cycle(db, dt.date(2026, 1, 1), RULES)
    assert b.status == "deceased"


def test_early_recertification_never_shortens_validity(ctx: ServiceContext, db: Session) -> None:
    b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2026, 12, 31))
    record_certification(db, b, dt.date(2025, 6, 1), RULES)
    assert b.valid_until == dt.date(2026, 12, 31)
