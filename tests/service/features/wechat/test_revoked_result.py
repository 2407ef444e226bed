"""The result page of a certification a supervisor revoked since (冒领, a wrong person accepted:
service/certification/revocation.py) says so and asks for a new certification. Before, it still read 认证通过 with
the record's validity date: the holder of the link was told they were certified."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Certification, utcnow
from service.features.wechat.models import WeChatSessionLink
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_routes import decided_session, login_through


def test_a_revoked_certifications_result_page_says_it_was_revoked(
    client: TestClient, fake_wx: FakeWeChat, ctx: ServiceContext, db: Session
) -> None:
    fake_wx.state.browser_openid = "openid-revoked-1"
    b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2027, 3, 1))
    s = decided_session(db, ctx, b, "accept")
    db.add(WeChatSessionLink(session_id=s.id, openid="openid-revoked-1"))
    cert = Certification(
        beneficiary_id=b.id,
        session_id=s.id,
        certified_on=dt.date(2026, 3, 1),
        valid_until=dt.date(2027, 3, 1),
        code="code-" + s.id,
    )
    db.add(cert)
    db.commit()
    path = f"/h5/result/{s.id}"
    assert login_through(client, path) == path
    assert "认证通过" in client.get(path).text  # in force: as before
    cert.revoked_at, cert.revoked_by, cert.revoke_reason, cert.revoke_note = (
        utcnow(),
        "staff:sup1",
        "impersonation",
        "家属冒用照片认证",
    )
    db.commit()
    page = client.get(path)
    assert page.status_code == 200
    assert "认证通过" not in page.text and 'id="valid-until"' not in page.text
    assert "该次认证已被经办机构撤销,请重新认证" in page.text and "/h5/certify?mode=self" in page.text
    assert "家属冒用" not in page.text and "sup1" not in page.text  # never why, nor by whom
