"""The notice run every minute reads only the people who may be owed a reminder now, not the roster: every active
or suspended person ever certified from the H5 pages was read (one ORM person per past certification) each minute
and the whole run was one transaction, which on the embedded database held the write lock throughout (docs/wechat.md,
docs/security.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, utcnow
from service.features.wechat import notice_queue
from service.features.wechat.models import WeChatNotice
from service.features.wechat.notify import queue_notices
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.test_notify import LAST_YEAR, certified_by

pytestmark = pytest.mark.usefixtures("daytime")


def _told_people(db: Session, ctx: ServiceContext, count: int, tag: str) -> None:
    """`count` people overdue (still paid), each certified from their own WeChat last year."""
    lapsed = local_today(ctx.settings) - dt.timedelta(days=5)
    for i in range(count):
        certified_by(db, ctx, factories.beneficiary(db, ctx.keyring, valid_until=lapsed), f"o-{tag}-{i:03d}")


def _steady_run(db: Session, ctx: ServiceContext) -> tuple[int, int]:
    """(statements, persons loaded) of a run that finds nothing new to record."""
    statements: list[str] = []
    loaded: list[int] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def load(target: Beneficiary, context: Any) -> None:
        loaded.append(target.id)

    db.expunge_all()  # persons held by the session would not be loaded again
    event.listen(ctx.engine, "before_cursor_execute", seen)
    event.listen(Beneficiary, "load", load)
    try:
        assert queue_notices(db, ctx, local_today(ctx.settings)) == 0
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
        event.remove(Beneficiary, "load", load)
    return len(statements), len(loaded)


def test_a_run_with_nothing_new_reads_no_person_however_many_were_told(ctx: ServiceContext, db: Session) -> None:
    today = local_today(ctx.settings)
    _told_people(db, ctx, 4, "a")
    db.commit()
    assert queue_notices(db, ctx, today) == 4  # each told once
    few = _steady_run(db, ctx)
    _told_people(db, ctx, 40, "b")
    db.commit()
    assert queue_notices(db, ctx, today) == 40
    many = _steady_run(db, ctx)
    assert few == many  # the same statements, whether 4 or 44 people were told already
    assert many[1] == 0  # and no person read (the whole overdue roster was, one row per past certification)


def test_a_run_records_its_reminders_in_transactions_of_a_batch_each(
    ctx: ServiceContext, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch is committed on its own: the embedded database's write lock is free between them."""
    monkeypatch.setattr(notice_queue, "BATCH", 2)
    _told_people(db, ctx, 5, "c")
    db.commit()
    recorded_at_commit: list[int] = []

    def commit(session: Session) -> None:
        if not session.in_nested_transaction():  # a savepoint's release (notice_queue._record) commits nothing
            recorded_at_commit.append(session.scalar(select(func.count()).select_from(WeChatNotice)) or 0)

    event.listen(db, "before_commit", commit)
    try:
        assert queue_notices(db, ctx, local_today(ctx.settings)) == 5
    finally:
        event.remove(db, "before_commit", commit)
    assert recorded_at_commit[-3:] == [2, 4, 5]


def test_after_a_revocation_the_persons_own_account_is_reminded_of_the_date_the_impostor_was(
    ctx: ServiceContext, db: Session
) -> None:
    """The run leaves out the people already reminded of today's kind for their date: a reminder that went to the
    account of a certification revoked since does not count (that account was not the person's), and the person's
    own account is reminded of the same date, as when every run read everyone."""
    today = local_today(ctx.settings)
    b = factories.beneficiary(db, ctx.keyring, valid_until=today - dt.timedelta(days=3))
    certified_by(db, ctx, b, "o-own")
    impostor = certified_by(db, ctx, b, "o-impostor", when=LAST_YEAR + dt.timedelta(days=30))
    db.commit()
    assert queue_notices(db, ctx, today) == 1  # to the impostor's account: the latest accepted self-certification
    revoked_on = (LAST_YEAR + dt.timedelta(days=30)).date()
    db.add(
        Certification(
            beneficiary_id=b.id,
            session_id=impostor,
            certified_on=revoked_on,
            valid_until=today - dt.timedelta(days=3),
            code="code-" + impostor,
            revoked_at=utcnow(),
            revoked_by="staff:sup1",
            revoke_reason="impersonation",
            revoke_note="家属冒用",
        )
    )
    db.commit()
    queue_notices(db, ctx, today + dt.timedelta(days=1))  # the day after the revocation's own notice
    reminded = db.scalars(select(WeChatNotice.openid).where(WeChatNotice.kind == "overdue")).all()
    assert sorted(reminded) == ["o-impostor", "o-own"]
