"""A relative is a person, not a channel login: one person's accounts (a WeChat openid, one or more phone numbers),
each verified with the same ID number, share the binding limits, count once in the elder's slots and carry the
pair's record (flag, lock, failures); the elder's consent stays with the account it was given to.

Before: every rule counted per account, so a second phone number gave five more active bindings, eight more in
the lifetime history, a second slot of the same elder, and a binding free of the flag and lock the person's
first account carried (the relative caught filming themselves came back clean)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.features.proxy import bindings, operators
from service.features.proxy.models import ProxyBinding, ProxyOperator
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import (
    P,
    active_binding,
    bearer,
    bind,
    login,
    new_elder,
    verify_directly,
)
from tests.service.test_lock_order import lock_waits, until
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)


def _same_person(client: TestClient, ctx: ServiceContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two accounts of one person: WeChat and a phone number, both verified with the same ID number."""
    wechat = login(client)
    number = verify_directly(ctx, wechat["operator_id"])
    phone = login(client, channel="phone")
    verify_directly(ctx, phone["operator_id"], number=number)
    return wechat, phone


def test_the_active_and_lifetime_limits_count_every_account_of_the_person(
    client: TestClient, ctx: ServiceContext
) -> None:
    wechat, phone = _same_person(client, ctx)
    for _ in range(5):
        active_binding(client, wechat, *new_elder(ctx)[1:])
    r = bind(client, phone, *new_elder(ctx)[1:])
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED", r.text
    # Ended bindings of either account count in the person's lifetime history (8).
    for b in client.get(f"{P}/bindings", headers=bearer(wechat["token"])).json():
        assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=bearer(wechat["token"])).status_code == 200
    for _ in range(3):
        b = active_binding(client, phone, *new_elder(ctx)[1:])
        assert client.delete(f"{P}/bindings/{b['binding_id']}", headers=bearer(phone["token"])).status_code == 200
    r = bind(client, phone, *new_elder(ctx)[1:])
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED", r.text
    # Another person is not affected.
    other = login(client)
    verify_directly(ctx, other["operator_id"])
    assert bind(client, other, *new_elder(ctx)[1:]).status_code == 201


def test_a_second_account_needs_the_elders_consent_again_and_takes_no_second_slot(
    client: TestClient, ctx: ServiceContext
) -> None:
    """A new account of the person (a lost phone: nobody can end the old account's binding) may bind the elder
    again, with the elder's consent again; it is the same relative, so the elder's other slot stays free."""
    wechat, phone = _same_person(client, ctx)
    _, number, name = new_elder(ctx)
    active_binding(client, wechat, number, name)
    again = bind(client, phone, number, name)
    assert again.status_code == 201 and again.json()["status"] == "pending_consent", again.text
    daughter = login(client)
    verify_directly(ctx, daughter["operator_id"])
    assert active_binding(client, daughter, number, name)["status"] == "active"
    # Consenting to the person's second account takes no third slot: it is the same relative.
    r = client.post(f"{P}/bindings/{again.json()['binding_id']}/consent", json=_STAFF, headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    nephew = login(client)
    verify_directly(ctx, nephew["operator_id"])
    r = bind(client, nephew, number, name)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROXY_LIMIT_REACHED", r.text


def test_a_new_account_does_not_shed_the_flag_and_lock(client: TestClient, ctx: ServiceContext) -> None:
    wechat, phone = _same_person(client, ctx)
    _, number, name = new_elder(ctx)
    b = active_binding(client, wechat, number, name)
    # The relative filmed themselves: flagged and locked, and failures on record.
    factories.update(ctx, ProxyBinding, b["binding_id"], flagged=True, locked=True, failures=2)
    # The flag, the lock and the failures go with the person to their other account's binding, which needs the
    # elder's consent again; consented, it is still locked until staff have looked.
    again = bind(client, phone, number, name)
    assert again.status_code == 201, again.text
    body = again.json()
    assert (body["status"], body["flagged"], body["locked"], body["failures"]) == ("pending_consent", True, True, 2)
    r = client.post(f"{P}/bindings/{body['binding_id']}/consent", json=_STAFF, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post(f"{P}/bindings/{body['binding_id']}/sessions", headers=bearer(phone["token"]))
    assert r.status_code == 423 and r.json()["error"]["code"] == "PROXY_BINDING_LOCKED"
    # A consented, unflagged binding of one account gives the other account no consent either.
    _, number2, name2 = new_elder(ctx)
    active_binding(client, wechat, number2, name2)
    assert bind(client, phone, number2, name2).json()["status"] == "pending_consent"


_STAFF = {"method": "staff_approval", "staff_id": "s1"}


def test_two_accounts_binding_at_once_share_the_limit(
    pg_ctx: ServiceContext,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both of the person's accounts bind a new elder at once, one slot short of the active limit: the second
    waits for the first (the person's accounts are locked together) and is refused. Before each locked only its
    own account, so both passed the limit."""
    ctx = pg_ctx
    with ctx.db() as db:
        ops = [operators.login(db, ctx, channel, "13800000000", "test").operator for channel in ("wechat", "phone")]
        relative = factories.id_number(region="110101")
        for op in ops:
            operators.mark_verified(op, ctx.keyring.id_hash(relative), relative[:4] + "**", "李建国")
        db.flush()
        for _ in range(4):
            b = factories.beneficiary(db, ctx.keyring, id_number=factories.id_number(birth=dt.date(1938, 5, 2)))
            bindings.bind(db, ctx, ops[0], b.name, _number(ctx, b), "child")
        new = [factories.beneficiary(db, ctx.keyring, id_number=factories.id_number(birth=dt.date(1939, 1, 2)))]
        new.append(factories.beneficiary(db, ctx.keyring, id_number=factories.id_number(birth=dt.date(1939, 1, 3))))
        elders = [(b.name, _number(ctx, b)) for b in new]
        op_ids = [op.id for op in ops]
    first_holds = threading.Event()
    read = bindings.elder_bindings

    def hold_first(db: Session, elder_id: int) -> list[ProxyBinding]:
        if not first_holds.is_set():  # the first binder, holding the person's accounts, waits for the second
            first_holds.set()
            until(lambda: lock_waits(ctx) > 0, timeout=5)
        return read(db, elder_id)

    monkeypatch.setattr(bindings, "elder_bindings", hold_first)

    def binding(i: int) -> Callable[[], object]:
        def run() -> object:
            with ctx.db() as db:
                op = db.get(ProxyOperator, op_ids[i])
                assert op is not None
                return bindings.bind(db, ctx, op, *elders[i], "child").status

        return run

    one, first = started(binding(0))
    assert first_holds.wait(10)
    two, second = started(binding(1))
    one.join(30)
    two.join(30)
    assert first == ["pending_consent"]
    assert second == ["PROXY_LIMIT_REACHED"]


def _number(ctx: ServiceContext, b: Beneficiary) -> str:
    return ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
