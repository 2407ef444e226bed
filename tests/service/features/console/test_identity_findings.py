"""A supervisor's finding on a roster change of ID number, on the alerts page: the importer cannot settle their own
change (four eyes: it was "a second person must see each one", yet the importing supervisor could mark it handled
themselves); a same-person finding (a typo corrected) gives back the record's validity; another-person keeps the
change; both are in the staff audit chain and on the person's page."""

from __future__ import annotations

import datetime as dt
import html

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.identity_alerts import KIND
from service.features.console.models import ConsoleAlert
from tests.service import factories
from tests.service.features.console.conftest import csrf_of, login, new_client
from tests.service.features.console.test_identity_alerts import _upload

# A validity well past the grace date (90 days) a change gives, and the certification it came from.
UNTIL = dt.date.today() + dt.timedelta(days=200)
CERTIFIED = dt.date.today() - dt.timedelta(days=165)


def _alerts(ctx: ServiceContext) -> dict[int, ConsoleAlert]:
    with ctx.db() as db:
        rows = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == KIND)).all()
        for a in rows:
            db.expunge(a)
        return {a.beneficiary_id or 0: a for a in rows}


def _validity(ctx: ServiceContext, bid: int) -> tuple[dt.date | None, dt.date | None]:
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        return b.valid_until, b.last_certified_on


def test_the_importer_cannot_settle_their_own_change_and_another_supervisor_finds_a_typo(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    old = [factories.id_number(birth=dt.date(1939, 4, d)) for d in (1, 2)]
    new = [factories.id_number(birth=dt.date(1939, 4, d)) for d in (11, 12)]
    with ctx.db() as db:
        people = [
            factories.beneficiary(
                db,
                ctx.keyring,
                id_number=n,
                name=f"钱{i}",
                valid_until=UNTIL,
                last_certified_on=CERTIFIED,
            )
            for i, n in enumerate(old)
        ]
        ids = [(p.external_id, p.id) for p in people]
    importer = login(app_client, "sup1")
    _upload(
        app_client,
        importer,
        [[e, n, f"钱{i}", "enterprise_pension"] for i, ((e, _), n) in enumerate(zip(ids, new, strict=True))],
    )
    typo, handed = (_alerts(ctx)[bid] for _e, bid in ids)
    assert _validity(ctx, ids[0][1])[0] != UNTIL

    # The importer: neither a finding nor the plain "handled" settles their own change.
    r = app_client.post(f"/console/alerts/{typo.id}/identity", data={"csrf": importer, "finding": "same_person"})
    assert r.status_code == 200 and "须由另一位主管核实" in html.unescape(r.text)
    app_client.post(f"/console/alerts/{typo.id}/resolve", data={"csrf": importer})
    assert not _alerts(ctx)[ids[0][1]].resolved

    second = new_client(app_client)
    csrf = login(second, "sup2")
    page = html.unescape(second.get("/console/alerts").text)
    assert f'id="finding-same_person-{typo.id}"' in page and "导入人本人不能核实" in page
    assert (
        second.post(f"/console/alerts/{typo.id}/identity", data={"csrf": csrf, "finding": "maybe"}).status_code == 200
    )
    assert not _alerts(ctx)[ids[0][1]].resolved  # an unknown finding settles nothing
    second.post(f"/console/alerts/{typo.id}/identity", data={"csrf": csrf, "finding": "same_person"})
    second.post(f"/console/alerts/{handed.id}/identity", data={"csrf": csrf, "finding": "other_person"})

    settled = _alerts(ctx)
    assert settled[ids[0][1]].resolved and settled[ids[0][1]].detail["finding"] == "same_person"
    assert settled[ids[1][1]].resolved and settled[ids[1][1]].detail["finding"] == "other_person"
    assert _validity(ctx, ids[0][1]) == (UNTIL, CERTIFIED)  # the typo's person: given back
    assert _validity(ctx, ids[1][1])[1] is None  # another person: the change stands
    page = html.unescape(second.get("/console/alerts").text)
    assert "已处理：同一人，更正录入错误（sup2）" in page and "已处理：另一人，账户已交给他人（sup2）" in page
    person = html.unescape(second.get(f"/console/beneficiaries/{ids[0][1]}").text)
    assert "已处理（核实为同一人）" in person
    with ctx.db() as db:
        chain = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action.like("alert.identity.%"))).all()
    assert sorted((e.actor, e.action) for e in chain) == [
        ("staff:sup1", "alert.identity.refused"),  # the importer's own try, recorded (Part BN)
        ("staff:sup2", "alert.identity.other_person"),
        ("staff:sup2", "alert.identity.same_person"),
    ]
    # Settled once: a second finding (another tab) changes nothing.
    second.post(f"/console/alerts/{handed.id}/identity", data={"csrf": csrf_of(page), "finding": "same_person"})
    assert _alerts(ctx)[ids[1][1]].detail["finding"] == "other_person"
    assert _validity(ctx, ids[1][1])[1] is None


def test_a_reviewer_cannot_record_a_finding(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    csrf = login(app_client, "rev1")
    r = app_client.post("/console/alerts/1/identity", data={"csrf": csrf, "finding": "same_person"})
    assert r.status_code == 403


def test_a_finding_on_a_change_superseded_since_is_recorded_and_gives_nothing_back(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The record's number changed twice: its first change could only be settled by a false "another person"
    before (same person was refused, "handled" too). Now the finding is recorded; the later change stands."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="孙梅", valid_until=dt.date(2030, 1, 31))
        ext, bid = b.external_id, b.id
    importer = login(app_client, "sup1")
    for day in (21, 22):
        _upload(
            app_client,
            importer,
            [[ext, factories.id_number(birth=dt.date(1939, 4, day)), "孙梅", "enterprise_pension"]],
        )
    with ctx.db() as db:
        first, second = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == KIND).order_by(ConsoleAlert.id))
        first_id, second_id = first.id, second.id
    checker = new_client(app_client)
    csrf = login(checker, "sup2")
    page = checker.post(f"/console/alerts/{first_id}/identity", data={"csrf": csrf, "finding": "same_person"})
    assert page.status_code == 200 and "此后又有变更，未恢复" in html.unescape(page.text)
    with ctx.db() as db:
        done, later = db.get(ConsoleAlert, first_id), db.get(ConsoleAlert, second_id)
        assert done is not None and done.resolved and done.detail["restored"] == {"superseded": True}
        assert later is not None and not later.resolved
    assert _validity(ctx, bid)[0] != dt.date(2030, 1, 31)  # nothing given back
