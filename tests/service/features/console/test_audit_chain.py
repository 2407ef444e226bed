"""The console audit log: entries for views and decisions, the hash chain detects edits, deletions and
re-ordering, and the viewer shows the verdict (supervisors only)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from service.certification.audit_anchor import AnchorCheck
from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import audit_chain
from service.infra.storage import StorageUnavailableError
from tests.service.features.console.conftest import login


def fill(ctx: ServiceContext, n: int = 5) -> None:
    with ctx.db() as db:
        for i in range(n):
            audit_chain.record(db, "staff:t", "case.view", f"s{i}", {"i": i, "id": "610111194210274664"})


def test_chain_verifies_and_masks_id_numbers(ctx: ServiceContext) -> None:
    fill(ctx)
    with ctx.db() as db:
        check = audit_chain.verify_chain(db)
        assert check.ok and check.entries == 5
        first = db.get(ConsoleAuditEntry, 1)
        assert first is not None and first.prev_hash == audit_chain.GENESIS
        assert first.detail["id"] == "6101**********4664"


def test_edited_entry_is_detected(ctx: ServiceContext) -> None:
    fill(ctx)
    with ctx.db() as db:
        db.execute(update(ConsoleAuditEntry).where(ConsoleAuditEntry.seq == 3).values(detail={"i": 99}))
    with ctx.db() as db:
        check = audit_chain.verify_chain(db)
        assert not check.ok and check.first_bad_seq == 3 and check.entries == 2


def test_rehashed_edit_breaks_the_next_link(ctx: ServiceContext) -> None:
    """Recomputing the edited entry's own hash does not help: the next entry still points at the old one."""
    fill(ctx)
    with ctx.db() as db:
        e = db.get(ConsoleAuditEntry, 2)
        assert e is not None
        e.actor = "staff:someone-else"
        e.hash = audit_chain.entry_hash(e.prev_hash, e.seq, e.at, e.actor, e.action, e.target, e.detail)
    with ctx.db() as db:
        check = audit_chain.verify_chain(db)
        assert not check.ok and check.first_bad_seq == 3 and "previous" in check.problem


def test_deleted_entry_is_detected(ctx: ServiceContext) -> None:
    fill(ctx)
    with ctx.db() as db:
        db.execute(delete(ConsoleAuditEntry).where(ConsoleAuditEntry.seq == 4))
    with ctx.db() as db:
        check = audit_chain.verify_chain(db)
        assert not check.ok and check.first_bad_seq == 5 and "missing" in check.problem


def test_viewer_shows_the_verdict_and_is_for_supervisors(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    rev = TestClient(app_client.app)
    login(rev, "rev1")
    assert rev.get("/console/audit").status_code == 403
    login(app_client, "sup1")
    page = app_client.get("/console/audit")
    assert page.status_code == 200 and 'id="chain-ok"' in page.text and "login" in page.text
    with ctx.db() as db:
        db.execute(update(ConsoleAuditEntry).where(ConsoleAuditEntry.seq == 1).values(actor="staff:nobody"))
    page = app_client.get("/console/audit")
    assert 'id="chain-broken"' in page.text
    with ctx.db() as db:
        views = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "audit.view")).all()
        assert [v.actor for v in views] == ["staff:sup1", "staff:sup1"]


