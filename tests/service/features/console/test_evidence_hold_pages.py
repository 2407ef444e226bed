"""A supervisor holds a suspect session's media as evidence from the person's page, and releases the hold early
(routes_revoke.py, service/certification/evidence_hold.py); a reviewer cannot, a supervisor outside the person's
region reaches nothing, a session of another person is not found, and each step is in the console's audit chain.
A revocation as impersonation holds the media, or says on the page that they were deleted already. Before: the
console had no hold, and the page said nothing of the sessions' media."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Certification, EvidenceHold, utcnow
from service.certification.processing import accept_session
from service.certification.retention import purge_media
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.models import StaffUser
from service.features.console.web import fmt_dt
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login, new_client, revoke_by_two


def _certified(ctx: ServiceContext, days_ago: int = 3) -> tuple[int, str, int, list[str]]:
    """A person certified by video `days_ago` days ago, card and video stored: (person, session, certification,
    media keys)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(
            b.id, state="decided", decision="accept", decided_at=utcnow() - dt.timedelta(days=days_ago)
        )
        keys = [f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"]
        for key in keys:
            ctx.storage.put(key, b"media")
        s.id_card_key, s.video_key = keys
        db.add(s)
        db.flush()
        accept_session(db, ctx, s, b, local_today(ctx.settings) - dt.timedelta(days=days_ago), None)
        cid = db.scalars(select(Certification.id).where(Certification.session_id == s.id)).one()
        return b.id, s.id, cid, keys


def _holds(ctx: ServiceContext, sid: str) -> list[EvidenceHold]:
    with ctx.db() as db:
        return list(db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).all())


def _chain(ctx: ServiceContext, action: str) -> list[ConsoleAuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == action)).all())


