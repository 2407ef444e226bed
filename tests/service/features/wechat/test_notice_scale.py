"""The notice run every minute reads only the people who may be owed a reminder now, not the roster: every active
or suspended person ever certified from the H5 pages was read (one ORM person per past certification) each minute
and the whole run was one transaction, which on the embedded database held the write lock throughout (docs/wechat.md,
docs/security.md)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import add_months
from service.certification.models import Beneficiary, BeneficiaryStatus, Certification, utcnow
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


def _edge_people(db: Session, ctx: ServiceContext) -> dict[int, tuple[str, str | None]]:
    """One person per edge of the reminder rule, each certified from their own WeChat: id -> (what, the reminder
    expected on the bureau's today)."""
    today, rules = local_today(ctx.settings), ctx.rules
    day = dt.timedelta(days=1)
    horizon, floor = today + rules.due_soon_days * day, add_months(today, -rules.validity_months)
    active, suspended, deceased = BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED, BeneficiaryStatus.DECEASED
    edges: list[tuple[str, str, dt.date | None, dt.date | None, str | None]] = [
        ("due today", active, today, None, "due_soon"),
        ("due tomorrow", active, today + day, None, "due_soon"),
        ("lapsed yesterday", active, today - day, None, "overdue"),
        ("last day before the horizon", active, horizon - day, None, "due_soon"),
        ("on the horizon: certified", active, horizon, None, None),
        ("certified for months", active, today + 200 * day, None, None),
        ("lapsed a validity period ago", active, floor, None, "overdue"),
        ("lapsed before that: told once a cycle", active, floor - day, None, "overdue"),
        ("suspended yesterday", suspended, today - day, today, "suspended"),
        ("suspended, not by the cycle run", suspended, today - day, None, None),
        ("suspended, dated today", suspended, today, today, None),
        ("suspended a validity period ago", suspended, floor, floor + day, "suspended"),
        ("suspended before that: told once a cycle", suspended, floor - day, floor, "suspended"),
        ("deceased, lapsed", deceased, today - day, None, None),
        ("deceased, due", deceased, today + day, None, None),
        ("undated", active, None, None, None),
    ]
    out = {}
    for i, (what, status, until, since, expected) in enumerate(edges):
        b = factories.beneficiary(db, ctx.keyring, valid_until=until)
        certified_by(db, ctx, b, f"o-edge-{i:02d}")  # while living: no session opens for a person recorded deceased
        b.status, b.suspended_on = status, since
        out[b.id] = (what, expected)
    db.flush()
    return out


def test_the_reminder_rule_in_sql_and_in_python_agree_on_every_edge(ctx: ServiceContext, db: Session) -> None:
    """The notice run selects its candidates by `notice_queue.reminder_sql` and tells them by `reminder_kind`:
    both read `REMINDERS` and the cycle's dates, and give the same reminder on each edge of the rule (the bureau's
    today, Asia/Shanghai: a validity date of today, tomorrow, yesterday; the horizon; the floor a validity period
    back; suspended by the cycle run or not; deceased; undated). A person the SQL left out was never reminded, and
    one it let through under another kind was read as told already."""
    today = local_today(ctx.settings)
    people = _edge_people(db, ctx)
    selected: list[tuple[int, str]] = []
    for long_ago in (False, True):  # the run's window, and the walk once a day below its floor: one or the other
        owed, kind = notice_queue.reminder_sql(today, ctx.rules, long_ago=long_ago)
        selected += db.execute(select(Beneficiary.id, kind).where(owed, Beneficiary.id.in_(people))).all()
    in_sql = dict(selected)
    assert len(in_sql) == len(selected), selected
    in_python = {}
    for b in db.scalars(select(Beneficiary).where(Beneficiary.id.in_(people))):
        found = notice_queue.reminder_kind(b, today, ctx.rules)
        if found is not None:
            in_python[b.id] = found
    expected = {bid: kind for bid, (_, kind) in people.items() if kind is not None}
    named = {people[bid][0]: k for bid, k in in_sql.items()}
    assert in_sql == in_python == expected, named
    # And the whole candidate condition: everyone owed a reminder, nobody else (none told yet).
    every_minute = set(db.scalars(select(Beneficiary.id).where(notice_queue.maybe_due(db, today, ctx.rules))))
    once_a_day = set(db.scalars(select(Beneficiary.id).where(notice_queue.lapsed_long_ago(today, ctx.rules))))
    assert not every_minute & once_a_day and every_minute | once_a_day == set(expected)
    assert queue_notices(db, ctx, today) == len(expected)
    recorded = {ref: k for ref, k in db.execute(select(WeChatNotice.ref, WeChatNotice.kind))}
    assert {int(ref.partition(":")[0]): k for ref, k in recorded.items()} == expected


def test_the_run_reads_the_reminder_window_by_index_not_everyone_past_their_date(
    ctx: ServiceContext, db: Session
) -> None:
    """Everyone ever suspended was walked every minute (each a probe into the recorded notices), more each year:
    the candidate query's range on the (status, valid_until) index had no lower end. It starts at
    `reminder_floor` now: 300 people suspended years ago, told then, are not read."""
    today = local_today(ctx.settings)
    for i in range(300):
        lapsed = today - dt.timedelta(days=400 + 5 * i)
        b = factories.beneficiary(
            db, ctx.keyring, status=BeneficiaryStatus.SUSPENDED, valid_until=lapsed, suspended_on=lapsed
        )
        certified_by(db, ctx, b, f"o-old-{i:03d}")
        db.add(WeChatNotice(kind="suspended", ref=notice_queue.reminder_ref(b.id, lapsed), openid=f"o-old-{i:03d}"))
    _told_people(db, ctx, 3, "w")
    db.flush()
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ANALYZE beneficiaries, cert_sessions, wechat_sessions, wechat_notices"))
    query = select(Beneficiary.id).where(notice_queue.maybe_due(db, today, ctx.rules))
    assert len(db.scalars(query).all()) == 3
    conn = db.connection()
    statement = query.compile(conn, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "postgresql":
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN ANALYZE " + str(statement)))
        # The person table's own scans (not its alias in the revoked-account check): rows read in all.
        scans = re.findall(r" on beneficiaries  \(cost=[^)]*\) \(actual time=\S+ rows=(\d+) loops=(\d+)\)", plan)
        assert scans and sum(int(rows) * int(loops) for rows, loops in scans) < 100, plan
    else:
        plan = "\n".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(statement)))
        assert "ix_beneficiaries_status_valid_until (status=? AND valid_until>? AND valid_until<?)" in plan, plan


