"""Who may claim a case: a first decision awaiting a second is claimed only by someone who may give it (a
supervisor other than the first decider), so nobody else holds it off the supervisors for the claim's lifetime;
a claim past its lifetime is taken over from the queue and the case page, as both pages say."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from service.features.console.auth import Role, Staff
from service.features.console.config import ConsoleConfig
from service.features.console.models import ReviewClaim, ReviewDecision, StaffUser
from service.features.console.review_queue import CaseError, claim_case, held_in_console, lapsed, list_queue
from service.infra import clock
from tests.service import factories
from tests.service.features.console.conftest import login, new_client
from tests.service.features.console.test_case_held import _review_case
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)


def _claim(client: TestClient, sid: str, csrf: str) -> tuple[int, str]:
    r = client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf})
    return r.status_code, r.text


def _decide(client: TestClient, sid: str, csrf: str, decision: str, reason: str) -> tuple[int, str]:
    r = client.post(f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": decision, "reason": reason})
    return r.status_code, r.text


def _claim_form(page: str, sid: str) -> bool:
    return f'action="/console/cases/{sid}/claim"' in page


def _awaiting_a_supervisor(app_client: TestClient, ctx: ServiceContext) -> tuple[str, str]:
    """A relative's case rev1 (logged in on `app_client`) claimed and rejected: it awaits a supervisor's second
    decision. (The case, rev1's CSRF value.)"""
    sid = _review_case(ctx)
    csrf_r1 = login(app_client, "rev1")
    assert _claim(app_client, sid, csrf_r1)[0] == 200
    assert "等待主管复核" in _decide(app_client, sid, csrf_r1, "reject", "代办人与本人不符")[1]
    return sid, csrf_r1


def test_a_case_awaiting_a_second_decision_is_claimed_only_by_another_supervisor(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid, csrf_r1 = _awaiting_a_supervisor(app_client, ctx)

    rev2 = new_client(app_client)
    csrf_r2 = login(rev2, "rev2")
    # Neither a reviewer nor the first decider may hold the case: no button, and the claim itself is refused.
    for client, csrf in ((rev2, csrf_r2), (app_client, csrf_r1)):
        assert not _claim_form(client.get("/console/queue").text, sid)
        page = client.get(f"/console/cases/{sid}").text
        assert not _claim_form(page, sid) and "另一位主管" in page
        status, text = _claim(client, sid, csrf)
        assert status == 409 and "等待主管复核" in text
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by is None and c.pending_decision == "reject"

    # So a supervisor takes it at once (before: 该案件已被其他审核员领取, for the claim's 30 minutes).
    sup1 = new_client(app_client)
    csrf_s1 = login(sup1, "sup1")
    assert _claim_form(sup1.get(f"/console/cases/{sid}").text, sid)
    assert _claim(sup1, sid, csrf_s1)[0] == 200
    assert "已完成审核" in _decide(sup1, sid, csrf_s1, "reject", "复核同意不通过")[1]
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "reject"
        stages = [(d.stage, d.user_id) for d in db.scalars(select(ReviewDecision).order_by(ReviewDecision.id))]
        assert stages == [("first", staff_users["rev1"]), ("second", staff_users["sup1"])]


def test_a_supervisor_who_gave_the_first_decision_cannot_claim_the_second(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _review_case(ctx)
    csrf = login(app_client, "sup1")
    assert _claim(app_client, sid, csrf)[0] == 200
    assert "等待主管复核" in _decide(app_client, sid, csrf, "reject", "代办人与本人不符")[1]
    status, text = _claim(app_client, sid, csrf)
    assert status == 409 and "另一位主管" in text
    # 下一件 does not hand it to them either.
    r = app_client.post("/console/cases/next", data={"csrf": csrf})
    assert "暂无可处理的案件" in r.text


def test_a_lapsed_claim_is_taken_over_from_the_case_page_and_the_queue(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _review_case(ctx, channel="self")
    csrf_r1 = login(app_client, "rev1")
    assert _claim(app_client, sid, csrf_r1)[0] == 200
    rev2 = new_client(app_client)
    csrf_r2 = login(rev2, "rev2")
    # Held: no way to take it, and the claim is refused.
    assert not _claim_form(rev2.get(f"/console/cases/{sid}").text, sid)
    assert not _claim_form(rev2.get("/console/queue").text, sid)
    assert _claim(rev2, sid, csrf_r2)[0] == 409

    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None
        c.claimed_at = utcnow() - dt.timedelta(hours=2)  # past the claim's lifetime (30 min)
    page = rev2.get(f"/console/cases/{sid}").text
    assert "分钟未处理可接手" in page and _claim_form(page, sid) and "接手此案件" in page
    assert _claim_form(rev2.get("/console/queue").text, sid)
    assert _claim(rev2, sid, csrf_r2)[0] == 200
    # The old holder's page is now a stale one: their decision is refused, the new holder's counts.
    assert "由 rev2-姓名 领取" in _decide(app_client, sid, csrf_r1, "accept", "旧页面")[1]
    assert "已完成审核" in _decide(rev2, sid, csrf_r2, "retry", "视频过暗，请重新录制")[1]
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "retry"
        assert [d.user_id for d in db.scalars(select(ReviewDecision))] == [staff_users["rev2"]]


def _backlog(ctx: ServiceContext, n: int, pending_by: int | None = None) -> list[str]:
    """`n` open cases older than anything made after them (a day old), each awaiting a supervisor's second
    decision when `pending_by` gave a first one."""
    ids: list[str] = []
    with ctx.db() as db:
        for _ in range(n):
            b = factories.beneficiary(db, ctx.keyring)
            s = factories.session_row(
                b.id, channel="proxy", state="decided", decision="review", decided_at=utcnow() - dt.timedelta(days=1)
            )
            db.add(s)
            db.flush()
            if pending_by is not None:
                db.add(
                    ReviewClaim(
                        session_id=s.id,
                        pending_decision="reject",
                        pending_reason="代办人与本人不符",
                        pending_by=pending_by,
                        pending_at=utcnow(),
                    )
                )
            ids.append(s.id)
    return ids


def test_next_case_returns_to_ones_own_claim_behind_a_long_queue(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: 下一件 looked for the reviewer's own claim among the first 200 cases only, so with a longer
    queue it claimed the oldest case as well, and the reviewer held two."""
    _backlog(ctx, 200)
    mine = _review_case(ctx, channel="self")  # the newest case, claimed from its page
    csrf = login(app_client, "rev1")
    assert _claim(app_client, mine, csrf)[0] == 200
    r = app_client.post("/console/cases/next", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{mine}"
    with ctx.db() as db:
        held = db.scalars(select(ReviewClaim.session_id).where(ReviewClaim.claimed_by == staff_users["rev1"])).all()
        assert held == [mine]


def test_next_case_finds_a_free_case_behind_second_decisions_it_cannot_give(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: 下一件 tried the first 200 cases only; 200 older first decisions awaiting a supervisor left a
    reviewer with 队列中暂无可处理的案件 while a case they could decide waited behind them."""
    _backlog(ctx, 200, pending_by=staff_users["rev2"])
    free = _review_case(ctx, channel="self")
    csrf = login(app_client, "rev1")
    r = app_client.post("/console/cases/next", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{free}"


def _staff(ctx: ServiceContext, username: str) -> Staff:
    with ctx.db() as db:
        user = StaffUser(username=username, display_name=username, role=Role.REVIEWER.value, password_hash="-")
        db.add(user)
        db.flush()
        return Staff(id=user.id, username=username, display_name=username, role=Role.REVIEWER, csrf="-")


def test_a_claim_made_after_the_queue_was_read_is_seen_under_the_lock(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """下一件 reads the queue with its claim rows, then claims case by case. A claim another reviewer made in
    between was locked but not re-read (the row was already loaded in the session), so it was overwritten and
    both reviewers held the case. Now the row is re-read under the lock and the case is refused."""
    ctx = pg_ctx
    sid = _review_case(ctx, channel="self")
    rev1, rev2 = _staff(ctx, "rev1"), _staff(ctx, "rev2")
    with ctx.db() as db:
        db.add(ReviewClaim(session_id=sid))  # released earlier: a row without a holder
    cfg = ConsoleConfig()
    with ctx.db() as first:
        queue = list_queue(first, staff=rev1).items  # the claim row loaded, and kept (as 下一件 keeps its list)
        assert [item.session.id for item in queue] == [sid] and queue[0].claim is not None
        with ctx.db() as second:
            claim_case(second, cfg, rev2, sid)  # committed meanwhile
        with pytest.raises(CaseError, match="已被其他审核员领取"):
            claim_case(first, cfg, rev1, sid)
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by == rev2.id


def _age_claim(ctx: ServiceContext, sid: str, minutes: int) -> dt.datetime:
    """The claim on `sid` made `minutes` ago; that time."""
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_at is not None
        c.claimed_at = utcnow() - dt.timedelta(minutes=minutes)
        return c.claimed_at


def test_claiming_again_does_not_renew_the_claim(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: claiming a case one already held started the claim's lifetime again, so a reviewer who claimed it
    every 29 minutes (or once its lifetime had passed) kept it from colleagues and from the operator API for as
    long as they liked. Now a claim's lifetime runs from its holder's first claim; claiming again changes nothing."""
    sid = _review_case(ctx, channel="self")
    csrf_r1 = login(app_client, "rev1")
    rev2 = new_client(app_client)
    csrf_r2 = login(rev2, "rev2")
    assert _claim(app_client, sid, csrf_r1)[0] == 200
    first = _age_claim(ctx, sid, 29)
    assert _claim(app_client, sid, csrf_r1)[0] == 200  # still the holder: not refused, not renewed
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by == staff_users["rev1"] and c.claimed_at == first
    _age_claim(ctx, sid, 31)  # past the lifetime (30 min) from the first claim
    assert _claim(app_client, sid, csrf_r1)[0] == 200
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        held_in_console(db, s)  # the operator API is not held off either
    page = rev2.get(f"/console/cases/{sid}").text
    assert "接手此案件" in page and _claim_form(page, sid)
    assert _claim(rev2, sid, csrf_r2)[0] == 200


def test_giving_a_case_back_and_claiming_it_again_does_not_renew_the_claim(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The same hold through 放弃 and 领取: the holder's second claim, while the first is still running,
    continues its lifetime. A colleague's claim in between starts a lifetime of its own."""
    sid = _review_case(ctx, channel="self")
    csrf_r1 = login(app_client, "rev1")
    rev2 = new_client(app_client)
    csrf_r2 = login(rev2, "rev2")
    assert _claim(app_client, sid, csrf_r1)[0] == 200
    first = _age_claim(ctx, sid, 20)
    assert app_client.post(f"/console/cases/{sid}/release", data={"csrf": csrf_r1}).status_code == 200
    assert _claim(app_client, sid, csrf_r1)[0] == 200
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by == staff_users["rev1"] and c.claimed_at == first
    first = _age_claim(ctx, sid, 40)
    assert _claim(rev2, sid, csrf_r2)[0] == 200  # lapsed: a colleague takes it over
    assert app_client.post(f"/console/cases/{sid}/release", data={"csrf": csrf_r1}).status_code == 409
    assert rev2.post(f"/console/cases/{sid}/release", data={"csrf": csrf_r2}).status_code == 200
    assert _claim(app_client, sid, csrf_r1)[0] == 200  # after someone else's hold: a lifetime of its own
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_at is not None and c.claimed_at > first + dt.timedelta(minutes=30)
    assert _claim(rev2, sid, csrf_r2)[0] == 409


def test_a_holder_past_the_lifetime_still_decides_when_nobody_took_the_case_over(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _review_case(ctx, channel="self")
    csrf = login(app_client, "rev1")
    assert _claim(app_client, sid, csrf)[0] == 200
    _age_claim(ctx, sid, 90)
    assert _claim(app_client, sid, csrf)[0] == 200
    assert "已完成审核" in _decide(app_client, sid, csrf, "retry", "视频过暗，请重新录制")[1]


def test_a_colleague_takes_over_while_the_holder_claims_again(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """Two transactions on PostgreSQL: the holder's claim past its lifetime is made again and not yet committed
    when a colleague takes the case over. The colleague waits for the row, then takes it (before: the holder's
    second claim had renewed it, and the colleague was refused)."""
    ctx = pg_ctx
    sid = _review_case(ctx, channel="self")
    rev1, rev2 = _staff(ctx, "rev1"), _staff(ctx, "rev2")
    cfg = ConsoleConfig()
    with ctx.db() as db:
        claim_case(db, cfg, rev1, sid)
    _age_claim(ctx, sid, 31)
    with ctx.db() as holder:
        claim_case(holder, cfg, rev1, sid)  # the row locked until this unit commits

        def take_over() -> object:
            with ctx.db() as db:
                claim_case(db, cfg, rev2, sid)
            return "taken"

        colleague, out = running(take_over)
        assert until(lambda: lock_waits(ctx) > 0 or not colleague.is_alive())
    colleague.join(30)
    assert out == ["taken"]
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by == rev2.id


def test_a_case_given_back_past_the_claims_lifetime_is_claimed_afresh(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: giving a case back and claiming it again continued the first claim however long ago it was made, so
    下一件 handed a reviewer a case given back yesterday under a claim already past its lifetime: a colleague could
    take it over at once (接手), and one of the two lost their work. A claim that has run out is not continued."""
    start = clock.now_utc()
    monkeypatch.setattr(clock, "now_utc", lambda: start)
    sid = _review_case(ctx, channel="self")
    csrf = login(app_client, "rev1")
    assert _claim(app_client, sid, csrf)[0] == 200
    assert app_client.post(f"/console/cases/{sid}/release", data={"csrf": csrf}).status_code == 200
    later = start + dt.timedelta(hours=20)  # the next working day
    monkeypatch.setattr(clock, "now_utc", lambda: later)
    csrf = login(app_client, "rev1")  # the console's login idled out overnight
    r = app_client.post("/console/cases/next", data={"csrf": csrf}, follow_redirects=False)
    assert r.headers["location"] == f"/console/cases/{sid}"
    page = app_client.get(f"/console/cases/{sid}").text
    assert "您的领取将于" in page and "您的领取已于" not in page
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_at == later.astimezone(dt.UTC).replace(tzinfo=None)
    rev2 = new_client(app_client)
    csrf_r2 = login(rev2, "rev2")
    assert not _claim_form(rev2.get(f"/console/cases/{sid}").text, sid)
    assert not _claim_form(rev2.get("/console/queue").text, sid)
    assert _claim(rev2, sid, csrf_r2)[0] == 409


def _hold_clock(monkeypatch: pytest.MonkeyPatch, at: dt.datetime) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: at)


def test_a_lapsed_claim_given_back_is_not_claimed_again_at_once_by_its_holder(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: a reviewer whose claim had lapsed pressed 放回队列 and 领取 and held the case for a fresh lifetime,
    again and again, so colleagues never got to take it over. Now its giver waits RECLAIM_WAIT_S (30 minutes) from
    giving it back, told so in Chinese, while a colleague may claim it at once; after the wait they claim it anew.
    Giving back before the lifetime ran out and claiming after it is the same renewal, refused alike."""
    start = clock.now_utc()
    _hold_clock(monkeypatch, start)
    sid, sid2 = _review_case(ctx, channel="self"), _review_case(ctx, channel="self")
    csrf = login(app_client, "rev1")
    assert _claim(app_client, sid, csrf)[0] == 200
    assert _claim(app_client, sid2, csrf)[0] == 200
    _hold_clock(monkeypatch, start + dt.timedelta(minutes=29))
    csrf = login(app_client, "rev1")
    assert app_client.post(f"/console/cases/{sid2}/release", data={"csrf": csrf}).status_code == 200
    now = start + dt.timedelta(minutes=31)  # both claims past their lifetime (30 min)
    _hold_clock(monkeypatch, now)
    csrf = login(app_client, "rev1")
    assert app_client.post(f"/console/cases/{sid}/release", data={"csrf": csrf}).status_code == 200
    for case, left in ((sid, 30), (sid2, 28)):
        status, text = _claim(app_client, case, csrf)
        assert status == 409 and "放回后 30 分钟内您不能重新领取" in text and f"请约 {left} 分钟后再试" in text
        page = app_client.get(f"/console/cases/{case}").text
        assert not _claim_form(page, case) and 'id="reclaim-at"' in page
        assert not _claim_form(app_client.get("/console/queue").text, case)
    r = app_client.post("/console/cases/next", data={"csrf": csrf})
    assert "暂无可处理的案件" in r.text  # 下一件 does not hand either back to them
    with ctx.db() as db:
        claims = [db.get(ReviewClaim, case) for case in (sid, sid2)]
        assert all(c is not None and c.claimed_by is None for c in claims)

    rev2 = new_client(app_client)
    csrf_r2 = login(rev2, "rev2")
    assert _claim_form(rev2.get(f"/console/cases/{sid2}").text, sid2)
    assert _claim(rev2, sid2, csrf_r2)[0] == 200  # a colleague at once, for a lifetime of their own
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid2)
        assert c is not None and c.claimed_by == staff_users["rev2"]
        assert c.claimed_at == now.astimezone(dt.UTC).replace(tzinfo=None)

    later = now + dt.timedelta(minutes=30)  # the wait is over: claimed afresh (Part CG)
    _hold_clock(monkeypatch, later)
    csrf = login(app_client, "rev1")
    assert _claim(app_client, sid, csrf)[0] == 200
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by == staff_users["rev1"] and c.released_at is None
        assert c.claimed_at == later.astimezone(dt.UTC).replace(tzinfo=None)


def test_a_supervisor_cannot_renew_a_lapsed_claim_on_a_second_decision(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A four-eyes case: the supervisor who claimed the second decision and let the claim lapse cannot give it back
    and claim it again at once (holding it off the other supervisors); the other supervisor takes it."""
    start = clock.now_utc()
    _hold_clock(monkeypatch, start)
    sid, _ = _awaiting_a_supervisor(app_client, ctx)
    sup1 = new_client(app_client)
    csrf_s1 = login(sup1, "sup1")
    assert _claim(sup1, sid, csrf_s1)[0] == 200
    _hold_clock(monkeypatch, start + dt.timedelta(minutes=45))
    csrf_s1 = login(sup1, "sup1")
    assert sup1.post(f"/console/cases/{sid}/release", data={"csrf": csrf_s1}).status_code == 200
    status, text = _claim(sup1, sid, csrf_s1)
    assert status == 409 and "不能重新领取" in text
    sup2 = new_client(app_client)
    csrf_s2 = login(sup2, "sup2")
    assert _claim(sup2, sid, csrf_s2)[0] == 200
    assert "已完成审核" in _decide(sup2, sid, csrf_s2, "reject", "复核同意不通过")[1]


def test_a_lapsed_claim_given_back_before_0023_is_claimed_afresh(ctx: ServiceContext) -> None:
    """A giving back with no time (made before migration 0023) does not hold its giver off: claimed afresh, as
    before (a case given back while its claim runs still continues it: the test above of giving back)."""
    sid = _review_case(ctx, channel="self")
    rev1, cfg = _staff(ctx, "rev1"), ConsoleConfig()
    with ctx.db() as db:
        claim_case(db, cfg, rev1, sid)
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None
        c.claimed_by, c.released_by, c.released_at = None, rev1.id, None
        c.claimed_at = utcnow() - dt.timedelta(minutes=45)
    with ctx.db() as db:
        claim_case(db, cfg, rev1, sid)
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_at is not None and not lapsed(c, cfg.claim_ttl_s)
