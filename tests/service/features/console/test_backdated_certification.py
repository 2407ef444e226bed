"""A counter or home-visit certification entered late (docs/security.md Part R): one whose validity had run out
before the day it is entered is recorded, but resumes no suspended pension and moves no date back; one still
valid resumes, dated by the visit."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CycleEvent
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login


def test_a_late_entry_of_a_lapsed_certification_resumes_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    today = local_today(ctx.settings)
    suspended_on = today - dt.timedelta(days=20)
    with ctx.db() as db:
        b = factories.beneficiary(
            db,
            ctx.keyring,
            status="suspended",
            valid_until=suspended_on - dt.timedelta(days=1),
            suspended_on=suspended_on,
            last_certified_on=suspended_on - dt.timedelta(days=365),
        )
        bid, last = b.id, b.last_certified_on
    csrf = login(app_client, "rev1")

    def certify(on_date: dt.date) -> None:
        form = {"csrf": csrf, "kind": "counter", "on_date": on_date.isoformat(), "evidence": "柜台核验，本人到场"}
        r = app_client.post(f"/console/beneficiaries/{bid}/certify", data=form, follow_redirects=False)
        assert r.status_code == 303 and "?e=" not in r.headers["location"], r.headers

    # The year typed wrong: a visit "two years ago". Its validity ran out long before the suspension: the pension
    # was resumed (a `resumed` event, from which the payment system pays back), then suspended again that night.
    certify(today - dt.timedelta(days=730))
    with ctx.db() as db:
        b2 = db.get(Beneficiary, bid)
        assert b2 is not None
        assert (b2.status, b2.suspended_on, b2.last_certified_on) == ("suspended", suspended_on, last)
        assert db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == bid)).all() == []
        assert len(db.scalars(select(Certification).where(Certification.beneficiary_id == bid)).all()) == 1

    # A visit ten days ago, entered today: still valid, so it resumes, dated by the visit.
    visit = today - dt.timedelta(days=10)
    certify(visit)
    with ctx.db() as db:
        b3 = db.get(Beneficiary, bid)
        assert b3 is not None and (b3.status, b3.suspended_on, b3.last_certified_on) == ("active", None, visit)
        events = db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == bid)).all()
        assert [(e.kind, e.on_date, e.suspended_since) for e in events] == [("resumed", visit, suspended_on)]