def test_tail_check_trusts_older_entries_full_check_does_not(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    fill(ctx, 6)
    with ctx.db() as db:
        db.execute(update(ConsoleAuditEntry).where(ConsoleAuditEntry.seq == 2).values(target="edited"))
    with ctx.db() as db:
        assert audit_chain.verify_chain(db, from_seq=4).ok
        tail_edit = audit_chain.verify_chain(db, from_seq=2)
        assert not tail_edit.ok and tail_edit.first_bad_seq == 2
    login(app_client, "sup1")
    assert 'id="chain-broken"' in app_client.get("/console/audit", params={"full": 1}).text


def test_the_viewer_checks_the_anchors_a_cut_tail_fails(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The auditor's review, F6: an insider with database access deleted their newest entries, and later entries
    reused the freed numbers. Before: the viewer checked the chain only and said 未发现篡改 (全部 N 条); only the CLI
    checked the anchors. Now both run audit_chain.check_log: the head kept in the media store names the cut."""
    login(app_client, "rev1")
    for _ in range(3):  # rev1 opens pages it should not (any audited view)
        app_client.get("/console/queue")
    with ctx.db() as db:
        top = max(db.scalars(select(ConsoleAuditEntry.seq)))
        db.execute(delete(ConsoleAuditEntry).where(ConsoleAuditEntry.seq > top - 3))
    sup = TestClient(app_client.app)
    login(sup, "sup1")  # new entries reuse the deleted numbers
    with ctx.db() as db:  # `verify-audit`'s check, the same function
        done = audit_chain.check_log(db, ctx.storage)
    assert done.chain.ok and done.anchors is not None and not done.anchors.ok and done.anchors.seq == top
    for params in ({}, {"full": 1}):
        page = sup.get("/console/audit", params=params).text
        assert 'id="chain-broken"' in page and "未发现篡改" not in page, params


def test_the_viewer_says_the_anchors_were_not_checked_when_the_store_does_not_answer(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that does not answer is no verdict: the page says 锚点未核对, never 未发现篡改."""

    def down(*_: object, **__: object) -> AnchorCheck:
        raise StorageUnavailableError("the store does not answer")

    monkeypatch.setattr(audit_chain, "check_anchors", down)
    login(app_client, "sup1")
    page = app_client.get("/console/audit").text
    assert 'id="anchors-unchecked"' in page and "锚点未核对" in page and "未发现篡改" not in page


def test_the_daily_upkeep_checks_the_log_before_anchoring_it(
    ctx: ServiceContext, caplog: pytest.LogCaptureFixture
) -> None:
    """F6's second half: nothing scheduled `verify-audit`. The daily upkeep now runs its check (from the newest
    anchor on, before the day's anchor is written) and raises an ALERT when the newest entries were cut."""
    from service.certification.retention import storage_upkeep

    fill(ctx, 3)
    assert storage_upkeep(ctx)["audit_log_failed"] == 0  # and anchors entry 3
    fill(ctx, 2)
    with ctx.db() as db:
        db.execute(delete(ConsoleAuditEntry).where(ConsoleAuditEntry.seq > 3))
    fill(ctx, 1)  # entry 4 again, another hash; the head still names the old 5
    assert storage_upkeep(ctx)["audit_log_failed"] == 1
    assert any(r.getMessage().startswith("ALERT audit log check failed") for r in caplog.records)


def test_the_daily_check_reads_the_newest_anchor_once(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daily check reads the newest anchor to start the chain from it, and checked that anchor: it listed the
    anchors and fetched the newest from the media store twice. It reads them once, and still finds the cut."""
    from service.certification.audit_anchor import PREFIX, write_anchor

    fill(ctx, 3)
    with ctx.db() as db:
        assert write_anchor(db, ctx.storage) is not None
    fill(ctx, 2)
    storage, reads = ctx.storage, list[str]()
    listed, got = storage.list, storage.get

    def list_(prefix: str) -> object:
        reads.append("list " + prefix)
        return listed(prefix)

    def get(key: str) -> bytes:
        reads.append("get " + key)
        return got(key)

    monkeypatch.setattr(storage, "list", list_)
    monkeypatch.setattr(storage, "get", get)
    assert audit_chain.daily_check(ctx, utcnow()) == {"audit_log_failed": 0}
    assert [r for r in reads if PREFIX in r] == ["list " + PREFIX, f"get {PREFIX}{3:012d}"]
    with ctx.db() as db:
        db.execute(delete(ConsoleAuditEntry).where(ConsoleAuditEntry.seq >= 3))  # the anchored entry cut
    assert audit_chain.daily_check(ctx, utcnow()) == {"audit_log_failed": 1}
