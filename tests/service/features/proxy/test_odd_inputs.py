"""Odd input to the proxy API answers 422 (the request is invalid), never a 500, on both databases.

PostgreSQL stores and compares no NUL character in a text column: a NUL in a binding id (path or query), a staff
member's id or note, or the name a relative gives for their verification made the query itself fail (500 on
PostgreSQL; SQLite stored it). A name of blanks only was stored as the relative's empty name."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.features.proxy.models import ProxyClaim
from tests.service import factories
from tests.service.conftest import ADMIN, API_KEY
from tests.service.features.proxy.helpers import P, active_binding, bearer, login, new_elder, verified_operator


@pytest.fixture
def raw(client: TestClient) -> TestClient:
    """The app's client answering a 500 instead of raising it (as a phone would see it)."""
    return TestClient(client.app, raise_server_exceptions=False)


def _invalid(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "FIELD_INVALID" and error["message"] == f"填写内容不正确: {field}", r.text


def test_a_nul_in_a_binding_id_is_an_invalid_request(raw: TestClient, client: TestClient, ctx: ServiceContext) -> None:
    op = verified_operator(client, ctx)
    h = bearer(op["token"])
    admin = {"X-API-Key": ADMIN["X-API-Key"]}
    _invalid(raw.delete(f"{P}/bindings/b%00", headers=h), "binding_id")
    _invalid(raw.post(f"{P}/bindings/b%00/sessions", headers=h), "binding_id")
    _invalid(raw.post(f"{P}/bindings/b%00/consent", json={"method": "live_video"}, headers=h), "binding_id")
    staff = {"method": "staff_approval", "staff_id": "s1"}
    _invalid(raw.post(f"{P}/bindings/b%00/consent", json=staff, headers=admin), "binding_id")
    _invalid(raw.post(f"{P}/bindings/b%00/unlock", json={"staff_id": "s1"}, headers=admin), "binding_id")
    _invalid(raw.get(f"{P}/history", params={"binding_id": "b\x00"}, headers=h), "binding_id")
    _invalid(raw.get(f"{P}/elders/e%00/history", headers={"X-API-Key": API_KEY}), "external_id")
    # An unknown id without a NUL is still unknown (404), as before.
    r = raw.delete(f"{P}/bindings/{'x' * 5000}", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND"


def test_a_nul_in_what_staff_type_is_an_invalid_request(
    raw: TestClient, client: TestClient, ctx: ServiceContext
) -> None:
    op = verified_operator(client, ctx)
    _, number, name = new_elder(ctx)
    b = active_binding(client, op, number, name)
    url = f"{P}/bindings/{b['binding_id']}"
    r = raw.post(f"{url}/consent", json={"method": "staff_approval", "staff_id": "s\x00"}, headers=ADMIN)
    _invalid(r, "staff_id")
    _invalid(raw.post(f"{url}/unlock", json={"staff_id": "s\x00"}, headers=ADMIN), "staff_id")
    _invalid(raw.post(f"{url}/unlock", json={"staff_id": "s1", "note": "家访\x00"}, headers=ADMIN), "note")
    assert raw.post(f"{url}/unlock", json={"staff_id": "s1", "note": "家访核实"}, headers=ADMIN).status_code == 200


def test_the_relatives_name_is_a_name(raw: TestClient, client: TestClient, ctx: ServiceContext) -> None:
    op = login(client)
    h = bearer(op["token"])
    _, number, _name = new_elder(ctx)
    for name in ("李\x00", "   ", "\t"):
        body = {"id_number": number, "name": name, "template_consent": True}
        _invalid(raw.post(f"{P}/operators/me/verification", json=body, headers=h), "name")
    with ctx.db() as db:
        assert db.query(ProxyClaim).count() == 0
    binding = {"elder_name": "王\x00", "elder_id_number": number, "relationship": "child"}
    _invalid(
        raw.post(f"{P}/bindings", json=binding, headers=bearer(verified_operator(client, ctx)["token"])), "elder_name"
    )
    ok = {"id_number": number, "name": " 李建国 ", "template_consent": True}
    assert raw.post(f"{P}/operators/me/verification", json=ok, headers=h).status_code == 201


def test_a_mistyped_number_is_answered_as_typed_not_as_a_photo(client: TestClient) -> None:
    """A relative's typed ID number with a wrong check digit was answered with the card photo's reason,
    "身份证号码校验未通过,请核对后重拍": nobody took a photo. Now a typed number's own message."""
    h = bearer(login(client)["token"])
    number = factories.id_number()
    typo = number[:-1] + ("0" if number[-1] != "0" else "1")
    body = {"id_number": typo, "name": "李建国", "template_consent": False}
    r = client.post(f"{P}/operators/me/verification", json=body, headers=h)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "PROXY_ID_NUMBER" and "重拍" not in error["message"]
    assert error["message"] == "身份证号码有误,请核对后重新填写"
