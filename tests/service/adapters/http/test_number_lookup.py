"""A look-up by ID number sends the number in the body, never in the URL: a URL reaches the access logs of every
proxy and gateway in front of the service, which the service's own log masking never sees."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry
from tests.service import factories


def test_a_lookup_by_number_takes_the_number_in_the_body(client: TestClient, ctx: ServiceContext) -> None:
    number = factories.id_number(region="110105", seq=77)
    with ctx.db() as db:
        external_id = factories.beneficiary(db, ctx.keyring, id_number=number).external_id
    r = client.post("/api/v1/beneficiaries/lookup", json={"id_number": number})
    assert r.status_code == 200, r.text
    assert r.json()["external_id"] == external_id and number not in r.text
    assert number not in str(r.request.url)
    with ctx.db() as db:
        reads = db.scalars(select(AuditEntry).where(AuditEntry.action == "beneficiary.read")).all()
        assert [e.detail for e in reads if e.target == external_id] == [{"by": "id_number"}]

    unknown = factories.id_number(region="110105", seq=78)
    r = client.post("/api/v1/beneficiaries/lookup", json={"id_number": unknown})
    assert r.status_code == 404 and r.json()["error"]["code"] == "BENEFICIARY_UNKNOWN" and unknown not in r.text
    r = client.post("/api/v1/beneficiaries/lookup", json={"id_number": number * 4})
    assert r.status_code == 422 and number not in r.text  # a validation error names the field, not the value
    assert (
        client.post("/api/v1/beneficiaries/lookup", json={"id_number": number}, headers={"X-API-Key": "x"}).status_code
        == 401
    )

    operation = client.get("/openapi.json").json()["paths"]["/api/v1/beneficiaries"]["get"]
    assert operation["deprecated"] is True and "/api/v1/beneficiaries/lookup" in operation["description"]