def test_a_person_lapsed_over_a_validity_period_ago_is_told_once_a_cycle(ctx: ServiceContext, db: Session) -> None:
    """Part CT's floor left out every date that lapsed more than a validity period ago: a person suspended then and
    never told (the notice schedule stopped that long), or one a revocation put back on such a date, was never
    reminded. Now such a date is reminded of once per cycle (its latest anniversary by whole validity periods is the
    period recorded): the one never told is told, the one told at the suspension is told again this cycle; a run
    later that day or a month later tells neither again."""
    today = local_today(ctx.settings)
    lapsed = add_months(today, -ctx.rules.validity_months) - dt.timedelta(days=30)
    people = {}
    for who in ("never", "told"):
        b = factories.beneficiary(
            db, ctx.keyring, status=BeneficiaryStatus.SUSPENDED, valid_until=lapsed, suspended_on=lapsed
        )
        certified_by(db, ctx, b, f"o-{who}")
        people[b.id] = who
    told = next(bid for bid, who in people.items() if who == "told")  # at the suspension, over a year ago
    db.add(
        WeChatNotice(kind="suspended", ref=notice_queue.reminder_ref(told, lapsed), openid="o-told at the suspension")
    )
    db.commit()

    assert queue_notices(db, ctx, today) == 2  # before: 0, the date below the floor
    this_cycle = notice_queue.reminder_date(lapsed, today, ctx.rules)
    assert lapsed < this_cycle <= today
    recorded = db.execute(select(WeChatNotice.kind, WeChatNotice.ref).where(WeChatNotice.ref != f"{told}:{lapsed}"))
    assert sorted(recorded) == sorted(("suspended", notice_queue.reminder_ref(bid, this_cycle)) for bid in people)
    assert queue_notices(db, ctx, today) == 0
    assert queue_notices(db, ctx, today + dt.timedelta(days=30)) == 0  # the same cycle