def test_a_supervisor_holds_then_releases_a_sessions_media(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, sid, _cid, keys = _certified(ctx, ctx.settings.storage.retention_days + 2)
    csrf = login(app_client, "sup1")
    hold_action = f"/console/beneficiaries/{bid}/sessions/{sid}/hold"
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert hold_action in page and "保存中" in page and "涉嫌冒领，调查核实中" in page
    r = app_client.post(hold_action, data={"csrf": csrf, "reason": "investigation", "note": "群众举报：老人已去世"})
    assert r.status_code == 200 and r.url.path == f"/console/beneficiaries/{bid}"
    (hold,) = _holds(ctx, sid)
    ends = hold.placed_at + dt.timedelta(days=ctx.settings.storage.evidence_hold_days)
    assert (
        "保全至" in r.text
        and "群众举报：老人已去世" in r.text
        and f"保全至 <b>{fmt_dt(ends, ctx.settings.time_zone)}</b>" in r.text
    )
    assert hold.placed_by == "staff:sup1" and hold.reason == "investigation"
    (entry,) = _chain(ctx, "evidence.hold")
    assert entry.actor == "staff:sup1" and entry.detail["session"] == sid
    purge_media(ctx)
    assert all(ctx.storage.exists(k) for k in keys)  # past its retention period, kept while held
    release_action = f"/console/beneficiaries/{bid}/holds/{hold.id}/release"
    assert release_action in r.text
    empty = app_client.post(release_action, data={"csrf": csrf, "note": " "})
    assert empty.status_code == 422 and "解除保全的理由" in empty.text
    asked = app_client.post(release_action, data={"csrf": csrf, "note": "核实为本人认证"})
    assert asked.status_code == 200 and "待另一位主管确认" in asked.text  # two supervisors (Part BC)
    sup2 = new_client(app_client)
    done = sup2.post(release_action, data={"csrf": login(sup2, "sup2"), "note": "同意解除"})
    assert done.status_code == 200 and release_action not in done.text
    assert _holds(ctx, sid)[0].released_by == "staff:sup2"
    assert [e.detail["hold"] for e in _chain(ctx, "evidence.release")] == [hold.id]
    again = app_client.post(release_action, data={"csrf": csrf, "note": "再次提交"})
    assert again.status_code == 409 and "该保全已到期或已解除" in again.text
    purge_media(ctx)
    assert not any(ctx.storage.exists(k) for k in keys)
    assert "已删除" in app_client.get(f"/console/beneficiaries/{bid}").text


def test_a_reviewer_cannot_hold_nor_release(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, sid, _cid, _keys = _certified(ctx)
    sup = new_client(app_client)
    sup_csrf = login(sup, "sup1")
    sup.post(
        f"/console/beneficiaries/{bid}/sessions/{sid}/hold", data={"csrf": sup_csrf, "reason": "other", "note": "x"}
    )
    (hold,) = _holds(ctx, sid)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert "保全至" in page and "/hold" not in page and "/release" not in page
    r = app_client.post(
        f"/console/beneficiaries/{bid}/sessions/{sid}/hold", data={"csrf": csrf, "reason": "other", "note": "x"}
    )
    assert r.status_code == 403
    r = app_client.post(f"/console/beneficiaries/{bid}/holds/{hold.id}/release", data={"csrf": csrf, "note": "x"})
    assert r.status_code == 403
    assert len(_holds(ctx, sid)) == 1 and _holds(ctx, sid)[0].released_at is None


def test_out_of_scope_another_persons_session_and_a_bad_token_change_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, sid, _cid, _keys = _certified(ctx)
    other_bid, other_sid, _other_cid, _ = _certified(ctx)
    csrf = login(app_client, "sup1")
    form = {"csrf": csrf, "reason": "investigation", "note": "涉嫌冒领"}
    crossed = app_client.post(f"/console/beneficiaries/{bid}/sessions/{other_sid}/hold", data=form)
    assert crossed.status_code == 404 and "认证记录不存在" in crossed.text
    assert (
        app_client.post(f"/console/beneficiaries/{bid}/sessions/{sid}/hold", data={**form, "csrf": "x"}).status_code
        == 403
    )
    no_reason = app_client.post(f"/console/beneficiaries/{bid}/sessions/{sid}/hold", data={**form, "reason": "revoked"})
    assert no_reason.status_code == 422 and "请选择保全原因" in no_reason.text  # `revoked`: a revocation's own
    app_client.post(f"/console/beneficiaries/{other_bid}/sessions/{other_sid}/hold", data=form)
    (other_hold,) = _holds(ctx, other_sid)
    crossed_release = app_client.post(
        f"/console/beneficiaries/{bid}/holds/{other_hold.id}/release", data={"csrf": csrf, "note": "x"}
    )
    assert crossed_release.status_code == 404 and _holds(ctx, other_sid)[0].released_at is None
    with ctx.db() as db:
        user = db.get(StaffUser, staff_users["sup2"])
        assert user is not None
        user.scope = ["4201"]  # 武汉市: the person is in 济南
    wuhan = new_client(app_client)
    wuhan_csrf = login(wuhan, "sup2")
    r = wuhan.post(f"/console/beneficiaries/{bid}/sessions/{sid}/hold", data={**form, "csrf": wuhan_csrf})
    assert r.url.path == "/console/roster"
    r = wuhan.post(
        f"/console/beneficiaries/{other_bid}/holds/{other_hold.id}/release", data={"csrf": wuhan_csrf, "note": "x"}
    )
    assert r.url.path == "/console/roster" and _holds(ctx, other_sid)[0].released_at is None
    assert _holds(ctx, sid) == []


def test_a_revocation_as_impersonation_shows_the_hold_or_that_the_media_went(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, sid, cid, keys = _certified(ctx, ctx.settings.storage.retention_days + 2)
    gone_bid, gone_sid, gone_cid, _ = _certified(ctx, ctx.settings.storage.retention_days + 2)
    csrf = login(app_client, "sup1")
    form = {"csrf": csrf, "reason": "impersonation", "note": "家属持老人照片认证"}
    r = revoke_by_two(app_client, f"/console/beneficiaries/{bid}/certifications/{cid}/revoke", form)
    assert r.status_code == 200 and "影像已保全至" in r.text
    purge_media(ctx)  # the other's media go before its revocation
    assert all(ctx.storage.exists(k) for k in keys)
    r = revoke_by_two(app_client, f"/console/beneficiaries/{gone_bid}/certifications/{gone_cid}/revoke", form)
    assert r.status_code == 200 and "影像已按保存期限删除，无可保全" in r.text
    entries = _chain(ctx, "certification.revoke")
    assert sorted(e.detail["evidence"] for e in entries) == ["held", "purged"]
    with ctx.db() as db:
        placed = db.scalars(select(AuditEntry).where(AuditEntry.action == "evidence.hold.placed")).all()
        assert [e.detail["session"] for e in placed] == [sid] and gone_sid != sid
        assert placed[0].detail["reason"] == "revoked" and placed[0].detail["until"] > utcnow().isoformat()
