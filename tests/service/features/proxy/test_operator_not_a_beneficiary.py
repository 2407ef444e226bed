"""A relative who verifies their own identity for proxy certification is not a pensioner: their ID number is
not found by the registry lookup, the session endpoints or the bindings, and a roster listing them later creates
them as an ordinary beneficiary (their verification session has no beneficiary row: a `ProxyClaim`, issue 20)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, BeneficiaryStatus
from tests.service import factories
from tests.service.adapters.http.test_registry_api import upload_roster
from tests.service.conftest import API_KEY
from tests.service.features.proxy.helpers import P, bearer, bind, login, new_elder, verified_operator
from tests.service.test_roster import to_csv

RELATIVE = "李建国"


def relative_opened_verification(client: TestClient) -> str:
    """A relative opens their own real-name verification session; returns their ID number."""
    number = factories.id_number(region="110101", birth=dt.date(1975, 8, 9))
    op = login(client)
    body: dict[str, Any] = {"id_number": number, "name": RELATIVE, "template_consent": True}
    r = client.post(f"{P}/operators/me/verification", json=body, headers=bearer(op["token"]))
    assert r.status_code == 201, r.text
    return number


def test_the_registry_does_not_find_a_relative(client: TestClient) -> None:
    number = relative_opened_verification(client)
    r = client.get("/api/v1/beneficiaries", params={"id_number": number}, headers={"X-API-Key": API_KEY})
    assert r.status_code == 404 and r.json()["error"]["code"] == "BENEFICIARY_UNKNOWN"
    r = client.post("/api/v1/sessions", json={"id_number": number, "channel": "self"}, headers={"X-API-Key": API_KEY})
    assert r.status_code == 404 and r.json()["error"]["code"] == "BENEFICIARY_UNKNOWN"


def test_a_relative_cannot_be_bound_as_an_elder(client: TestClient, ctx: ServiceContext) -> None:
    number = relative_opened_verification(client)
    other = verified_operator(client, ctx)
    r = bind(client, other, number, RELATIVE)
    assert r.status_code == 404 and r.json()["error"]["code"] == "BENEFICIARY_UNKNOWN"
    _, elder_number, elder_name = new_elder(ctx)  # a roster elder still binds
    assert bind(client, other, elder_number, elder_name).status_code == 201


def test_a_relative_put_on_the_roster_becomes_a_beneficiary(client: TestClient, ctx: ServiceContext) -> None:
    number = relative_opened_verification(client)
    report = upload_roster(client, to_csv([["P-REL-1", number, RELATIVE, "", "survivor_pension", "", ""]]))
    assert (report["created"], report["rejected"]) == (1, 0), report
    with ctx.db() as db:
        rows = db.scalars(select(Beneficiary).where(Beneficiary.id_hash == ctx.keyring.id_hash(number))).all()
        assert [(b.external_id, b.status, b.benefit_types) for b in rows] == [
            ("P-REL-1", BeneficiaryStatus.ACTIVE, ["survivor_pension"])
        ]
    r = client.get("/api/v1/beneficiaries", params={"id_number": number}, headers={"X-API-Key": API_KEY})
    assert r.status_code == 200 and r.json()["external_id"] == "P-REL-1"
