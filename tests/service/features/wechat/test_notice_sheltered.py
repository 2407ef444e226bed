"""An elder who asked in time for a home visit (or a manual review) is sheltered by the cycle's one rule
(cycle.being_decided, docs/security.md Part DC): the lists, the person page and the family page say the office is
deciding, and the daily run does not suspend them. Before, the reminder run did not read that rule: the next day the
elder's own WeChat got 认证已到期…请尽快完成认证 ("overdue"), telling them to do what they had just told the office
they cannot do. Now the run leaves the overdue reminder out while the request shelters them (notice_queue.sheltered),
the send re-checks it (a notice recorded before the request was seen waits), and once the request is answered
without a certification the reminder is due again."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import CycleState, states_of
from service.certification.models import Beneficiary
from service.features.console import assist
from service.features.console.auth import Role, Staff
from service.features.console.models import AssistOutcome, AssistRequest, StaffUser
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import deliver, queue_notices
from service.infra.clock import local_midnight, local_today
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel, sent_to

# Reminders are sent in the bureau's daytime only: these run at 10:00 of its day.
pytestmark = pytest.mark.usefixtures("daytime")


def _lapsed_yesterday(db: Session, ctx: ServiceContext, ext: str, openid: str) -> tuple[Beneficiary, dt.date]:
    """A person whose validity ended yesterday, who certified last year from their own WeChat `openid`."""
    today = local_today(ctx.settings)
    b = factories.beneficiary(db, ctx.keyring, external_id=ext, valid_until=today - dt.timedelta(days=1))
    certified_by(db, ctx, b, openid)
    return b, today


def _ask_home_visit(db: Session, ctx: ServiceContext, b: Beneficiary, openid: str) -> AssistRequest:
    """A home-visit request filed from the H5 page at 15:00 Beijing on the last valid day (in time)."""
    req = assist.submit(db, b, "home_visit", "13800138000", "卧床,无法拍视频", openid, f"wechat:{openid}")
    db.commit()
    assert b.valid_until is not None
    filed = local_midnight(ctx.settings, b.valid_until) + dt.timedelta(hours=15)
    factories.update(ctx, AssistRequest, req.id, created_at=filed)
    db.expire_all()
    return req


def _answer(db: Session, ctx: ServiceContext, req: AssistRequest) -> None:
    """Staff answer the request without a certification (the person must certify another way)."""
    user = StaffUser(username="sup1", display_name="sup1-姓名", role=Role.SUPERVISOR.value, password_hash="x")
    db.add(user)
    db.flush()
    staff = Staff(user.id, "sup1", "sup1-姓名", Role.SUPERVISOR, "csrf")
    assist.close(db, ctx, staff, req, AssistOutcome.ANSWERED, "请家属携带身份证到社区服务站办理")
    db.commit()


def _overdue(db: Session) -> list[tuple[str, str]]:
    rows = db.execute(select(WeChatNotice.openid, WeChatNotice.status).where(WeChatNotice.kind == "overdue"))
    return [(str(openid), str(status)) for openid, status in rows]


def test_no_overdue_reminder_while_a_request_filed_in_time_shelters_the_person(
    ctx: ServiceContext, db: Session
) -> None:
    b, today = _lapsed_yesterday(db, ctx, "ELDER1", "o-elder1")
    req = _ask_home_visit(db, ctx, b, "o-elder1")
    person = db.get(Beneficiary, b.id)
    assert person is not None
    assert states_of(db, [person], today, ctx.rules, cases=ctx.hooks.case_sources())[b.id] is (
        CycleState.AWAITING_DECISION
    )
    queue_notices(db, ctx, today)
    db.commit()
    assert _overdue(db) == []
    # Answered without a certification: no longer sheltered, the reminder is due.
    _answer(db, ctx, req)
    queue_notices(db, ctx, today)
    db.commit()
    assert _overdue(db) == [("o-elder1", NoticeStatus.PENDING)]


def test_an_overdue_reminder_recorded_before_the_request_was_seen_waits_until_it_is_answered(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b, today = _lapsed_yesterday(db, ctx, "ELDER2", "o-elder2")
    db.commit()
    with ctx.db() as unit:
        assert queue_notices(unit, ctx, today) == 1  # the run read before the request filed in time was committed
    req = _ask_home_visit(db, ctx, b, "o-elder2")
    api = channel(ctx).api
    run = deliver(ctx, api, today)
    assert (run.sent, run.cancelled) == (0, 0)  # not now, and not lost
    assert _overdue(db) == [("o-elder2", NoticeStatus.PENDING)] and sent_to(fake_wx, "tpl-overdue") == []
    _answer(db, ctx, req)
    deliver(ctx, api, today)  # the reminder, and the message answering the request (its own notice)
    db.expire_all()
    assert _overdue(db) == [("o-elder2", NoticeStatus.SENT)] and sent_to(fake_wx, "tpl-overdue") == ["o-elder2"]


def _due_soon(db: Session) -> list[tuple[str, str]]:
    rows = db.execute(select(WeChatNotice.openid, WeChatNotice.status).where(WeChatNotice.kind == "due_soon"))
    return [(str(openid), str(status)) for openid, status in rows]


def _due_in_ten_days(db: Session, ctx: ServiceContext, ext: str, openid: str) -> tuple[Beneficiary, dt.date]:
    """A person whose validity ends in ten days (即将到期), who certified last year from their own WeChat `openid`."""
    today = local_today(ctx.settings)
    b = factories.beneficiary(db, ctx.keyring, external_id=ext, valid_until=today + dt.timedelta(days=10))
    certified_by(db, ctx, b, openid)
    return b, today


def _ask_home_visit_now(db: Session, ctx: ServiceContext, b: Beneficiary, openid: str) -> AssistRequest:
    """A home-visit request filed from the H5 page now, before the date (in time)."""
    req = assist.submit(db, b, "home_visit", "13800138000", "卧床,无法拍视频", openid, f"wechat:{openid}")
    db.commit()
    return req


def test_no_due_soon_reminder_while_a_request_filed_before_the_date_is_open(ctx: ServiceContext, db: Session) -> None:
    """The elder asked for a home visit ten days before the date: 请在…前完成认证 would tell them to do by a date what
    they told the office they cannot do, while staff arrange the visit. Before: recorded and sent the same day (only
    `overdue` read the rule). Answered without a certification: the reminder is due again."""
    b, today = _due_in_ten_days(db, ctx, "ELDER3", "o-elder3")
    req = _ask_home_visit_now(db, ctx, b, "o-elder3")
    queue_notices(db, ctx, today)
    db.commit()
    assert _due_soon(db) == []
    _answer(db, ctx, req)
    queue_notices(db, ctx, today)
    db.commit()
    assert _due_soon(db) == [("o-elder3", NoticeStatus.PENDING)]


def test_a_due_soon_reminder_recorded_before_the_request_was_seen_waits_until_it_is_answered(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b, today = _due_in_ten_days(db, ctx, "ELDER4", "o-elder4")
    db.commit()
    with ctx.db() as unit:
        assert queue_notices(unit, ctx, today) == 1  # recorded before the request was filed
    req = _ask_home_visit_now(db, ctx, b, "o-elder4")
    api = channel(ctx).api
    run = deliver(ctx, api, today)
    assert (run.sent, run.cancelled) == (0, 0)  # not now, and not lost
    assert _due_soon(db) == [("o-elder4", NoticeStatus.PENDING)] and sent_to(fake_wx, "tpl-due") == []
    _answer(db, ctx, req)
    deliver(ctx, api, today)
    db.expire_all()
    assert _due_soon(db) == [("o-elder4", NoticeStatus.SENT)] and sent_to(fake_wx, "tpl-due") == ["o-elder4"]
