"""The row-lock order (service/certification/lock_order.py; docs/security.md, Part L), on PostgreSQL.

Two transactions that lock the same rows in opposite orders deadlock: PostgreSQL aborts one of them
(DeadlockDetected), so a roster import, a worker's decision or a relative's request failed. Each inversion found
is reproduced here by holding one transaction at the point where it has taken its first rows, letting the other
take its own, and then letting both go on:

- a roster import giving an elder's record another ID number (the elder's row, then the relatives' bindings)
  against a worker accepting a proxy certification of that elder (the operator and binding, then the elder);
- a relative binding the elder again (the elder, then the operator) against that worker;
- a relative opening a proxy session on the binding (the binding, then, by the new rows' foreign keys, the elder
  and the operator) against that worker;
- a roster import updating people in the file's order (B, then A) against the cycle run locking them by id (A,
  then B), and against another import listing them the other way round.

With the order kept, one waits for the other and both complete. A machine accept of a proxy certification needs
the operator's face template and real media: the worker's step that applies the decision is driven directly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import service.schema  # noqa: F401  (every table on the metadata)
from pipelines.decision.result import Outcome
from proxy_auth import ConsentMethod
from service.certification.context import ServiceContext
from service.certification.contract import IdentityChange
from service.certification.cycle import run_cycle
from service.certification.errors import ServiceError
from service.certification.lock_order import LOCK_ORDER
from service.certification.models import Beneficiary, Certification, CertSession, SessionState, utcnow
from service.certification.processing import _apply
from service.certification.roster import import_roster, import_terms
from service.features.proxy import bindings, hooks, operators, sessions
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator
from service.infra.clock import local_today
from service.infra.db.engine import Base
from tests.service import factories
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)

WORKER = "w1"


@dataclass(frozen=True)
class ProxyCase:
    """An elder, their verified relative's active binding and a proxy certification the worker is deciding."""

    external_id: str
    name: str
    operator_id: str
    binding_id: str
    session_id: str


def proxy_case(ctx: ServiceContext) -> ProxyCase:
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring, id_number=factories.id_number(birth=dt.date(1938, 5, 2)))
        op = operators.login(db, ctx, "wechat", f"openid-{elder.external_id}", "test").operator
        relative = factories.id_number(region="110101")
        operators.mark_verified(op, ctx.keyring.id_hash(relative), relative[:4] + "**", "李建国")
        db.flush()
        row = bindings.bind(
            db, ctx, op, elder.name, ctx.keyring.decrypt_field(elder.id_enc, "beneficiary.id_number"), "child"
        )
        assert bindings.record_consent(db, row, ConsentMethod.STAFF_APPROVAL, "staff-007", "test") is None
        s = sessions.open_certification(db, ctx, op, row).session
        s.state, s.worker_id, s.queued_at = SessionState.PROCESSING, WORKER, utcnow()
        return ProxyCase(elder.external_id, elder.name, op.id, row.id, s.id)


def worker_accepts(ctx: ServiceContext, case: ProxyCase) -> Callable[[], object]:
    return lambda: _apply(ctx, case.session_id, WORKER, Outcome.ACCEPT, [], {"decision": "accept"}, None)


