"""A person the benefit system's roster last said `suspended` for (it stopped paying them here, e.g. transferred out:
cycle.stopped_by_roster) gets no reminder of ours (docs/security.md, Part "moves"). Before: the row was ignored, the
person stayed active and was told 请尽快完成认证, 逾期未认证将暂停发放 by a bureau that no longer paid them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import record_certification
from service.certification.models import Beneficiary, BeneficiaryStatus
from service.features.wechat import notice_queue
from service.features.wechat.notify import queue_notices
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.test_notify import certified_by

pytestmark = pytest.mark.usefixtures("daytime")


def test_no_reminder_for_a_person_the_roster_says_is_suspended(ctx: ServiceContext, db: Session) -> None:
    today = local_today(ctx.settings)
    lapsed = today - dt.timedelta(days=5)
    b = factories.beneficiary(db, ctx.keyring, valid_until=lapsed, roster_status="suspended")
    certified_by(db, ctx, b, "o-stopped")
    owed, _ = notice_queue.reminder_sql(today, ctx.rules)
    assert notice_queue.reminder_kind(b, today, ctx.rules) is None
    assert db.scalars(select(Beneficiary.id).where(owed)).all() == []
    assert queue_notices(db, ctx, today) == 0
    b.roster_status = "active"  # the benefit system pays them here again: back in the cycle
    db.flush()
    assert notice_queue.reminder_kind(b, today, ctx.rules) == "overdue"
    assert db.scalars(select(Beneficiary.id).where(owed)).all() == [b.id]
    assert queue_notices(db, ctx, today) == 1


def test_our_suspension_echoed_by_the_roster_keeps_the_notices(ctx: ServiceContext, db: Session) -> None:
    """Before: the roster repeating this service's own suspension took away the person's `suspended` notice (how
    payment resumes), and once they certified and were resumed, every later reminder (docs/security.md, Part
    "moves, second look"). The echo stops nothing; the resume clears it (cycle.resume)."""
    today = local_today(ctx.settings)
    lapsed = today - dt.timedelta(days=5)
    b = factories.beneficiary(db, ctx.keyring, valid_until=lapsed, status=BeneficiaryStatus.SUSPENDED)
    b.roster_status, b.suspended_on = "suspended", lapsed + dt.timedelta(days=1)
    certified_by(db, ctx, b, "o-echo")
    owed, _ = notice_queue.reminder_sql(today, ctx.rules)
    assert notice_queue.reminder_kind(b, today, ctx.rules) == "suspended"
    assert db.scalars(select(Beneficiary.id).where(owed)).all() == [b.id]
    assert queue_notices(db, ctx, today) == 1
    until = record_certification(db, b, today, ctx.rules, today)
    db.flush()
    soon = until - dt.timedelta(days=5)
    owed_soon, _ = notice_queue.reminder_sql(soon, ctx.rules)
    assert (b.status, notice_queue.reminder_kind(b, soon, ctx.rules)) == ("active", "due_soon")
    assert db.scalars(select(Beneficiary.id).where(owed_soon)).all() == [b.id]
