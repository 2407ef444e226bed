"""The video an open request for a manual review (人工审核) waits on, and the retention purge. The H5 form promises
"工作人员查看已录制的视频并与您联系,不用再拍", but the purge kept only cases awaiting staff and evidence holds: a
machine reject is final, so its media went at the end of the retention period (a day ahead of it since PURGE_AHEAD),
the request still open, and the request page still offered 视频审核通过 on a video that no longer existed. Now the
purge keeps the video the request waits on (assist_video.videos_awaited, through FeatureHooks.kept_media) until the
request is closed or its hold ends (console/assist_hold.py), and the page refuses a purged one; a request filed while
the purge deletes its video is refused. SQLite and PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import event, select

from service.adapters.http.app import create_app
from service.certification import retention
from service.certification.catalog import message_zh
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CertSession, utcnow
from service.features.console import assist
from service.features.console.assist_video import PURGED, check_video, recent_attempts, videos_awaited
from service.features.console.models import AssistRequest, AssistStatus
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.features.console.test_assist_video_review import OPENID, _accept, _rejected
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)


def _aged_with_media(ctx: ServiceContext, sid: str, decided: dt.datetime) -> list[str]:
    """Session `sid` decided at `decided`, with its card photo and video in the media store: their keys."""
    keys = [f"sessions/{sid}/id_card", f"sessions/{sid}/video"]
    for key in keys:
        ctx.storage.put(key, b"media " + key.encode())
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        s.id_card_key, s.video_key = keys
        s.decided_at = decided
    return keys


def _purged(ctx: ServiceContext, sid: str, keys: list[str]) -> bool:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        gone = [not ctx.storage.exists(k) for k in keys]
        assert len(set(gone)) == 1 and gone[0] == (s.media_purged_at is not None), (gone, s.media_purged_at)
        return gone[0]


def _close(ctx: ServiceContext, rid: int) -> None:
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        assert req is not None
        req.status = AssistStatus.CLOSED


@pytest.mark.parametrize("named", [True, False], ids=["named-session", "latest-reject"])
def test_the_purge_keeps_the_video_an_open_manual_review_waits_on(ctx: ServiceContext, named: bool) -> None:
    """Past the retention period, the video the open request names (or, naming none, the person's latest machine
    reject) keeps its media; an older reject of the same person does not. The first run after the request is
    closed takes it."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    now = utcnow()
    past = now - dt.timedelta(days=ctx.settings.storage.retention_days + 2)
    with ctx.db() as db:
        older = factories.review_session(bid, decision="reject", reasons=["CHALLENGE_MISSING_ACTION"])
        older.created_at = past - dt.timedelta(days=1)  # an earlier attempt: not the latest reject
        db.add(older)
        req = db.get(AssistRequest, rid)
        assert req is not None
        if not named:
            req.session_id = None  # the plain form (asked from the start page): the latest machine reject
    keys = _aged_with_media(ctx, sid, past)
    older_keys = _aged_with_media(ctx, older.id, past)
    retention.purge_media(ctx, now)
    assert not _purged(ctx, sid, keys), "the video an open manual-review request waits on was purged"
    assert _purged(ctx, older.id, older_keys)  # nobody waits on it
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        assert req is not None
        check = check_video(db, req, recent_attempts(db, bid))
        assert check.session is not None and (check.session.id, check.refusal) == (sid, None)
    _close(ctx, rid)
    retention.purge_media(ctx, now)
    assert _purged(ctx, sid, keys)


def test_the_request_page_refuses_a_video_whose_media_were_purged(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A request filed after the purge took the video (or the purge ran before it): 视频审核通过 is not offered and
    a post is refused with the reason in words; nothing certified, the request open for a counter or home visit."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    _close(ctx, rid)
    past = utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 2)
    keys = _aged_with_media(ctx, sid, past)
    retention.purge_media(ctx, utcnow())
    assert _purged(ctx, sid, keys)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        again = assist.submit(db, b, "manual_review", "13800138000", "请看视频", OPENID, "wechat:x", sid)
        db.flush()
        rid = again.id
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' not in page and PURGED in page
    refused = _accept(app_client, csrf, rid, sid)
    assert refused.startswith("409") and PURGED in refused
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        assert req is not None and req.status == AssistStatus.OPEN
        assert db.scalars(select(Certification).where(Certification.beneficiary_id == bid)).all() == []


