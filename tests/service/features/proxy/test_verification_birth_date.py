"""A relative's typed ID number is judged on the bureau's calendar (docs/security.md, Part DF): its birth
date may be the bureau's today, not the machine's.

The clock is held at 2099-03-09 17:30 UTC, 2099-03-10 01:30 in Beijing, a day the machine's own date (`date.today()`)
has not reached: what the old check did each day from 16:00 to 24:00 UTC, when the machine's date is the day before
Beijing's, held still so that the test fails the same way at any hour."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.infra import clock
from tests.service import factories
from tests.service.features.proxy.helpers import P, bearer, login

INSTANT = dt.datetime(2099, 3, 9, 17, 30, tzinfo=dt.UTC)
BEIJING_DAY = dt.date(2099, 3, 10)


@pytest.fixture
def held_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: INSTANT)


def test_a_number_born_on_the_bureaus_today_is_accepted_and_the_next_day_refused(
    client: TestClient, ctx: ServiceContext, held_clock: None
) -> None:
    assert clock.local_today(ctx.settings) == BEIJING_DAY
    h = bearer(login(client)["token"])
    tomorrow = {"id_number": factories.id_number(birth=BEIJING_DAY + dt.timedelta(days=1), seq=11), "name": "李建国"}
    r = client.post(f"{P}/operators/me/verification", json=tomorrow | {"template_consent": False}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "PROXY_ID_NUMBER", r.text  # a future birth date
    today = {"id_number": factories.id_number(birth=BEIJING_DAY, seq=12), "name": "李建国"}
    r = client.post(f"{P}/operators/me/verification", json=today | {"template_consent": False}, headers=h)
    assert r.status_code == 201, r.text  # was 422 PROXY_ID_NUMBER: "born tomorrow" by the machine's date
