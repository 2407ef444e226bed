"""Reminders go to the WeChat account of the person's latest accepted self-certification: not to the account whose
certification a supervisor revoked (冒领, a wrong person accepted: service/certification/revocation.py). Before, the
impostor's account went on receiving the person's due / overdue / suspension reminders."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, utcnow
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_send import deliver
from service.features.wechat.notify import queue_notices, run_notifications
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import LAST_YEAR, TODAY, certified_by, channel

pytestmark = pytest.mark.usefixtures("daytime")


def _revoke(db: Session, b: Beneficiary, session_id: str) -> None:
    """The accepted session's certification, revoked by a supervisor (冒领); the person's date left as it was."""
    db.add(
        Certification(
            beneficiary_id=b.id,
            session_id=session_id,
            certified_on=(LAST_YEAR + dt.timedelta(days=30)).date(),
            valid_until=TODAY - dt.timedelta(days=3),
            code="code-" + session_id,
            revoked_at=utcnow(),
            revoked_by="staff:sup1",
            revoke_reason="impersonation",
            revoke_note="家属冒用",
        )
    )


def test_the_reminder_skips_the_account_of_a_revoked_certification(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY - dt.timedelta(days=3))
    certified_by(db, ctx, b, "o-own")  # last year, from her own phone
    impostor = certified_by(db, ctx, b, "o-impostor", when=LAST_YEAR + dt.timedelta(days=30))
    _revoke(db, b, impostor)
    db.commit()
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.sent == 1
    assert [m["touser"] for m in fake_wx.state.sent_templates] == ["o-own"]


def test_a_reminder_queued_before_the_revocation_is_cancelled_not_sent(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The reminder was recorded for the account of the latest accept while it waited for the morning, and a
    supervisor then revoked that account's certification, the person's date unchanged: the send checked the date
    and the kind, not the account, and the impostor's WeChat was reminded. It is cancelled now."""
    b = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY - dt.timedelta(days=3))
    certified_by(db, ctx, b, "o-own")
    impostor = certified_by(db, ctx, b, "o-impostor", when=LAST_YEAR + dt.timedelta(days=30))
    db.commit()
    queue_notices(db, ctx, TODAY)
    db.commit()
    assert [(n.openid, n.status) for n in db.scalars(select(WeChatNotice))] == [("o-impostor", NoticeStatus.PENDING)]
    _revoke(db, b, impostor)
    db.commit()
    run = deliver(ctx, channel(ctx).api, TODAY)
    assert (run.sent, run.cancelled) == (0, 1)
    assert "o-impostor" not in [m["touser"] for m in fake_wx.state.sent_templates]
