"""Registering a death twice (a double submit, a second tab, a corrected date, two supervisors at once) raises
one alert per certification accepted after the death, not one per registration: before, each registration
alerted again on every such certification, so supervisors found the same case twice in their list."""

from __future__ import annotations

import datetime as dt
import threading

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.features.console.alt_cert import DEATH_ALERT, certify_alternative, mark_deceased
from service.features.console.auth import Role, Staff
from service.features.console.models import ConsoleAlert, DeathRecord, StaffUser
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)


def _alerts(ctx: ServiceContext, bid: int) -> list[str]:
    with ctx.db() as db:
        rows = db.scalars(
            select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == bid, ConsoleAlert.kind == DEATH_ALERT)
        )
        return [a.detail["certified_on"] for a in rows]


def test_a_death_registered_twice_alerts_once_per_late_certification(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    today = local_today(ctx.settings)
    ten_days_ago = (today - dt.timedelta(days=10)).isoformat()
    csrf = login(app_client, "sup1")
    form = {"csrf": csrf, "kind": "counter", "on_date": ten_days_ago, "evidence": "本人持证到柜台"}
    assert app_client.post(f"/console/beneficiaries/{bid}/certify", data=form).status_code == 200
    death = {"csrf": csrf, "date_of_death": (today - dt.timedelta(days=20)).isoformat(), "source": "民政部门"}
    for _ in range(2):  # the button pressed twice, or the form sent again from a second tab
        assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    assert _alerts(ctx, bid) == [ten_days_ago]
    # A corrected (earlier) date of death: the record says the new date, the same certification is not alerted again.
    death["date_of_death"] = (today - dt.timedelta(days=30)).isoformat()
    app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death)
    assert _alerts(ctx, bid) == [ten_days_ago]
    with ctx.db() as db:
        rec = db.get(DeathRecord, bid)
        assert rec is not None and rec.date_of_death == today - dt.timedelta(days=30)


def test_two_death_registrations_at_once_alert_once(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The first registration is held after its first write; the second then runs. It waits for the person's
    row, then sees the first's record and alert (before: it raised its own copy of the alert)."""
    ctx = pg_ctx
    today = local_today(ctx.settings)
    with ctx.db() as db:
        user = StaffUser(username="sup1", display_name="主管甲", role=Role.SUPERVISOR.value, password_hash="-")
        db.add(user)
        db.flush()
        staff = Staff(id=user.id, username="sup1", display_name="主管甲", role=Role.SUPERVISOR, csrf="-")
        b = factories.beneficiary(db, ctx.keyring)
        bid = b.id
        certify_alternative(db, ctx, b, "counter", today - dt.timedelta(days=5), None, {"note": "x"})
    first_wrote, go_on = threading.Event(), threading.Event()

    def register(hold: bool) -> object:
        with ctx.db() as db:
            if hold:

                @event.listens_for(db, "after_flush")
                def pause(session: Session, _ctx: object) -> None:
                    if not first_wrote.is_set():
                        first_wrote.set()
                        go_on.wait(10)

            row = db.get(Beneficiary, bid)
            assert row is not None
            return len(mark_deceased(db, staff, row, today - dt.timedelta(days=10), "民政部门", today))

    first, first_out = running(lambda: register(True))
    assert first_wrote.wait(10)
    second, second_out = running(lambda: register(False))
    assert until(lambda: lock_waits(ctx) > 0 or not second.is_alive())
    go_on.set()
    first.join(30)
    second.join(30)
    assert (first_out, second_out) == ([1], [0])
    assert len(_alerts(ctx, bid)) == 1
