"""Races under concurrency (docs/security.md, Part J), each reproduced by interleaving two transactions by hand:

- a worker's failed attempt put back a job that staff had settled meanwhile (reopened, decided again);
- two staff decisions at once (operator API and console, or two API calls): the later overwrote the earlier;
- the expiry run turned a session an upload was just queuing into `expired` (an acknowledged job never ran);
- sessions opened together each passed the daily failure limit, so each of their videos was one more try.

The two-transaction tests need PostgreSQL row locks: SQLite's BEGIN IMMEDIATE serialises every transaction, so
there the interleaving cannot happen (those tests skip on SQLite).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.errors import ServiceError
from service.certification.models import (
    AuditEntry,
    Certification,
    CertSession,
    Channel,
    SessionState,
    UploadKind,
    utcnow,
)
from service.certification.processing import claim, process
from service.certification.retention import expire_sessions
from service.certification.review import settle
from service.certification.sessions import create_session
from service.features.console.auth import Role, Staff
from service.features.console.models import ReviewClaim, StaffUser
from service.features.console.review_queue import CaseError, decide_case
from service.features.install import install_features
from service.infra.storage import StorageError
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_card, put_video
from tests.service.certifiers import FixedCertifier
from tests.service.conftest import make_settings
from tests.service.live import fresh_database
from tests.service.media import LIVE_VIDEO

CARD = "idcard/synthetic/card_002.jpg"


@pytest.fixture
def pg_ctx(backend_urls: dict[str, str], tmp_path: Path) -> Iterator[ServiceContext]:
    """A context on a fresh database of its own whose units of work really commit: two at once."""
    if backend_urls["database_url"].startswith("sqlite"):
        pytest.skip("row locks: PostgreSQL (SQLite serialises every transaction)")
    url = fresh_database(backend_urls, tmp_path)
    ctx = install_features(ServiceContext(make_settings(tmp_path / "var", database_url=url), schema=None))
    try:
        yield ctx
    finally:
        ctx.engine.dispose()


def started(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """``fn`` running in a thread; what it returned (or the ServiceError code it raised) lands in the list."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except ServiceError as exc:
            out.append(exc.code)

    t = threading.Thread(target=run, daemon=True)  # never keeps a failed test from ending
    t.start()
    return t, out


def review_case(ctx: ServiceContext) -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.state, s.decision, s.decided_at = SessionState.DECIDED, "review", utcnow()
        s.result = factories.review_result()  # the machine compared the face: one reviewer's case
        return s.id


def count(ctx: ServiceContext, what: Any, *where: Any) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.count()).select_from(what).where(*where)) or 0)


class SettledWhileReading:
    """The media store of a worker whose job, while it read the media, was given up (FAILED: its heartbeat had
    gone stale) and accepted by staff (in the console, whose second decision an accept of a failed job takes: Part
    BQ); then the read fails, a transient error."""

    def __init__(self, ctx: ServiceContext, session_id: str) -> None:
        self.ctx, self.session_id = ctx, session_id

    def get(self, key: str) -> bytes:
        with self.ctx.db() as db:
            db.execute(update(CertSession).where(CertSession.id == self.session_id).values(state=SessionState.FAILED))
        with self.ctx.db() as db:
            s = db.get(CertSession, self.session_id)
            assert s is not None
            settle(db, self.ctx, s, "accept", "王审核", "checked at the counter", "admin:test", case_checked=True)
        raise StorageError(f"cannot read {key}")


