"""Reminders go to the WeChat account of the record's current person only: after a roster import gave the record
another ID number (`Beneficiary.identity_since`), a self-certification opened before that change was made by the
previous number's person (service/certification/current_person.py). Before, that person's account went on
receiving the reminders naming the new person (their name, their dates)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from service.features.wechat.notify import run_notifications
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
