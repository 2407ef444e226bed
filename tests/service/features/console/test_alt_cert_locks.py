"""Two alternative certifications of one person at once (two staff at two counters, or a request certified
twice) on PostgreSQL: the lock order of service/certification/lock_order.py (the person's row before the new
session's insert) makes the second wait instead of deadlocking."""

from __future__ import annotations

import threading

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification
from service.features.console.alt_cert import certify_alternative
from service.infra.clock import local_today
from tests.service import factories
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)


def test_two_alternative_certifications_of_one_person_do_not_deadlock(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The first certification is held right after inserting its session; the second then runs. Before: both
    inserts took the person's row FOR KEY SHARE, both then asked for it FOR UPDATE (`accept_session`), and
    PostgreSQL aborted one (DeadlockDetected, a 500 at the counter). Now each locks the row first: the second
    waits for the first to commit, then certifies too."""
    ctx = pg_ctx
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    first_inserted, go_on = threading.Event(), threading.Event()

    def certify(hold: bool) -> object:
        with ctx.db() as db:
            if hold:

                @event.listens_for(db, "after_flush")
                def pause(session: Session, _ctx: object) -> None:
                    if not first_inserted.is_set():
                        first_inserted.set()
                        go_on.wait(10)

            b = db.get(Beneficiary, bid)
            assert b is not None
            return certify_alternative(db, ctx, b, "counter", local_today(ctx.settings), None, {"note": "x"}).kind

    first, first_out = running(lambda: certify(True))
    assert first_inserted.wait(10)
    second, second_out = running(lambda: certify(False))
    assert until(lambda: lock_waits(ctx) > 0 or not second.is_alive())  # the second is stuck on the first's row
    go_on.set()
    first.join(30)
    second.join(30)
    assert (first_out, second_out) == (["counter"], ["counter"])
    with ctx.db() as db:
        n = db.scalar(select(func.count()).select_from(Certification).where(Certification.beneficiary_id == bid))
    assert n == 2


def test_one_counter_form_sent_twice_at_once_certifies_once(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """A double click on PostgreSQL: two requests with the same form token at once. The second waits for the
    person's row, then finds the first's record under the lock and records nothing (before: two
    certifications)."""
    ctx = pg_ctx
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    first_inserted, go_on = threading.Event(), threading.Event()

    def certify(hold: bool) -> object:
        with ctx.db() as db:
            if hold:

                @event.listens_for(db, "after_flush")
                def pause(session: Session, _ctx: object) -> None:
                    if not first_inserted.is_set():
                        first_inserted.set()
                        go_on.wait(10)

            b = db.get(Beneficiary, bid)
            assert b is not None
            today = local_today(ctx.settings)
            return certify_alternative(db, ctx, b, "counter", today, None, {"note": "x"}, form="tab-1").id

    first, first_out = running(lambda: certify(True))
    assert first_inserted.wait(10)
    second, second_out = running(lambda: certify(False))
    assert until(lambda: lock_waits(ctx) > 0 or not second.is_alive())
    go_on.set()
    first.join(30)
    second.join(30)
    assert first_out == second_out and isinstance(first_out[0], int)
    with ctx.db() as db:
        n = db.scalar(select(func.count()).select_from(Certification).where(Certification.beneficiary_id == bid))
    assert n == 1
