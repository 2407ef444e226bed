"""A self session rejected because the roster gave the record another ID number after it was opened
(IDENTITY_CHANGED, service/certification/current_person.py) does not continue: its card is the previous number's,
and "continue" would open a session for the record's new number without anyone entering it. Before, the result
page offered 重新录制视频(无需再拍身份证) and the continuation copied the previous number's card into the new
session. Now the page sends the citizen to the start (their current number, a new card photo)."""

from __future__ import annotations

from service.certification.models import Beneficiary, CertSession, utcnow
from service.features.wechat.h5.recovery import card_reusable
from tests.service.features.wechat.h5.conftest import App
from tests.service.features.wechat.h5.test_recovery import again, finished


def identity_changed(app: App) -> str:
    sid = finished(app, reasons=("IDENTITY_CHANGED",))
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        b.identity_since = utcnow()  # the roster import after the session was opened
        db.commit()
    return sid


def test_the_result_page_sends_the_citizen_to_the_start_not_to_the_video_step(app: App) -> None:
    sid = identity_changed(app)
    page = app.client.get(f"/h5/result/{sid}")
    assert page.status_code == 200
    assert "身份证号已变更" in page.text
    assert "无需再拍身份证" not in page.text and 'id="again"' not in page.text
    assert 'href="/h5/certify?mode=self"' in page.text


def test_continuing_is_refused_and_copies_no_card(app: App) -> None:
    sid = identity_changed(app)
    r = again(app, sid)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "SESSION_STATE"
    assert "身份证号已变更" in r.json()["error"]["message"]
    with app.ctx.db() as db:
        opened = db.query(CertSession).filter(CertSession.beneficiary_id == app.beneficiary_id).count()
        assert opened == 1  # no new session, no card copied into one
        old = db.get(CertSession, sid)
        assert old is not None and not card_reusable(old)