def test_a_job_settled_by_staff_while_its_worker_ran_stays_settled(ctx: ServiceContext) -> None:
    """Before: the worker's retry release matched on its name only, which outlives the claim, so the accepted
    case went back to `queued` and the machine decided it a second time."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.id_card_key, s.video_key, s.state = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video", "queued"
        sid = s.id
    assert claim(ctx, sid, "w1") == sid
    ctx.storage = cast(Any, SettledWhileReading(ctx, sid))
    certifier = FixedCertifier()
    process(ctx, cast(Certifier, certifier), sid, "w1")
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and (row.state, row.decision) == ("decided", "accept")
        assert row.result is not None and row.result["review"]["reviewer"] == "王审核"
    assert claim(ctx, None, "w2") is None and certifier.runs == 0  # nothing to redo
    assert count(ctx, Certification, Certification.session_id == sid) == 1


def test_two_staff_decisions_at_once_settle_the_case_once(pg_ctx: ServiceContext) -> None:
    """An accept (certification issued) holds the row, uncommitted, when a reject for the same case arrives.
    Before: the reject had read the case as open and, once the accept committed, wrote itself over it: the
    session said `reject` while the person stayed certified. Now it waits, re-reads and is refused."""
    ctx = pg_ctx
    sid = review_case(ctx)
    first = ctx.session_factory()
    row = first.get(CertSession, sid)
    assert row is not None
    settle(first, ctx, row, "accept", "甲", "the same face", "admin:aaaa")
    first.flush()

    def second() -> str:
        with ctx.db() as db:
            s = db.get(CertSession, sid)
            assert s is not None
            return settle(db, ctx, s, "reject", "乙", "not the same face", "admin:bbbb")["decision"]

    t, out = started(second)
    t.join(1.0)
    assert t.is_alive()  # waiting for the accept's row lock
    first.commit()
    first.close()
    t.join(30)
    assert out == ["SESSION_STATE"]
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "accept" and s.result is not None
        assert s.result["review"]["reviewer"] == "甲"
    assert count(ctx, Certification, Certification.session_id == sid) == 1
    assert count(ctx, AuditEntry, AuditEntry.action == "session.review", AuditEntry.target == sid) == 1


def test_a_console_decision_waits_for_an_api_settle_of_the_same_case(pg_ctx: ServiceContext) -> None:
    """A reviewer's claim is older than its lifetime, so the operator API may settle the case; its accept holds
    the row when the reviewer comes back and asks for a retake. Before: the console had read the case as open
    and wrote `retry` over the accept once it committed (a certification with a session that says retry). Now
    it waits and is told the case was settled."""
    ctx = pg_ctx
    sid = review_case(ctx)
    with ctx.db() as db:
        user = StaffUser(username="rev1", display_name="审核员甲", role=Role.REVIEWER.value, password_hash="-")
        db.add(user)
        db.flush()
        staff = Staff(id=user.id, username="rev1", display_name="审核员甲", role=Role.REVIEWER, csrf="-")
        db.add(ReviewClaim(session_id=sid, claimed_by=user.id, claimed_at=utcnow() - dt.timedelta(hours=2)))
    api = ctx.session_factory()
    row = api.get(CertSession, sid)
    assert row is not None
    settle(api, ctx, row, "accept", "ops-desk", "", "admin:aaaa")
    api.flush()

    def console() -> str:
        with ctx.db() as db:
            try:
                return decide_case(db, ctx, staff, sid, "retry", "请重新录制")
            except CaseError as exc:
                return exc.message

    t, out = started(console)
    t.join(1.0)
    assert t.is_alive()  # waiting for the API's row lock
    api.commit()
    api.close()
    t.join(30)
    assert out == ["该案件已由 业务系统接口（审核人 ops-desk） 处理为“通过”，您的决定未保存"]
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "accept"
    assert count(ctx, Certification, Certification.session_id == sid) == 1


def test_the_expiry_run_leaves_alone_a_session_an_upload_is_queuing(pg_ctx: ServiceContext) -> None:
    """The upload began before the session's expiry and holds its row; the cycle's expiry runs meanwhile.
    Before: it had read the row as open and, once the upload committed, marked the queued job `expired`: the
    citizen was told "queued", no worker ever claimed it, and retention purged the media."""
    ctx = pg_ctx
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        sid = create_session(db, ctx, b, Channel.SELF, False, "test").session.id
    uploading = ctx.session_factory()
    row = sessions.get_session(uploading, sid, for_update=True)
    row.id_card_key, row.video_key = f"sessions/{sid}/id_card", f"sessions/{sid}/video"
    row.state, row.queued_at = SessionState.QUEUED, utcnow()
    uploading.flush()
    t, out = started(lambda: expire_sessions(ctx, utcnow() + dt.timedelta(days=1)))
    t.join(1.0)
    assert t.is_alive()  # waiting for the upload's row lock
    uploading.commit()
    uploading.close()
    t.join(30)
    assert out == [0]
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.state == "queued" and s.decided_at is None
    assert claim(ctx, None, "w1") == sid


def test_sessions_opened_together_send_no_more_videos_than_the_daily_limit(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    """The limit was checked only when a session opened, against decided rejections: four sessions opened
    together all passed and all four videos were tries (the attacker's spoofs, or a stranger's attempts at a
    pensioner). Now the upload that queues a session counts the person's undecided sessions as failures."""
    ext = beneficiary_with_number(ctx, factories.id_number())
    card, video = (data_dir / CARD).read_bytes(), (data_dir / LIVE_VIDEO).read_bytes()
    opened = [open_session(client, ext) for _ in range(4)]  # no rejection yet: each opens
    for i, s in enumerate(opened[:3]):
        assert put_card(client, s, card).status_code == 200
        r = put_video(client, s, video + bytes([i]) * 16, ctype="video/mp4")
        assert r.status_code == 200 and r.json()["state"] == "queued", r.text
    last = opened[3]
    assert put_card(client, last, card).status_code == 200
    r = put_video(client, last, video + b"\x03" * 16, ctype="video/mp4", rid="video-rid-last")
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "ATTEMPTS_EXCEEDED" and error["staff_review"] is True and error["message"]
    with ctx.db() as db:
        row = db.get(CertSession, last["session_id"])
        assert row is not None and row.state == "open" and row.video_key is None and row.nonce_used_at is None
    assert not ctx.storage.exists(f"sessions/{last['session_id']}/video")
    with ctx.db() as db:  # one of the three is accepted: no failure, so the fourth may go now
        first = db.get(CertSession, opened[0]["session_id"])
        assert first is not None
        first.state, first.decision, first.decided_at = SessionState.DECIDED, "accept", utcnow()
    r = put_video(client, last, video + b"\x03" * 16, ctype="video/mp4", rid="video-rid-last")
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text