def _filed(ctx: ServiceContext, rid: int, at: dt.datetime) -> None:
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        assert req is not None
        req.created_at = at


def test_an_open_request_keeps_its_video_no_longer_than_its_hold(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a request staff never acted on kept the citizen's face video for as long as it stayed open. Now the
    hold ends REVIEW_VIDEO_HOLD_DAYS after the request was filed (a day ahead, as the purge's own period): the run
    takes the video, the request stays open for a home visit or the counter, the list marks it and the request page
    refuses 视频审核通过 on it."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    now = utcnow()
    hold = ctx.settings.storage.review_video_hold_days
    keys = _aged_with_media(ctx, sid, now - dt.timedelta(days=ctx.settings.storage.retention_days + hold + 2))
    _filed(ctx, rid, now - dt.timedelta(days=hold - 2))  # two days of the hold left
    retention.purge_media(ctx, now)
    assert not _purged(ctx, sid, keys)
    csrf = login(app_client, "rev1")
    assert "视频已过保存期限" not in app_client.get("/console/requests").text
    _filed(ctx, rid, now - dt.timedelta(days=hold))  # the hold ends before the next daily run
    retention.purge_media(ctx, now)
    assert _purged(ctx, sid, keys), "the video of a request past its hold was kept"
    assert "视频已过保存期限" in app_client.get("/console/requests").text  # marked for staff
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' not in page and PURGED in page
    assert _accept(app_client, csrf, rid, sid).startswith("409")
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        assert req is not None and req.status == AssistStatus.OPEN  # a home visit or the counter is still owed
        assert db.scalars(select(Certification).where(Certification.beneficiary_id == bid)).all() == []


def test_a_request_past_its_hold_is_marked_only_once_the_video_it_shows_is_gone(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A request naming no session (the plain form) shows the person's latest machine reject: one made after it was
    filed keeps its media for its own retention period. Before, the list marked the request 视频已过保存期限 once its
    hold had ended (its age alone) while the request page showed that video, not purged; now only once it is."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    now = utcnow()
    hold, kept = ctx.settings.storage.review_video_hold_days, ctx.settings.storage.retention_days
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        first = db.get(CertSession, sid)
        assert req is not None and first is not None
        req.session_id = None  # the plain form: the latest machine reject
        first.created_at = now - dt.timedelta(days=kept + hold + 2)
        newer = factories.review_session(bid, decision="reject", reasons=["CHALLENGE_MISSING_ACTION"])
        newer.created_at = now - dt.timedelta(days=10)  # tried again after filing: 20 more days of its own
        db.add(newer)
    _aged_with_media(ctx, sid, now - dt.timedelta(days=kept + hold + 2))
    newer_keys = _aged_with_media(ctx, newer.id, now - dt.timedelta(days=10))
    _filed(ctx, rid, now - dt.timedelta(days=hold))  # the request's hold has ended
    retention.purge_media(ctx, now)
    assert not _purged(ctx, newer.id, newer_keys)
    login(app_client, "rev1")
    assert "视频已过保存期限" not in app_client.get("/console/requests").text  # its video is still there to watch
    with ctx.db() as db:
        req = db.get(AssistRequest, rid)
        assert req is not None
        check = check_video(db, req, recent_attempts(db, bid))
        assert check.session is not None and check.session.id == newer.id and check.refusal != PURGED
    _aged_with_media(ctx, newer.id, now - dt.timedelta(days=kept + 2))  # its own retention over
    retention.purge_media(ctx, now)
    assert _purged(ctx, newer.id, newer_keys)
    assert "视频已过保存期限" in app_client.get("/console/requests").text


def test_the_purge_reads_the_requests_videos_in_a_fixed_number_of_statements(ctx: ServiceContext) -> None:
    """Before: `videos_awaited` read each open request's recent attempts (and each video's proxy row) one statement
    per request, in every batch of the purge. Now the same few statements whatever the number of requests."""

    def statements(n: int) -> int:
        ids = [_rejected(ctx, ["CHALLENGE_MISSING_ACTION"])[1] for _ in range(n)]
        seen: list[str] = []

        def count(*args: object) -> None:
            seen.append(str(args[2]))

        with ctx.db() as db:
            event.listen(db.get_bind(), "before_cursor_execute", count)
            try:
                awaited = videos_awaited(db, ctx, ids, utcnow())
            finally:
                event.remove(db.get_bind(), "before_cursor_execute", count)
        assert awaited == set(ids)
        return len(seen)

    assert 0 < statements(2) == statements(12)


def _h5_form_post(client: TestClient, sid: str, named: bool, number: str) -> dict[str, str]:
    """The H5 form's fields for a manual review of `sid` (named: from the failed result's link) or, from the plain
    form, of the person typed (the video then is their latest machine reject)."""
    page = client.get(f"/h5/apply/{sid}" if named else "/h5/apply").text
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    data = {"token": token, "kind": "manual_review", "phone": "13800138000", "note": "中风后头不能左转"}
    return data | ({"session": sid} if named else {"name": "王秀兰", "id_number": number})


@pytest.mark.parametrize("named", [True, False], ids=["named-session", "latest-reject"])
def test_a_request_filed_while_the_purge_deletes_its_video_is_refused(pg_ctx: ServiceContext, named: bool) -> None:  # noqa: F811
    """PostgreSQL, two transactions: the purge has read which videos requests wait on (none for this one yet) and is
    deleting it when the person files a manual review of it from the H5 form. Before: the request was stored (at
    once, or once the purge committed) on a deleted video, the person told 不用再拍, the request page then saying it
    was deleted. Now the form waits for the purge's row lock, sees the media gone and refuses in words; nothing is
    stored. A request filed first would be seen by the purge (the existing test above)."""
    ctx = pg_ctx
    number = factories.id_number()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="王秀兰", id_number=number)
        s = factories.review_session(b.id, decision="reject", reasons=["CHALLENGE_MISSING_ACTION"])
        s.result = factories.review_result(decision="reject", reasons=["CHALLENGE_MISSING_ACTION"])
        db.add(s)
        db.flush()
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        sid = s.id
    keys = _aged_with_media(ctx, sid, utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 2))
    deleting, go = threading.Event(), threading.Event()
    real_delete = ctx.storage.delete

    def slow_delete(key: str, every_version: bool = True) -> bool:
        deleting.set()
        go.wait(10)
        return real_delete(key, every_version)

    with TestClient(create_app(ctx=ctx)) as client:
        client.cookies.set(identity.COOKIE, identity.mint(ctx, OPENID))
        data = _h5_form_post(client, sid, named, number)
        ctx.storage.delete = slow_delete  # type: ignore[method-assign]
        purge, purged = started(lambda: retention.purge_media(ctx))
        assert deleting.wait(10)
        filing, filed = started(lambda: client.post("/h5/apply", data=data))
        time.sleep(0.5)  # the form reaches the session's row (or, before, commits) while the purge holds it
        go.set()
        purge.join(30)
        filing.join(30)
    assert purged == [1] and _purged(ctx, sid, keys)
    [answer] = filed
    assert isinstance(answer, Response)
    with ctx.db() as db:
        stored = db.scalars(select(AssistRequest).where(AssistRequest.beneficiary_id == b.id)).all()
    assert stored == [], "a manual review was stored on a video the purge deleted"
    assert answer.status_code == 409 and message_zh("ASSIST_VIDEO_PURGED") in answer.text