def running(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """``fn`` in a thread; what it returned, or whatever it raised (a deadlock's OperationalError too), lands in
    the list."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:  # the point: a deadlock surfaces as an exception in one of the two
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)  # never keeps a failed test from ending
    t.start()
    return t, out


def lock_waits(ctx: ServiceContext) -> int:
    """Backends of this database waiting for a lock now."""
    with ctx.engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def until(done: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.05)
    return False


def roster_giving_another_number(case: ProxyCase) -> bytes:
    buf = io.StringIO()
    number = factories.id_number(birth=dt.date(1941, 2, 3))
    csv.writer(buf).writerows(
        [
            ["external_id", "id_number", "name", "benefit_types"],
            [case.external_id, number, case.name, "enterprise_pension"],
        ]
    )
    return buf.getvalue().encode()


def giving_another_number(ctx: ServiceContext, case: ProxyCase) -> Callable[[], object]:
    """A roster import that gives the elder's record another ID number; it returns how many numbers changed."""

    def run() -> object:
        with ctx.db() as db:
            data = roster_giving_another_number(case)
            return len(
                import_roster(db, ctx.keyring, "roster.csv", data, "admin:test", import_terms(ctx)).identity_changed
            )

    return run


def certifications(ctx: ServiceContext, session_id: str) -> int:
    with ctx.db() as db:
        return int(
            db.scalar(select(func.count()).select_from(Certification).where(Certification.session_id == session_id))
            or 0
        )


def settled_accept(ctx: ServiceContext, case: ProxyCase) -> None:
    with ctx.db() as db:
        s = db.get(CertSession, case.session_id)
        assert s is not None and (s.state, s.decision) == (SessionState.DECIDED, "accept")
    assert certifications(ctx, case.session_id) == 1


def test_the_lock_order_names_real_tables() -> None:
    assert set(LOCK_ORDER) <= set(Base.metadata.tables)


def test_a_roster_change_of_id_number_and_a_proxy_accept_of_the_elder_do_not_deadlock(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The worker holds the operator and the binding when the import updates the elder's row and, in its
    identity-change hook, asks for the binding; the worker then asks for the elder. Before: each waited for the
    other and PostgreSQL aborted one (the import failed, or the worker's decision did). Now the worker takes the
    elder first: the import waits for the accept, then revokes the binding."""
    ctx = pg_ctx
    case = proxy_case(ctx)
    worker_holds_binding, import_holds_elder = threading.Event(), threading.Event()

    def accept_when_the_import_has_moved(db: Session, s: CertSession, elder: Beneficiary | None) -> bool:
        # Called after the decided hooks took the operator and the binding, before the elder's row lock.
        worker_holds_binding.set()
        assert until(lambda: import_holds_elder.is_set() or lock_waits(ctx) > 0)
        return hooks.on_accept(db, s, elder)

    def revoke_once_the_worker_holds_the_binding(db: Session, change: IdentityChange) -> None:
        import_holds_elder.set()  # the elder's row is updated (locked) by now
        worker_holds_binding.wait(10)
        bindings.end_for_identity_change(db, change)

    ctx.hooks.accept["proxy"] = accept_when_the_import_has_moved
    ctx.hooks.identity_changes["proxy"] = revoke_once_the_worker_holds_the_binding

    worker, decided = running(worker_accepts(ctx, case))
    assert worker_holds_binding.wait(10)
    importer, imported = running(giving_another_number(ctx, case))
    worker.join(30)
    importer.join(30)
    assert (decided, imported) == ([True], [1])
    settled_accept(ctx, case)
    with ctx.db() as db:
        row = db.get(ProxyBinding, case.binding_id)
        assert row is not None and row.status == BindingStatus.REVOKED


def test_binding_the_elder_again_while_a_proxy_accept_is_applied_does_not_deadlock(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The relative binds the elder again (a second tap) while their certification is accepted: `bind` locks the
    elder then the operator. Before: the worker, holding the operator, then asked for the elder; one of the two
    was aborted. Now the second binding waits and is refused as before (already bound)."""
    ctx = pg_ctx
    case = proxy_case(ctx)
    worker_holds_binding = threading.Event()

    def accept_once_bind_waits(db: Session, s: CertSession, elder: Beneficiary | None) -> bool:
        worker_holds_binding.set()
        assert until(lambda: lock_waits(ctx) > 0)  # `bind` waits for a row this transaction holds
        return hooks.on_accept(db, s, elder)

    ctx.hooks.accept["proxy"] = accept_once_bind_waits

    def bind_again() -> object:
        with ctx.db() as db:
            op = db.get(ProxyOperator, case.operator_id)
            elder = db.scalar(select(Beneficiary).where(Beneficiary.external_id == case.external_id))
            assert op is not None and elder is not None
            number = ctx.keyring.decrypt_field(elder.id_enc, "beneficiary.id_number")
            try:
                return bindings.bind(db, ctx, op, case.name, number, "child").id
            except ServiceError as exc:
                return exc.code

    worker, decided = running(worker_accepts(ctx, case))
    assert worker_holds_binding.wait(10)
    binder, bound = running(bind_again)
    worker.join(30)
    binder.join(30)
    assert decided == [True]
    assert bound == ["PROXY_ALREADY_BOUND"]  # already bound to this elder (the same account: a retried bind)
    settled_accept(ctx, case)


def test_opening_a_proxy_session_while_a_proxy_accept_is_applied_does_not_deadlock(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The relative opens another session on the binding: the request locks the binding, and the new session's
    rows (their foreign keys) then take the elder's and the operator's rows. Before: the worker, holding the
    operator, waited for the binding, and the request for the operator; one was aborted. Now the request takes
    the elder and the operator before the binding, and the worker waits for it."""
    ctx = pg_ctx
    case = proxy_case(ctx)
    with ctx.db() as db:
        op = db.get(ProxyOperator, case.operator_id)
        assert op is not None
        row = bindings.own_binding(db, op, case.binding_id, for_update=True)
        worker, decided = running(worker_accepts(ctx, case))
        assert until(lambda: lock_waits(ctx) > 0)  # the worker waits for this request's locks
        opened = sessions.open_certification(db, ctx, op, row).session.id
    worker.join(30)
    assert decided == [True]
    settled_accept(ctx, case)
    with ctx.db() as db:
        assert db.get(CertSession, opened) is not None


@dataclass(frozen=True)
class Person:
    id: int
    external_id: str
    id_number: str


def two_lapsed(ctx: ServiceContext) -> tuple[Person, Person]:
    """Two active people whose validity ended yesterday (the cycle run suspends both), in id order."""
    yesterday = local_today(ctx.settings) - dt.timedelta(days=1)
    with ctx.db() as db:
        numbers = factories.id_number(), factories.id_number()
        a, b = (factories.beneficiary(db, ctx.keyring, id_number=n, valid_until=yesterday) for n in numbers)
        return Person(a.id, a.external_id, numbers[0]), Person(b.id, b.external_id, numbers[1])


def roster_of(people: list[Person], name: str) -> bytes:
    """A file listing `people` in this order, each under `name` (a change: every row is an UPDATE)."""
    buf = io.StringIO()
    rows = [[p.external_id, p.id_number, name, "enterprise_pension"] for p in people]
    csv.writer(buf).writerows([["external_id", "id_number", "name", "benefit_types"], *rows])
    return buf.getvalue().encode()


def importing(ctx: ServiceContext, data: bytes) -> Callable[[], object]:
    def run() -> object:
        with ctx.db() as db:
            return import_roster(db, ctx.keyring, "roster.csv", data, "admin:test", import_terms(ctx)).updated

    return run


class HeldAfterFirstUpdate:
    """Runs a function in a thread that, right after its first UPDATE of a beneficiary (that row locked, the
    transaction open), sets `updated` and stays there until `go_on()`."""

    def __init__(self, ctx: ServiceContext, go_on: Callable[[], bool]) -> None:
        self.updated, self.go_on, self.thread = threading.Event(), go_on, -1
        event.listen(ctx.engine, "after_cursor_execute", self.after_execute)

    def after_execute(self, conn: object, cursor: object, statement: str, *_: object) -> None:
        ours = threading.get_ident() == self.thread and statement.startswith("UPDATE beneficiaries")
        if ours and not self.updated.is_set():
            self.updated.set()
            assert until(self.go_on)

    def running(self, fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
        def held() -> object:
            self.thread = threading.get_ident()
            return fn()

        return running(held)


def names(ctx: ServiceContext, *people: Person) -> list[tuple[str, str]]:
    with ctx.db() as db:
        rows = db.execute(
            select(Beneficiary.name, Beneficiary.status)
            .where(Beneficiary.id.in_([p.id for p in people]))
            .order_by(Beneficiary.id)
        )
        return [(name, str(status)) for name, status in rows]


def test_a_roster_import_and_the_cycle_run_over_the_same_people_do_not_deadlock(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The file lists B before A; the cycle run locks the lapsed A, then B (by id). Before: the import updated B
    (its row locked) and waited for A, which the cycle run held while it waited for B; PostgreSQL aborted one.
    Now the import locks A and B by id before its first UPDATE: the cycle run waits for it, then suspends both."""
    ctx = pg_ctx
    a, b = two_lapsed(ctx)
    held = HeldAfterFirstUpdate(ctx, lambda: lock_waits(ctx) > 0)  # until the cycle run waits for a row
    importer, imported = held.running(importing(ctx, roster_of([b, a], "王秀兰")))
    assert held.updated.wait(10)

    def cycle_run() -> object:
        with ctx.db() as db:
            return run_cycle(db, local_today(ctx.settings), ctx.rules, cases=ctx.hooks.case_sources())

    cycle, suspended = running(cycle_run)
    importer.join(30)
    cycle.join(30)
    assert (imported, suspended) == ([2], [[a.id, b.id]])
    assert names(ctx, a, b) == [("王秀兰", "suspended")] * 2


def test_two_roster_imports_listing_the_same_people_in_other_orders_do_not_deadlock(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """One file lists B, A; the other A, B. Before: the first updated B, the second A, and each then waited for
    the other's row; PostgreSQL aborted one. Now each locks A, then B before writing: the second waits for the
    first, then applies its own names over it."""
    ctx = pg_ctx
    a, b = two_lapsed(ctx)
    held = HeldAfterFirstUpdate(ctx, lambda: lock_waits(ctx) > 0)  # until the second import waits for a row
    first, first_updated = held.running(importing(ctx, roster_of([b, a], "王秀兰")))
    assert held.updated.wait(10)
    second, second_updated = running(importing(ctx, roster_of([a, b], "李秀兰")))
    first.join(30)
    second.join(30)
    assert (first_updated, second_updated) == ([2], [2])
    assert names(ctx, a, b) == [("李秀兰", "active")] * 2


def test_a_staff_accept_racing_a_roster_change_of_id_number_certifies_nobody(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """Staff accept a relative's proxy certification of the elder while a roster import gives the elder's record
    another ID number (the import revokes the relative's binding: the session was opened for the previous
    person). Before: the staff transaction read the binding (still active: the import had not committed), then
    waited for the elder's row, and certified the record's new person with the old person's relative's session.
    Now it takes the elder's row before the accept hooks read the binding: it waits for the import, then sees the
    binding revoked and certifies nobody."""
    from service.certification.review import settle  # lazy: only this test settles a case

    ctx = pg_ctx
    case = proxy_case(ctx)
    with ctx.db() as db:
        s = db.get(CertSession, case.session_id)
        assert s is not None
        s.state, s.decision = SessionState.DECIDED, "review"
    revoked = threading.Event()

    def revoke_then_hold(db: Session, change: IdentityChange) -> None:
        bindings.end_for_identity_change(db, change)
        revoked.set()  # the binding revoked, the elder's row changed: neither committed yet
        assert until(lambda: lock_waits(ctx) > 0)  # until the staff accept waits for a row the import holds

    ctx.hooks.identity_changes["proxy"] = revoke_then_hold

    def staff_accepts() -> object:
        with ctx.db() as db:
            s = db.get(CertSession, case.session_id)
            assert s is not None
            return settle(db, ctx, s, "accept", "rev1", "ok", "staff:rev1", case_checked=True)["decision"]

    importer, imported = running(giving_another_number(ctx, case))
    assert revoked.wait(10)
    staff, settled = running(staff_accepts)
    importer.join(30)
    staff.join(30)
    assert imported == [1]
    assert [getattr(r, "code", r) for r in settled] == ["PROXY_BINDING_REVOKED"]
    assert certifications(ctx, case.session_id) == 0


def lockable_now(ctx: ServiceContext, person: Person) -> bool:
    """Whether another transaction could lock the person's row at once (FOR UPDATE NOWAIT)."""
    with ctx.engine.connect() as conn:
        try:
            conn.execute(text("SELECT id FROM beneficiaries WHERE id = :id FOR UPDATE NOWAIT"), {"id": person.id})
        except OperationalError:
            return False
        finally:
            conn.rollback()
    return True


def test_a_roster_import_leaves_the_rows_it_does_not_change_unlocked(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """A yearly full-roster import lists everyone, most unchanged. It locks only the records it will change: while
    it runs, an upload or an accept of anyone else must not wait for it (it did when the import locked every
    record its file named)."""
    ctx = pg_ctx
    a, b = two_lapsed(ctx)
    assert importing(ctx, roster_of([a, b], "王秀兰"))() == 2
    buf = io.StringIO()
    rows = [[b.external_id, b.id_number, "王秀兰", "enterprise_pension"]]  # as stored: unchanged
    rows.append([a.external_id, a.id_number, "李秀兰", "enterprise_pension"])  # renamed: an UPDATE
    csv.writer(buf).writerows([["external_id", "id_number", "name", "benefit_types"], *rows])
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, "roster.csv", buf.getvalue().encode(), "admin:test", import_terms(ctx))
        assert (report.updated, report.unchanged) == (1, 1)
        assert (lockable_now(ctx, a), lockable_now(ctx, b)) == (False, True)  # the import's transaction is open
    assert names(ctx, a, b) == [("李秀兰", "active"), ("王秀兰", "active")]
