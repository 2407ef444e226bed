"""The operator API's status lists and payment exports name the people they showed in the audit.

Each is the names and masked numbers of up to everyone in the jurisdiction, and its entry (`list.read`,
`export.read`) said how many: "who has seen this person's data?" had no answer for them, where the console's
lists name every record they show (`shown`). A list of tens of thousands is named over several entries of a
bounded size, so that no entry grows with the jurisdiction.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification import registry
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, CycleEvent
from tests.service import factories
from tests.service.conftest import ADMIN

LAPSED = dt.date(2026, 1, 10)
TODAY = "2026-02-15"


def entries(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def overdue_people(ctx: ServiceContext, n: int) -> list[str]:
    with ctx.db() as db:
        return [factories.beneficiary(db, ctx.keyring, valid_until=LAPSED).external_id for _ in range(n)]


@pytest.mark.parametrize("format", ["json", "csv"])
def test_a_status_list_read_names_everyone_it_showed(client: TestClient, ctx: ServiceContext, format: str) -> None:
    people = overdue_people(ctx, 3)
    r = client.get("/api/v1/lists/overdue", params={"today": TODAY, "format": format}, headers=ADMIN)
    assert r.status_code == 200
    (entry,) = entries(ctx, "list.read")
    assert entry.target == "overdue" and entry.actor.startswith("admin")
    assert entry.detail == {"people": 3, "format": format, "shown": sorted(people)}


def test_an_external_id_that_is_an_id_number_is_named_masked(client: TestClient, ctx: ServiceContext) -> None:
    """A benefit system whose external ids are ID numbers: the entry names the record with the number masked, as
    every audit detail keeps it (audit.masked_detail), never in clear."""
    number = factories.id_number()
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, external_id=number, valid_until=LAPSED)
    assert client.get("/api/v1/lists/overdue", params={"today": TODAY}, headers=ADMIN).status_code == 200
    (entry,) = entries(ctx, "list.read")
    (shown,) = entry.detail["shown"]
    assert number not in str(entry.detail) and shown[:4] == number[:4] and "*" in shown


def test_two_people_sharing_a_mask_are_named_apart(client: TestClient, ctx: ServiceContext) -> None:
    """The auditor's review, F1: two ID-number external ids with the same first and last four digits. Before: both
    were named `4201**********0011`, so an integrator's bulk read could not be tied to anyone. Now each is the
    masked number with its row id (audit.person_ref)."""
    a = factories.id_number(region="420106", seq=11)
    b = next(
        n for n in (factories.id_number("420111", dt.date(1950, 3, d), 11) for d in range(1, 29)) if n[-4:] == a[-4:]
    )
    with ctx.db() as db:
        rows = [factories.beneficiary(db, ctx.keyring, external_id=n, valid_until=LAPSED) for n in (a, b)]
        want = sorted(f"{n[:4]}**********{n[-4:]}#{row.id}" for n, row in zip((a, b), rows, strict=True))
    assert client.get("/api/v1/lists/overdue", params={"today": TODAY}, headers=ADMIN).status_code == 200
    (entry,) = entries(ctx, "list.read")
    assert sorted(entry.detail["shown"]) == want and a not in str(entry.detail) and b not in str(entry.detail)


def test_a_long_list_is_named_over_bounded_entries(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "SHOWN_PER_ENTRY", 2)
    people = overdue_people(ctx, 5)
    body = client.get("/api/v1/lists/overdue", params={"today": TODAY}, headers=ADMIN).json()
    assert body["count"] == 5
    parts = entries(ctx, "list.read")
    assert [len(e.detail["shown"]) for e in parts] == [2, 2, 1]
    assert [(e.detail["part"], e.detail["parts"], e.detail["people"]) for e in parts] == [
        (1, 3, 5),
        (2, 3, 5),
        (3, 3, 5),
    ]
    assert [x for e in parts for x in e.detail["shown"]] == sorted(people)


def test_a_payment_export_names_whom_it_listed(client: TestClient, ctx: ServiceContext) -> None:
    with ctx.db() as db:
        first, second = (factories.beneficiary(db, ctx.keyring, status="suspended") for _ in range(2))
        for b, day in ((first, 1), (second, 1), (first, 2)):  # the first person twice
            db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=dt.date(2026, 2, day)))
        people = [first.external_id, second.external_id]
    r = client.get("/api/v1/exports/suspensions.csv", params={"since": "2026-01-01"}, headers=ADMIN)
    assert r.status_code == 200 and len(r.text.splitlines()) == 4  # the header and three events
    (entry,) = entries(ctx, "export.read")
    assert entry.target == "suspensions"
    assert entry.detail == {"rows": 3, "since": "2026-01-01", "shown": people}
