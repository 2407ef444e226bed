"""The elder's relative slots (at most two relatives consented to) when consents are given at once, on PostgreSQL.

Staff approving two waiting relatives' bindings of one elder at the same moment (two counters, or a counter and
a home visit) each counted the elder's other consented relatives before the other had committed, so both passed
the slot check and the elder had three relatives. Staff consent locked the binding alone; a worker accepting an
elder's consent video locks the elder's row. Now staff consent locks the elder's row too, so one waits for the
other and is refused (409 PROXY_LIMIT_REACHED), as at any other time."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from proxy_auth import Binding, ConsentMethod, ProxyPolicy, check_relative_slot
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.features.proxy import bindings, operators
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator
from tests.service import factories
from tests.service.features.proxy.helpers import staff_consent
from tests.service.test_lock_order import lock_waits, until
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)


def _relative(ctx: ServiceContext, channel_id: str) -> str:
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", channel_id, "test").operator
        number = factories.id_number(region="110101")
        operators.mark_verified(op, ctx.keyring.id_hash(number), number[:4] + "**", "李建国")
        return op.id


def _bind(ctx: ServiceContext, operator_id: str, elder: Beneficiary, number: str) -> str:
    with ctx.db() as db:
        op = db.get(ProxyOperator, operator_id)
        assert op is not None
        return bindings.bind(db, ctx, op, elder.name, number, "child").id


def test_two_staff_consents_at_once_do_not_exceed_the_elders_relatives(
    pg_ctx: ServiceContext,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = pg_ctx
    with ctx.db() as db:
        number = factories.id_number(birth=dt.date(1938, 5, 2))
        elder = factories.beneficiary(db, ctx.keyring, id_number=number)
        db.expunge(elder)
    daughter = _bind(ctx, _relative(ctx, "daughter"), elder, number)
    with ctx.db() as db:
        row = db.get(ProxyBinding, daughter)
        assert row is not None
        assert bindings.record_consent(db, row, ConsentMethod.STAFF_APPROVAL, "s0", "test") is None
    waiting = [_bind(ctx, _relative(ctx, who), elder, number) for who in ("son", "nephew")]

    first_holds = threading.Event()

    def hold_first(relative_id: str, elder_bindings: Sequence[Binding], policy: ProxyPolicy) -> None:
        if not first_holds.is_set():  # the first consent, having counted the slots, waits for the second
            first_holds.set()
            until(lambda: lock_waits(ctx) > 0, timeout=5)
        check_relative_slot(relative_id, elder_bindings, policy)

    monkeypatch.setattr(bindings, "check_relative_slot", hold_first)

    def consent(binding_id: str) -> Callable[[], object]:
        def run() -> object:
            with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as client:
                r = staff_consent(client, binding_id)
                return r.json()["status"] if r.status_code == 200 else r.json()["error"]["code"]

        return run

    one, first = started(consent(waiting[0]))
    assert first_holds.wait(10)
    two, second = started(consent(waiting[1]))
    one.join(30)
    two.join(30)
    assert (first, second) == (["active"], ["PROXY_LIMIT_REACHED"])
    with ctx.db() as db:
        active = select(func.count()).select_from(ProxyBinding).where(ProxyBinding.status == BindingStatus.ACTIVE)
        assert db.scalar(active) == 2
