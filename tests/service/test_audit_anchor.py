"""The console audit chain anchored outside the database (issue 19): a database writer who rewrites the whole
log and recomputes every hash passes the chain check but not the anchors; an anchor forged without the media key
does not open; the daily run writes one."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit_anchor import PREFIX, check_anchors, read_anchors, write_anchor
from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.audit_chain import GENESIS, entry_hash, record, verify_chain
from service.infra.storage import LocalEncryptedStorage
from tests.service.conftest import ADMIN


def rewrite_whole_chain(db: Session, seq: int, detail: dict[str, str]) -> None:
    """What a writer with full database access can do: change one entry, then recompute every hash after it."""
    prev = GENESIS
    for e in db.scalars(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq)).all():
        if e.seq == seq:
            e.detail = detail
        e.prev_hash = prev
        e.hash = entry_hash(prev, e.seq, e.at, e.actor, e.action, e.target, e.detail)
        prev = e.hash
    db.flush()


def test_a_rewritten_chain_passes_its_own_check_but_not_the_anchors(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        for i in range(3):
            record(db, "staff:li", "case.decide", f"s-{i}", {"decision": "reject"})
        anchor = write_anchor(db, ctx.storage)
        assert anchor is not None and anchor.seq == 3
        write_anchor(db, ctx.storage)
        assert [a.seq for a in read_anchors(ctx.storage)] == [3]  # one anchor per head
        record(db, "staff:li", "case.decide", "s-3", {"decision": "accept"})
        assert verify_chain(db).ok and check_anchors(db, ctx.storage).ok
        rewrite_whole_chain(db, 2, {"decision": "accept"})  # a rejection turned into an acceptance
        assert verify_chain(db).ok  # the chain alone cannot tell
        check = check_anchors(db, ctx.storage)
        assert not check.ok and check.seq == 3 and "differs from its anchor" in check.problem


def test_an_anchor_forged_without_the_media_key_does_not_open(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        record(db, "staff:li", "case.view", "s-0", {})
        write_anchor(db, ctx.storage)
        forger = LocalEncryptedStorage(ctx.settings.effective_media_dir, os.urandom(32))  # write access, no key
        forger.put(f"{PREFIX}{999:012d}", b'{"seq": 999, "hash": "00", "at": "x"}')
        check = check_anchors(db, ctx.storage)
        assert not check.ok and "does not open" in check.problem


def test_the_daily_run_anchors_the_chain(client: TestClient, ctx: ServiceContext) -> None:
    with ctx.db() as db:
        record(db, "staff:li", "case.view", "s-0", {})
    assert client.post("/api/v1/cycle/run", headers=ADMIN).status_code == 200
    anchors = read_anchors(ctx.storage)
    with ctx.db() as db:
        head = db.scalar(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
        assert head is not None and [a.seq for a in anchors] == [head.seq] and anchors[0].hash == head.hash
