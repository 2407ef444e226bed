"""Reminders go to the WeChat account of the record's current person only: after a roster import gave the record
another ID number (`Beneficiary.identity_since`), a self-certification opened before that change was made by the
previous number's person (service/certification/current_person.py). Before, that person's account went on
receiving the reminders naming the new person (their name, their dates)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_send import deliver
from service.features.wechat.notify import queue_notices, run_notifications
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import LAST_YEAR, TODAY, certified_by, channel

pytestmark = pytest.mark.usefixtures("daytime")


def test_the_previous_persons_account_gets_no_reminder_of_the_new_person(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="王新人", valid_until=TODAY - dt.timedelta(days=3))
    sid = certified_by(db, ctx, b, "o-previous-person")
    db.get(CertSession, sid).created_at = LAST_YEAR  # type: ignore[union-attr]
    b.identity_since = utcnow() - dt.timedelta(days=30)  # the roster gave the record another ID number since
    db.commit()
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.sent == 0
    assert fake_wx.state.sent_templates == []


def test_the_current_persons_account_gets_it_even_when_the_previous_accept_was_decided_later(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="王新人", valid_until=TODAY - dt.timedelta(days=3))
    change = utcnow() - dt.timedelta(days=60)
    old = certified_by(db, ctx, b, "o-previous-person", when=utcnow() - dt.timedelta(days=20))
    db.get(CertSession, old).created_at = change - dt.timedelta(days=1)  # type: ignore[union-attr]
    new = certified_by(db, ctx, b, "o-current-person", when=utcnow() - dt.timedelta(days=40))
    db.get(CertSession, new).created_at = change + dt.timedelta(days=1)  # type: ignore[union-attr]
    b.identity_since = change
    db.commit()
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.sent == 1
    assert [m["touser"] for m in fake_wx.state.sent_templates] == ["o-current-person"]


@pytest.mark.parametrize("changed", [True, False], ids=["id-changed", "unchanged"])
def test_a_reminder_queued_before_the_id_change_is_cancelled_not_sent(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, changed: bool
) -> None:
    """Reminders are recorded at 00:01 and wait for the morning (REMINDER_HOURS), the night roster imports run. A
    record handed to another ID number overnight, keeping its date: the reminder recorded for the previous
    person's account went out naming the new person (the send checked the date and the kind, not the account).
    It is cancelled now; the control (nothing changed overnight) is sent."""
    b = factories.beneficiary(db, ctx.keyring, name="王新人", valid_until=TODAY - dt.timedelta(days=3))
    sid = certified_by(db, ctx, b, "o-previous-person")
    db.get(CertSession, sid).created_at = LAST_YEAR  # type: ignore[union-attr]
    db.commit()
    queue_notices(db, ctx, TODAY)
    db.commit()
    if changed:
        b.identity_since = utcnow()  # the night's roster import: another ID number, the same date
        db.commit()
    run = deliver(ctx, channel(ctx).api, TODAY)
    assert (run.sent, run.cancelled) == ((0, 1) if changed else (1, 0))
    assert [m["touser"] for m in fake_wx.state.sent_templates] == ([] if changed else ["o-previous-person"])
    [notice] = db.scalars(select(WeChatNotice)).all()
    db.refresh(notice)
    assert notice.status == (NoticeStatus.CANCELLED if changed else NoticeStatus.SENT)
