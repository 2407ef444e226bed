"""Recovery without starting over, through the real app (SQLite, real storage): a failed or timed-out self
session continues with a new session that keeps the card photo (straight to the video step), the daily limit
and the bureau's phone number are on the result page, and only the session's own WeChat user may continue."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from PIL import Image

from service.certification import sessions
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, UploadKind, utcnow
from service.features.wechat.models import WeChatSessionLink
from tests.service.features.wechat.h5.conftest import OPENID, PHONE, App


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 40), (200, 180, 160)).save(buf, "JPEG")
    return buf.getvalue()


def finished(
    app: App,
    decision: str | None = "reject",
    reasons: tuple[str, ...] = ("CHALLENGE_MISSING_ACTION",),
    state: SessionState = SessionState.DECIDED,
    channel: Channel = Channel.SELF,
    openid: str = OPENID,
    card: bool = True,
    **fields: Any,
) -> str:
    """A session of the test's beneficiary as the pipeline would leave it (card stored through the real upload)."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        s = sessions.create_session(db, app.ctx, b, channel, False, "test").session
        if card:
            sessions.upload(db, app.ctx, s, UploadKind.ID_CARD, jpeg(), "image/jpeg", "card-" + s.id)
        s.state, s.decision, s.reasons = state, decision, list(reasons)
        s.decided_at = utcnow() if decision else None
        for k, v in fields.items():
            setattr(s, k, v)
        db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        db.commit()
        return s.id


def again(app: App, session_id: str) -> Any:
    return app.client.post(f"/h5/api/sessions/{session_id}/again")


def test_a_failed_video_continues_at_the_video_step_with_the_card_kept(app: App) -> None:
    old = finished(app)
    r = again(app, old)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["card_kept"] is True and body["attempts_left"] == 2 and body["session_id"] != old
    auth = {"Authorization": f"Bearer {body['token']}"}
    status = app.client.get(f"/api/v1/sessions/{body['session_id']}", headers=auth)
    assert status.json()["uploads"] == {"id_card": True, "video": False} and status.json()["state"] == "open"
    with app.ctx.db() as db:
        new = db.get(CertSession, body["session_id"])
        assert new is not None and new.beneficiary_id == app.beneficiary_id and new.channel == "self"
        assert new.id_card_key is not None and app.ctx.storage.get(new.id_card_key) == jpeg()
        link = db.get(WeChatSessionLink, new.id)
        assert link is not None and link.openid == OPENID  # the result page and message come to this user
        assert db.get(CertSession, old).decision == "reject"  # type: ignore[union-attr]  # the old one unchanged


def test_a_processing_failure_says_so_and_can_be_retried(app: App) -> None:
    sid = finished(app, decision=None, reasons=(), state=SessionState.FAILED)
    page = app.client.get(f"/h5/result/{sid}")
    assert "暂时无法完成核验" in page.text and "认证未通过" not in page.text and 'id="again"' in page.text
    assert again(app, sid).status_code == 200


def test_a_card_problem_asks_for_a_new_photo(app: App) -> None:
    r = again(app, finished(app, reasons=("ID_TOO_BLURRY",)))
    assert r.status_code == 200 and r.json()["card_kept"] is False


def test_a_card_no_longer_stored_asks_for_a_new_photo(app: App) -> None:
    """The card's object gone from the store (purged, lost): it answered 503 STORAGE on every tap of 继续认证,
    the store's StorageError not being among the reasons to ask for a new photo."""
    old = finished(app)
    with app.ctx.db() as db:
        key = db.get(CertSession, old).id_card_key  # type: ignore[union-attr]
    assert key is not None and app.ctx.storage.delete(key)
    r = again(app, old)
    assert r.status_code == 200, r.text
    assert r.json()["card_kept"] is False


def test_a_timed_out_session_continues_even_without_its_token(app: App) -> None:
    past = utcnow() - dt.timedelta(minutes=1)
    old = finished(app, decision=None, reasons=(), state=SessionState.OPEN, expires_at=past, nonce_expires_at=past)
    r = again(app, old)
    assert r.status_code == 200 and r.json()["card_kept"] is True
    assert r.json()["attempts_left"] == 3  # a timeout is not a failed certification


@pytest.mark.parametrize(
    "kwargs",
    [
        {"decision": "accept", "reasons": ()},  # nothing to recover
        {"decision": "review", "reasons": ()},  # staff decide; another selfie would not help
        {"decision": None, "reasons": (), "state": SessionState.QUEUED},  # still being checked
        {"decision": None, "reasons": (), "state": SessionState.OPEN},  # still open, in time
        {"channel": Channel.PROXY},  # a proxy session not opened by the family pages (no ProxySession row)
    ],
)
def test_only_a_failed_or_timed_out_self_session_continues(app: App, kwargs: dict[str, Any]) -> None:
    r = again(app, finished(app, **kwargs))
    assert r.status_code == 409 and r.json()["error"]["code"] == "SESSION_STATE"


def test_only_the_sessions_own_wechat_user_may_continue_it(app: App) -> None:
    someone_elses = finished(app, openid="openid-other")
    r = again(app, someone_elses)
    assert r.status_code == 404
    app.client.cookies.clear()
    r = again(app, finished(app))
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


def test_the_daily_limit_is_shown_with_a_way_to_ask_for_review(app: App) -> None:
    first = finished(app)
    page = app.client.get(f"/h5/result/{first}")
    assert page.status_code == 200
    assert "今天还可以再试 <strong>2</strong> 次" in page.text and 'id="again"' in page.text
    assert "无需再拍身份证" in page.text and f'href="tel:{PHONE}"' in page.text
    finished(app)
    last = finished(app)
    r = again(app, last)
    assert r.status_code == 429 and r.json()["error"]["code"] == "ATTEMPTS_EXCEEDED"
    assert r.json()["error"]["message"] == "今日认证次数已达上限,可申请人工审核"
    page = app.client.get(f"/h5/result/{last}")
    assert 'id="again"' not in page.text and 'id="limit"' in page.text
    assert "申请人工审核或上门认证" in page.text and f'href="tel:{PHONE}"' in page.text
