"""The console's roster search with numbers: an ID number however typed, and an external id that looks like one.

Since a 15-digit query that is a valid first-generation number is searched as an ID number, a benefit system's
15-digit all-digit external id of that form found nobody. Nobody having the number, the search is an external-id
search after all; a person who does have the number is still found by it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification import idnumber
from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.infra import clock
from service.infra.clock import local_today
from service.infra.security import normalise_id
from tests.service import factories
from tests.service.features.console.conftest import login

# 110101 (东城区) + 1949-01-01 + 001: a valid old ID number, and here a benefit system's external id.
LOOKS_LIKE_A_NUMBER = "110101490101001"


def last_search(ctx: ServiceContext) -> ConsoleAuditEntry:
    with ctx.db() as db:
        q = select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "roster.search")
        return db.scalars(q.order_by(ConsoleAuditEntry.seq.desc()).limit(1)).one()


def test_a_15_digit_external_id_that_is_also_a_valid_old_number_is_found(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    assert idnumber.validate(normalise_id(LOOKS_LIKE_A_NUMBER), local_today(ctx.settings)) is None
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, external_id=LOOKS_LIKE_A_NUMBER, name="赵桂芝")
    csrf = login(app_client, "rev1")
    page = app_client.post("/console/roster/search", data={"q": LOOKS_LIKE_A_NUMBER, "csrf": csrf}).text
    assert "赵桂芝" in page and 'id="results"' in page
    entry = last_search(ctx)
    assert entry.target == "external_id" and entry.detail["n"] == 1


def test_the_holder_of_the_old_number_is_still_found_by_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, external_id=LOOKS_LIKE_A_NUMBER, name="赵桂芝")
        holder = factories.beneficiary(db, ctx.keyring, id_number=normalise_id(LOOKS_LIKE_A_NUMBER), name="钱秀兰")
        holder_ext = holder.external_id
    csrf = login(app_client, "rev1")
    page = app_client.post("/console/roster/search", data={"q": LOOKS_LIKE_A_NUMBER, "csrf": csrf}).text
    assert "钱秀兰" in page and holder_ext in page and "赵桂芝" not in page
    assert last_search(ctx).target == "id_number"


@pytest.mark.parametrize(
    "typing",
    [
        lambda n: f"{n[:6]} {n[6:14]} {n[14:]}",
        lambda n: n.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),
        lambda n: n[:6] + n[8:17],  # the 15-digit old number of the same person
    ],
)
def test_a_number_typed_in_groups_full_width_or_old_finds_its_holder(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], typing: Callable[[str], str]
) -> None:
    number = factories.id_number(region="420106", birth=dt.date(1941, 7, 21))
    with ctx.db() as db:
        ext = factories.beneficiary(db, ctx.keyring, id_number=number, name="孙玉梅").external_id
    csrf = login(app_client, "rev1")
    page = app_client.post("/console/roster/search", data={"q": typing(number), "csrf": csrf}).text
    assert ext in page and "孙玉梅" in page
    assert last_search(ctx).target == "id_number"


def test_a_number_born_on_the_bureaus_today_is_searched_as_a_number(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judged on the bureau's today, not the machine's (docs/security.md, Part DF): the clock held at
    2099-03-09 17:30 UTC, 2099-03-10 in Beijing, a day the machine's date has not reached (as every day from 16:00
    to 24:00 UTC, when it is the day before Beijing's). The number was searched as an external id and its holder
    not found."""
    monkeypatch.setattr(clock, "now_utc", lambda: dt.datetime(2099, 3, 9, 17, 30, tzinfo=dt.UTC))
    number = factories.id_number(region="420106", birth=dt.date(2099, 3, 10), seq=31)
    with ctx.db() as db:
        ext = factories.beneficiary(db, ctx.keyring, id_number=number, name="周春梅").external_id
    csrf = login(app_client, "rev1")
    page = app_client.post("/console/roster/search", data={"q": number, "csrf": csrf}).text
    assert ext in page and "周春梅" in page
    assert last_search(ctx).target == "id_number"
