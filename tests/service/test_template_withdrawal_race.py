"""The person withdraws the consent to keep their face template while a worker accepts a session of theirs opened
with that consent (service/certification/template_withdrawal.py; docs/security.md, Part AL), on PostgreSQL with
two transactions at once. Whichever comes first, no template is left afterwards and neither fails (the lock order
of service/certification/lock_order.py: the session, then the person). Before: the worker read the consent when
it claimed the job and enrolled the face after the withdrawal."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request

from pipelines.decision.result import Outcome
from pipelines.decision.runner import Template
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CertSession, SessionState, utcnow
from service.certification.processing import _apply
from service.certification.template_withdrawal import withdraw_template
from service.features.proxy import operators
from service.features.proxy import sessions as proxy_sessions
from service.features.proxy.models import ProxyOperator
from service.features.proxy.own_template import withdraw_operator_template
from service.features.wechat.h5 import identity, recovery
from service.features.wechat.models import WeChatSessionLink
from tests.service import factories
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)

WORKER = "w-withdraw"


def in_flight(ctx: ServiceContext) -> tuple[int, str]:
    """A person and their session with consent to keep the template, in the worker's hands."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(
            b.id, template_consent=True, state=SessionState.PROCESSING, worker_id=WORKER, queued_at=utcnow()
        )
        db.add(s)
        db.flush()
        return b.id, s.id


def accept(ctx: ServiceContext, sid: str) -> object:
    tpl = Template(np.ones(8, dtype=np.float32), "test-model")
    return _apply(ctx, sid, WORKER, Outcome.ACCEPT, [], {"decision": "accept"}, tpl)


def withdraw(ctx: ServiceContext, bid: int) -> object:
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        return withdraw_template(db, b)


def settled(ctx: ServiceContext, bid: int, sid: str) -> None:
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None and (b.template, b.template_model, b.template_consent) == (None, None, False)
        assert db.scalar(select(Certification.id).where(Certification.session_id == sid)) is not None


def test_a_withdrawal_first_keeps_the_worker_from_enrolling(pg_ctx: ServiceContext) -> None:  # noqa: F811
    ctx = pg_ctx
    bid, sid = in_flight(ctx)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        withdraw_template(db, b)
        worker, decided = running(lambda: accept(ctx, sid))
        assert until(lambda: lock_waits(ctx) > 0)  # the worker waits for the session the withdrawal holds
    worker.join(30)
    assert decided == [True]
    settled(ctx, bid, sid)
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.template_consent is False


def test_an_accept_first_enrols_and_the_withdrawal_then_erases(pg_ctx: ServiceContext) -> None:  # noqa: F811
    ctx = pg_ctx
    bid, sid = in_flight(ctx)
    holding = threading.Event()

    def pause_after_the_person_is_locked(db: Session, s: CertSession, b: Beneficiary | None) -> bool:
        holding.set()  # the worker holds the session and the person
        assert until(lambda: lock_waits(ctx) > 0)
        return False

    ctx.hooks.accept["probe"] = pause_after_the_person_is_locked
    worker, decided = running(lambda: accept(ctx, sid))
    assert holding.wait(10)
    withdrawer, withdrawn = running(lambda: withdraw(ctx, bid))
    worker.join(30)
    withdrawer.join(30)
    assert decided == [True] and len(withdrawn) == 1 and not isinstance(withdrawn[0], Exception)
    assert withdrawn[0].template_cleared  # type: ignore[attr-defined]  # the template the accept had just stored
    settled(ctx, bid, sid)


# A timed-out session continued (`recovery.continue_session`, "again") while the person withdraws (reviewer rv5):
# the new session must not carry the consent the withdrawal takes away, whichever commits first.
OPENID = "openid-again"


def expired_with_consent(ctx: ServiceContext) -> tuple[int, str]:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(b.id, template_consent=True, state=SessionState.EXPIRED)
        db.add(s)
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        db.flush()
        return b.id, s.id


def again(ctx: ServiceContext, old_id: str) -> str:
    """The "again" request of the person's page, its route called as the app calls it."""
    cookie = f"{identity.COOKIE}={identity.mint(ctx, OPENID)}".encode()
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": [(b"cookie", cookie)]})
    with ctx.db() as db:
        return str(recovery.continue_session(ctx, db, request, old_id)["session_id"])


def consent_of(ctx: ServiceContext, sid: str) -> bool:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        return s.template_consent


def test_a_withdrawal_first_is_waited_for_by_the_continued_session(pg_ctx: ServiceContext) -> None:  # noqa: F811
    ctx = pg_ctx
    bid, old = expired_with_consent(ctx)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        withdraw_template(db, b)
        page, opened = running(lambda: again(ctx, old))
        # Before: "again" read the old session's consent unlocked and opened the new one with it.
        assert until(lambda: lock_waits(ctx) > 0)  # it waits for the old session the withdrawal holds
    page.join(30)
    assert len(opened) == 1 and isinstance(opened[0], str), opened
    assert consent_of(ctx, opened[0]) is False


def test_a_session_continued_first_loses_its_consent_to_the_withdrawal(
    pg_ctx: ServiceContext,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "again" holds the old session and has inserted the new one; the withdrawal waits for it, then must see the
    new session too (a second look once the sessions it waited for are released). Before: it missed it."""
    ctx = pg_ctx
    bid, old = expired_with_consent(ctx)
    holding = threading.Event()

    def pause_before_the_commit(_old: CertSession) -> bool:
        holding.set()  # the old session locked, the new one inserted
        assert until(lambda: lock_waits(ctx) > 0)  # the withdrawal waits for it
        return False

    monkeypatch.setattr(recovery, "card_reusable", pause_before_the_commit)
    page, opened = running(lambda: again(ctx, old))
    assert holding.wait(10)
    withdrawer, withdrawn = running(lambda: withdraw(ctx, bid))
    page.join(30)
    withdrawer.join(30)
    assert len(opened) == 1 and isinstance(opened[0], str), opened
    assert len(withdrawn) == 1 and not isinstance(withdrawn[0], Exception), withdrawn
    assert consent_of(ctx, opened[0]) is False


def test_a_relatives_withdrawal_first_is_waited_for_by_their_verification_continued(
    pg_ctx: ServiceContext,  # noqa: F811
) -> None:
    """The same for a relative's real-name verification continued while they withdraw their own template
    (`proxy.own_template`): "again" waits for the old verification session, and the new one carries no consent."""
    ctx = pg_ctx
    number = factories.id_number(region="110101", birth=dt.date(1975, 1, 2))
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", OPENID, "test").operator
        s = proxy_sessions.open_verification(db, ctx, op, number, "王建国", True).session
        s.state = SessionState.EXPIRED
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        db.commit()
        old, op_id = s.id, op.id
    with ctx.db() as db:
        me = db.get(ProxyOperator, op_id)
        assert me is not None
        withdraw_operator_template(db, ctx, me)
        page, opened = running(lambda: again(ctx, old))
        assert until(lambda: lock_waits(ctx) > 0)
    page.join(30)
    assert len(opened) == 1 and isinstance(opened[0], str), opened
    assert consent_of(ctx, opened[0]) is False
