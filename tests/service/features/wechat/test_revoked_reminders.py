"""Reminders go to the WeChat account of the person's latest accepted self-certification: not to the account whose
certification a supervisor revoked (冒领, a wrong person accepted: service/certification/revocation.py). Before, the
impostor's account went on receiving the person's due / overdue / suspension reminders."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Certification, utcnow
from service.features.wechat.notify import run_notifications
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import LAST_YEAR, TODAY, certified_by, channel

pytestmark = pytest.mark.usefixtures("daytime")


def test_the_reminder_skips_the_account_of_a_revoked_certification(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY - dt.timedelta(days=3))
    certified_by(db, ctx, b, "o-own")  # last year, from her own phone
    impostor = certified_by(db, ctx, b, "o-impostor", when=LAST_YEAR + dt.timedelta(days=30))
    # The impostor's accepted session's certification, revoked by a supervisor since.
    db.add(
        Certification(
            beneficiary_id=b.id,
            session_id=impostor,
            certified_on=(LAST_YEAR + dt.timedelta(days=30)).date(),
            valid_until=TODAY - dt.timedelta(days=3),
            code="code-" + impostor,
            revoked_at=utcnow(),
            revoked_by="staff:sup1",
            revoke_reason="impersonation",
            revoke_note="家属冒用",
        )
    )
    db.commit()
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.sent == 1
    assert [m["touser"] for m in fake_wx.state.sent_templates] == ["o-own"]
