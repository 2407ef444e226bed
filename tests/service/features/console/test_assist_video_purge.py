"""The video an open request for a manual review (人工审核) waits on, and the retention purge. The H5 form promises
"工作人员查看已录制的视频并与您联系,不用再拍", but the purge kept only cases awaiting staff and evidence holds: a
machine reject is final, so its media went at the end of the retention period (a day ahead of it since PURGE_AHEAD),
the request still open, and the request page still offered 视频审核通过 on a video that no longer existed. Now the
purge keeps the video the request waits on (assist_video.videos_awaited, through FeatureHooks.kept_media) until the
request is closed, and the page refuses a purged one. SQLite and PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification import retention
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CertSession, utcnow
from service.features.console import assist
from service.features.console.assist_video import PURGED, check_video, recent_attempts
from service.features.console.models import AssistRequest, AssistStatus
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.features.console.test_assist_video_review import OPENID, _accept, _rejected


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
