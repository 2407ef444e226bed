"""The audit chain's head recorded outside the database after every commit (docs/operations.md, *Audit chain
anchors*): the daily anchor alone left the day's tail open, so a database writer could delete the entries of the
hours since the last daily run and the chain would still verify."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from service.certification.audit_anchor import HEAD_KEY, check_anchors, read_head, write_head
from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.audit_chain import record, verify_chain
from tests.service.features.console.conftest import login


def newest(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.max(ConsoleAuditEntry.seq))) or 0)


def test_each_staff_action_records_the_head_and_a_cut_tail_is_found(
    ctx: ServiceContext, app_client: TestClient, staff_users: dict[str, int]
) -> None:
    login(app_client, "rev1")
    head = read_head(ctx.storage)
    assert head is not None and head.seq == newest(ctx) >= 1  # the login's entry, right after its commit
    app_client.get("/console/queue")
    login(app_client, "rev1")
    last = newest(ctx)
    assert last > head.seq and read_head(ctx.storage).seq == last  # type: ignore[union-attr]
    with ctx.db() as db:
        assert verify_chain(db).ok and check_anchors(db, ctx.storage).ok
        db.execute(delete(ConsoleAuditEntry).where(ConsoleAuditEntry.seq == last))  # the day's last action gone
    with ctx.db() as db:
        assert verify_chain(db).ok  # the chain alone cannot tell a cut tail
        check = check_anchors(db, ctx.storage)
        assert not check.ok and check.seq == last and "is gone" in check.problem


def test_a_rolled_back_entry_records_nothing_and_the_head_never_goes_back(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        record(db, "staff:li", "case.view", "s-1", {})
    first = read_head(ctx.storage)
    assert first is not None and first.seq == 1
    try:
        with ctx.db() as db:
            record(db, "staff:li", "case.view", "s-2", {})
            raise RuntimeError("the request failed after writing its audit entry")
    except RuntimeError:
        pass
    assert read_head(ctx.storage) == first and newest(ctx) == 1
    with ctx.db() as db:
        record(db, "staff:li", "case.view", "s-3", {})
        record(db, "staff:li", "case.view", "s-4", {})  # one transaction: its newest entry is the head
    second = read_head(ctx.storage)
    assert second is not None and second.seq == 3
    write_head(ctx.storage, first)  # a slower transaction that committed earlier writes late
    assert read_head(ctx.storage) == second


def test_a_store_that_cannot_take_the_head_costs_the_staff_action_nothing(ctx: ServiceContext) -> None:
    """A media folder that cannot be written (here: `audit` is a file, not a folder): the entry commits, the head
    is not recorded, and the next commit that can write records the newer head."""
    blocker = ctx.settings.effective_media_dir / "audit"
    blocker.write_bytes(b"")
    with ctx.db() as db:
        record(db, "staff:li", "case.decide", "s-1", {"decision": "accept"})
    assert newest(ctx) == 1 and not ctx.storage.exists(HEAD_KEY)
    blocker.unlink()
    with ctx.db() as db:
        record(db, "staff:li", "case.view", "s-1", {})
    head = read_head(ctx.storage)
    assert head is not None and head.seq == 2


def test_savepoints_neither_write_the_head_early_nor_leave_a_rolled_back_entry_as_head(ctx: ServiceContext) -> None:
    """Savepoints fire the same commit and rollback events as the transaction (a console claim is made in one; a
    WeChat notice is queued in one after the request's audit entry): the head is written only after the real
    commit, and an entry whose savepoint rolled back is never recorded as the head."""
    try:
        with ctx.db() as db:
            record(db, "staff:li", "case.claim", "s-1", {})
            with db.begin_nested():
                pass  # released: the transaction is still open
            assert read_head(ctx.storage) is None
            raise RuntimeError("the request fails afterwards")
    except RuntimeError:
        pass
    assert read_head(ctx.storage) is None and newest(ctx) == 0
    with ctx.db() as db:
        record(db, "staff:li", "case.view", "s-1", {})
        nested = db.begin_nested()
        record(db, "staff:li", "case.claim", "s-1", {})
        nested.rollback()  # the claim lost its race: its entry is gone
    head = read_head(ctx.storage)
    assert head is not None and head.seq == newest(ctx) == 1
    with ctx.db() as db:
        assert check_anchors(db, ctx.storage).ok
