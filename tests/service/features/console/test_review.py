"""Review queue, claims, the case page and decisions, on sessions decided by the real pipeline from real
media (see conftest: a strict passive-liveness policy sends the live video to review)."""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from pipelines.decision.runner import Certifier
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CertSession, Channel, SessionState
from service.certification.sessions import create_session
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.audit_chain import verify_chain
from service.features.console.models import ReviewDecision
from tests.service import factories
from tests.service.features.console.conftest import Sample, csrf_of, login, make_case


@pytest.fixture
def case(ctx: ServiceContext, strict_certifier: Certifier, sample: Sample) -> tuple[str, int]:
    return make_case(ctx, strict_certifier, sample)


@pytest.fixture
def proxy_case(ctx: ServiceContext, strict_certifier: Certifier, sample: Sample) -> tuple[str, int]:
    return make_case(ctx, strict_certifier, sample, channel=Channel.PROXY)


def claim(client: TestClient, sid: str, csrf: str) -> int:
    r: Response = client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf})
    return r.status_code


def decide(client: TestClient, sid: str, csrf: str, decision: str, reason: str = "人像一致，活体动作完整") -> str:
    r: Response = client.post(
        f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": decision, "reason": reason}
    )
    return r.text


def test_real_borderline_session_is_queued_with_its_reason(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, _ = case
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "review" and "SPOOF_SUSPECTED" in s.reasons
    login(app_client, "rev1")
    page = app_client.get("/console/queue").text
    assert sid in page and "未领取" in page
    assert sid in app_client.get("/console/queue", params={"reason": "SPOOF_SUSPECTED"}).text
    assert sid not in app_client.get("/console/queue", params={"reason": "FACE_MISMATCH"}).text
    assert sid not in app_client.get("/console/queue", params={"channel": "proxy"}).text
    assert sid in app_client.get("/console/queue", params={"channel": "self", "region": "61"}).text


def test_case_page_shows_real_pictures_scores_and_thresholds(
    app_client: TestClient,
    ctx: ServiceContext,
    case: tuple[str, int],
    staff_users: dict[str, int],
    strict_certifier: Certifier,
) -> None:
    sid, _ = case
    login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.result is not None
        result = s.result
    # Scores and the thresholds of this decision, to three decimals (the raw six-decimal values are noise).
    assert f"{result['scores']['card_similarity']:.3f}" in page.text
    assert f"{result['thresholds']['face_accept']:.3f}" in page.text
    assert "向左转头" in page.text and "静默活体" in page.text
    # The pictures are real crops: the card's portrait and each best frame show exactly one face.
    n_frames = len(result["liveness"]["best_frames"])
    assert n_frames >= 1
    for path in ["card/0"] + [f"frame/{i}" for i in range(n_frames)]:
        r = app_client.get(f"/console/cases/{sid}/img/{path}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", path
        img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and max(img.shape[:2]) <= 360
        assert len(strict_certifier.matcher.detect(img)) == 1, path
    assert app_client.get(f"/console/cases/{sid}/img/frame/{n_frames}").status_code == 404
    assert app_client.get(f"/console/cases/{sid}/img/template/0").status_code == 404  # nothing enrolled yet
    assert app_client.get(f"/console/cases/{sid}/img/portrait/0").status_code == 404  # no such picture kind


def test_claim_is_exclusive_and_release_frees_it(
    app_client: TestClient, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, _ = case
    csrf1 = login(app_client, "rev1")
    other = TestClient(app_client.app)
    csrf2 = login(other, "rev2")
    assert claim(app_client, sid, csrf1) == 200
    assert claim(other, sid, csrf2) == 409
    assert "由 rev1-姓名 领取，您的决定未保存" in decide(other, sid, csrf2, "accept")
    assert "已由 rev1-姓名 领取" in other.get(f"/console/cases/{sid}").text
    assert app_client.post(f"/console/cases/{sid}/release", data={"csrf": csrf1}).status_code == 200
    assert claim(other, sid, csrf2) == 200
    assert claim(app_client, sid, csrf1) == 409


def test_accept_certifies_and_resumes_the_beneficiary(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, bid = case
    csrf = login(app_client, "rev1")
    assert claim(app_client, sid, csrf) == 200
    assert "请填写理由" in decide(app_client, sid, csrf, "accept", reason="  ")
    assert "已完成审核" in decide(app_client, sid, csrf, "accept")
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        b = db.get(Beneficiary, bid)
        assert s is not None and b is not None
        assert s.decision == "accept" and s.result is not None and s.result["review"]["reviewer"] == "rev1"
        assert b.status == "active" and b.valid_until is not None and b.valid_until > b.last_certified_on  # type: ignore[operator]
        assert db.scalar(select(Certification).where(Certification.session_id == sid)) is not None
        actions = [e.action for e in db.scalars(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq))]
        assert {"case.claim", "case.decide.final"} <= set(actions)
        assert verify_chain(db).ok
    assert sid not in app_client.get("/console/queue").text
    assert "该案件已处理" in decide(app_client, sid, csrf, "reject")


def test_retry_closes_the_case_without_certifying(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, bid = case
    csrf = login(app_client, "rev1")
    claim(app_client, sid, csrf)
    assert "已完成审核" in decide(app_client, sid, csrf, "retry", "视频过暗，请重新录制")
    with ctx.db() as db:
        s, b = db.get(CertSession, sid), db.get(Beneficiary, bid)
        assert s is not None and b is not None and s.decision == "retry" and b.status == "suspended"


def test_proxy_rejection_waits_for_a_second_supervisor(
    app_client: TestClient, ctx: ServiceContext, proxy_case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, bid = proxy_case
    sup1 = TestClient(app_client.app)
    csrf_s1 = login(sup1, "sup1")
    assert claim(sup1, sid, csrf_s1) == 200
    assert "等待主管复核" in decide(sup1, sid, csrf_s1, "reject", "代办人与本人不符")
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "review"  # not rejected yet

    rev = TestClient(app_client.app)
    csrf_r = login(rev, "rev1")
    assert "待主管复核" in rev.get("/console/queue").text
    # A reviewer cannot give the second decision, nor hold the case off the supervisors (test_claims.py).
    assert claim(rev, sid, csrf_r) == 409
    assert "请先领取该案件" in decide(rev, sid, csrf_r, "reject", "同意")

    assert claim(sup1, sid, csrf_s1) == 409  # nor can the first decider
    assert "您已提交过决定，等待另一位主管复核" in decide(sup1, sid, csrf_s1, "reject", "再次确认")

    csrf_s2 = login(app_client, "sup2")
    assert "代办人与本人不符" in app_client.get(f"/console/cases/{sid}").text
    assert claim(app_client, sid, csrf_s2) == 200
    assert "已完成审核" in decide(app_client, sid, csrf_s2, "reject", "复核同意不通过")
    with ctx.db() as db:
        s, b = db.get(CertSession, sid), db.get(Beneficiary, bid)
        assert s is not None and b is not None and s.decision == "reject" and b.status == "suspended"
        stages = [(d.stage, d.decision) for d in db.scalars(select(ReviewDecision).order_by(ReviewDecision.id))]
        assert stages == [("first", "reject"), ("second", "reject")]


def test_views_of_cases_are_audited_one_row_per_view(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, _ = case
    login(app_client, "rev2")
    # A picture opened by a direct link, without a view of the case: its own row.
    assert app_client.get(f"/console/cases/{sid}/img/card/0").status_code == 200
    app_client.get(f"/console/cases/{sid}")
    # The page's pictures, loaded right after the page: covered by its `case.view` row, which names them.
    for path in ("card/0", "frame/0", "frame/1"):
        app_client.get(f"/console/cases/{sid}/img/{path}")
    with ctx.db() as db:
        rows = db.scalars(
            select(ConsoleAuditEntry).where(ConsoleAuditEntry.target == sid).order_by(ConsoleAuditEntry.seq)
        ).all()
        assert [(e.actor, e.action) for e in rows] == [("staff:rev2", "case.image"), ("staff:rev2", "case.view")]
        s = db.get(CertSession, sid)
        assert s is not None and s.result is not None
        n_frames = len(s.result["liveness"]["best_frames"])
        assert rows[1].detail["images"] == ["card"] + [f"frame:{i}" for i in range(n_frames)]
    # Another reviewer's pictures are not covered by rev2's view.
    other = TestClient(app_client.app)
    login(other, "rev1")
    other.get(f"/console/cases/{sid}/img/card/0")
    with ctx.db() as db:
        rows = db.scalars(
            select(ConsoleAuditEntry).where(ConsoleAuditEntry.target == sid).order_by(ConsoleAuditEntry.seq)
        ).all()
        assert [(e.actor, e.action) for e in rows][-1] == ("staff:rev1", "case.image")


def test_csrf_needed_to_claim_and_decide(
    app_client: TestClient, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, _ = case
    csrf = login(app_client, "rev1")
    assert claim(app_client, sid, "") == 403
    assert claim(app_client, sid, csrf) == 200
    r = app_client.post(f"/console/cases/{sid}/decide", data={"decision": "accept", "reason": "x"})
    assert r.status_code == 403
    assert csrf_of(app_client.get(f"/console/cases/{sid}").text) == csrf


def test_queue_is_oldest_first_across_review_and_failed_jobs(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, _ = case
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    failed: list[str] = []
    with ctx.db() as db:
        for hours in (5, 1):  # a job that failed five hours ago, and one an hour ago
            b = factories.beneficiary(db, ctx.keyring)
            s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
            s.state, s.queued_at = SessionState.FAILED, now - dt.timedelta(hours=hours)
            failed.append(s.id)
        review = db.get(CertSession, sid)
        assert review is not None
        review.decided_at = now - dt.timedelta(hours=3)
    login(app_client, "rev1")
    page = app_client.get("/console/queue").text
    positions = [page.index(f'data-session="{x}"') for x in (failed[0], sid, failed[1])]
    assert positions == sorted(positions)