def test_two_uploads_queuing_sessions_of_one_person_are_counted_one_after_the_other(
    pg_ctx: ServiceContext, data_dir: Path
) -> None:
    """One failure left today, two sessions, their videos sent at the same moment: each upload counted the
    other's session as not yet sent. The person's row serialises them: the second waits, then is refused."""
    ctx = pg_ctx
    ctx.settings.certification.failures_per_day = 1
    card, video = (data_dir / CARD).read_bytes(), (data_dir / LIVE_VIDEO).read_bytes()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        both = [create_session(db, ctx, b, Channel.SELF, False, "api:test").session for _ in range(2)]
        for s in both:
            sessions.upload(db, ctx, s, UploadKind.ID_CARD, card, "image/jpeg", f"card-{s.id}")
        ids = [(s.id, s.nonce) for s in both]
    first = ctx.session_factory()
    s1 = sessions.get_session(first, ids[0][0], for_update=True)
    assert sessions.upload(first, ctx, s1, UploadKind.VIDEO, video + b"1", "video/mp4", "v-1", ids[0][1])

    def second() -> bool:
        with ctx.db() as db:
            s2 = sessions.get_session(db, ids[1][0], for_update=True)
            return sessions.upload(db, ctx, s2, UploadKind.VIDEO, video + b"2", "video/mp4", "v-2", ids[1][1])

    t, out = started(second)
    t.join(1.0)
    assert t.is_alive()  # waiting for the person's row
    first.commit()
    first.close()
    t.join(30)
    assert out == ["ATTEMPTS_EXCEEDED"]
    states = [count(ctx, CertSession, CertSession.id == sid, CertSession.state == "queued") for sid, _ in ids]
    assert states == [1, 0]


def test_the_same_video_sent_to_two_sessions_at_once_is_refused_as_a_duplicate(
    pg_ctx: ServiceContext, data_dir: Path
) -> None:
    """Two people's sessions, one video file, sent at the same moment: neither upload saw the other's fingerprint
    (not yet committed), and the second ended on the unique constraint as a 500. Now it waits for the first and
    gets the re-upload answer, 409 VIDEO_DUPLICATE, with nothing of it stored."""
    ctx = pg_ctx
    card, video = (data_dir / CARD).read_bytes(), (data_dir / LIVE_VIDEO).read_bytes()
    pair = []
    with ctx.db() as db:
        for _ in range(2):
            b = factories.beneficiary(db, ctx.keyring)
            s = create_session(db, ctx, b, Channel.SELF, False, "api:test").session
            sessions.upload(db, ctx, s, UploadKind.ID_CARD, card, "image/jpeg", f"card-{s.id}")
            pair.append((s.id, s.nonce))
    first = ctx.session_factory()
    s1 = sessions.get_session(first, pair[0][0], for_update=True)
    assert sessions.upload(first, ctx, s1, UploadKind.VIDEO, video, "video/mp4", "v-1", pair[0][1])

    def second() -> bool:
        with ctx.db() as db:
            s2 = sessions.get_session(db, pair[1][0], for_update=True)
            return sessions.upload(db, ctx, s2, UploadKind.VIDEO, video, "video/mp4", "v-2", pair[1][1])

    t, out = started(second)
    t.join(1.0)
    assert t.is_alive()  # waiting on the fingerprint's unique index
    first.commit()
    first.close()
    t.join(30)
    assert out == ["VIDEO_DUPLICATE"]
    with ctx.db() as db:
        s2 = db.get(CertSession, pair[1][0])
        assert s2 is not None and s2.state == "open" and s2.video_key is None and s2.nonce_used_at is None
    assert not ctx.storage.exists(f"sessions/{pair[1][0]}/video")


def test_a_double_tap_on_the_h5_session_link_is_answered_not_a_500(pg_ctx: ServiceContext) -> None:
    """Two link requests for one session at once: both found no link and inserted one; the second ended on the
    primary key as a 500. Now it waits for the first and answers as it does. The session is one the family page of
    this login opened (the only kind the link takes, `links.link_family_session`)."""
    from service.adapters.http.app import create_app
    from service.features.proxy import operators
    from service.features.proxy.models import ProxySession, ProxySessionKind
    from service.features.wechat.h5 import identity
    from service.features.wechat.models import WeChatSessionLink

    ctx = pg_ctx
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        op = operators.login(db, ctx, "wechat", "openid-tap", operators.H5_CLIENT).operator
        new = create_session(db, ctx, b, Channel.PROXY, False, f"operator:{op.id}")
        db.add(ProxySession(session_id=new.session.id, kind=ProxySessionKind.CERTIFICATION.value, operator_id=op.id))
        db.commit()
        sid, token = new.session.id, new.token
    first = ctx.session_factory()
    first.add(WeChatSessionLink(session_id=sid, openid="openid-tap"))
    first.flush()  # the first tap's link, not yet committed
    with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as client:
        client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-tap"))
        t, out = started(
            lambda: client.post(f"/h5/api/sessions/{sid}/link", headers={"Authorization": f"Bearer {token}"})
        )
        t.join(1.0)
        assert t.is_alive()  # waiting on the link's primary key
        first.commit()
        first.close()
        t.join(30)
    [response] = out
    assert response.status_code == 200 and response.json() == {"session_id": sid, "linked": True}  # type: ignore[attr-defined]
    assert count(ctx, WeChatSessionLink, WeChatSessionLink.session_id == sid) == 1


def test_two_purges_at_once_purge_and_count_each_session_once(pg_ctx: ServiceContext) -> None:
    """Celery beat's daily upkeep and the cycle run at the same moment: the second purge read the sessions the
    first was purging and purged (and audited) them again. Rows the other run holds are now left to it."""
    from service.certification.retention import purge_media

    ctx = pg_ctx
    old = utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 1)
    ids = []
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        for _ in range(2):
            s = create_session(db, ctx, b, Channel.SELF, False, "test").session
            s.state, s.decision, s.decided_at = SessionState.DECIDED, "reject", old
            ids.append(s.id)
    first = ctx.session_factory()
    held = sessions.get_session(first, ids[0], for_update=True)  # the other run is purging this one
    t, out = started(lambda: purge_media(ctx))
    t.join(30)
    assert out == [1]  # did not wait, did not touch the held session
    held.media_purged_at = utcnow()
    first.commit()
    first.close()
    assert purge_media(ctx) == 0
    purges = [e.detail for e in _audit(ctx, "retention.purge")]
    assert purges == [{"sessions": 1}]


def _audit(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))
