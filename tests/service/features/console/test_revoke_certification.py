"""A supervisor revokes a certification found fraudulent afterwards from the person's page (routes_revoke.py); a
reviewer cannot, a supervisor outside the person's region scope reaches nothing, and the revocation is in the
console's audit chain. Before: the console had no such action at all."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Certification, utcnow
from service.certification.processing import accept_session
from service.certification.revocation import revoke_certification
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.case_media import template_source
from service.features.console.models import StaffUser
from service.features.proxy.models import ProxyBinding, ProxySession, ProxySessionKind
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import certified_at_counter, login, new_client, revoke_by_two, revoke_form


def _revoked(ctx: ServiceContext, cid: int) -> Certification:
    return factories.update(ctx, Certification, cid)


def test_a_supervisor_revokes_from_the_persons_page(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, cid = certified_at_counter(ctx)
    csrf = login(app_client, "sup1")
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    assert action in page and "冒领 / 他人代替" in page
    # Two supervisors (Part BK): sup1 asks, sup2 confirms.
    r = revoke_by_two(app_client, action, revoke_form(csrf))
    assert r.status_code == 200 and r.url.path == f"/console/beneficiaries/{bid}"
    assert "已撤销" in r.text and "老人已于上月去世" in r.text and action not in r.text
    cert = _revoked(ctx, cid)
    assert (cert.revoke_reason, cert.revoked_by) == ("impersonation", "staff:sup2")
    with ctx.db() as db:
        entry = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "certification.revoke")).one()
        assert entry.actor == "staff:sup2" and entry.detail["certification"] == cid
    # Sent again (a second tab, a double click): refused with a sentence, nothing changes.
    again = app_client.post(action, data=revoke_form(csrf, "other", "再次提交"))
    assert again.status_code == 409 and "该认证已撤销" in again.text
    assert _revoked(ctx, cid).revoke_reason == "impersonation"


def test_a_reviewer_cannot_revoke(app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]) -> None:
    bid, cid = certified_at_counter(ctx)
    csrf = login(app_client, "rev1")
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    assert action not in app_client.get(f"/console/beneficiaries/{bid}").text
    r = app_client.post(action, data=revoke_form(csrf))
    assert r.status_code == 403 and "主管" in r.text
    assert _revoked(ctx, cid).revoked_at is None


def test_a_refused_form_says_why_and_revokes_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, cid = certified_at_counter(ctx)
    other_bid, other_cid = certified_at_counter(ctx)
    csrf = login(app_client, "sup1")
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    no_note = app_client.post(action, data=revoke_form(csrf, note=" "))
    assert no_note.status_code == 422 and "请选择撤销原因" in no_note.text
    no_reason = app_client.post(action, data=revoke_form(csrf, reason="whatever"))
    assert no_reason.status_code == 422
    # Another person's certification named under this person's page: not found, whatever its id.
    crossed = app_client.post(f"/console/beneficiaries/{bid}/certifications/{other_cid}/revoke", data=revoke_form(csrf))
    assert crossed.status_code == 404 and "认证记录不存在" in crossed.text
    bad_csrf = app_client.post(action, data=revoke_form("wrong"))
    assert bad_csrf.status_code == 403
    assert _revoked(ctx, cid).revoked_at is None and _revoked(ctx, other_cid).revoked_at is None
    assert other_bid != bid


def test_a_supervisor_outside_the_persons_region_reaches_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, cid = certified_at_counter(ctx)
    with ctx.db() as db:
        user = db.get(StaffUser, staff_users["sup2"])
        assert user is not None
        user.scope = ["4201"]  # 武汉市: the person is in 济南
    wuhan = new_client(app_client)
    csrf = login(wuhan, "sup2")
    r = wuhan.post(f"/console/beneficiaries/{bid}/certifications/{cid}/revoke", data=revoke_form(csrf))
    assert r.url.path == "/console/roster"
    assert _revoked(ctx, cid).revoked_at is None


def test_the_case_page_stops_showing_the_revoked_sessions_face_as_the_template(ctx: ServiceContext) -> None:
    """The case page shows a frame of the latest other accepted session for the enrolled template: after a
    revocation, that was still the impostor's face, next to the person's new video."""
    now, today = utcnow(), local_today(ctx.settings)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        sessions = []
        for days, decision in ((300, "accept"), (5, "accept"), (0, "review")):
            s = factories.session_row(
                b.id, state="decided", decision=decision, video_key="v", decided_at=now - dt.timedelta(days=days)
            )
            db.add(s)
            db.flush()
            if decision == "accept":
                accept_session(db, ctx, s, b, today - dt.timedelta(days=days), None)
            sessions.append(s)
        genuine, fraud, case = sessions
        source = template_source(db, case)
        assert source is not None and source.id == fraud.id
        cid = db.scalars(select(Certification.id).where(Certification.session_id == fraud.id)).one()
        revoke_certification(db, ctx.rules, cid, "impersonation", "复查发现为他人", "staff:sup1", hold_days=180)
        source = template_source(db, case)
        assert source is not None and source.id == genuine.id


def test_revoking_a_relatives_proxy_certification_locks_their_binding(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """冒领 through the relatives' flow (the relative filmed the dead parent's photo): the binding they certified
    under is locked pending staff review, as after repeated failures, so the same relative cannot certify the
    parent again that way before staff have looked (they unlock it: POST /api/v1/proxy/bindings/{id}/unlock)."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring)
        op, binding = factories.relative_binding(db, elder.id)
        s = factories.session_row(elder.id, channel="proxy", state="decided", decision="accept", decided_at=utcnow())
        db.add(s)
        db.flush()
        db.add(
            ProxySession(
                session_id=s.id, kind=ProxySessionKind.CERTIFICATION.value, operator_id=op.id, binding_id=binding.id
            )
        )
        db.flush()
        accept_session(db, ctx, s, elder, today - dt.timedelta(days=3), None)
        cid = db.scalars(select(Certification.id).where(Certification.session_id == s.id)).one()
        bid, binding_id = elder.id, binding.id
    csrf = login(app_client, "sup1")
    r = revoke_by_two(app_client, f"/console/beneficiaries/{bid}/certifications/{cid}/revoke", revoke_form(csrf))
    assert r.status_code == 200 and "已锁定" in r.text
    row = factories.update(ctx, ProxyBinding, binding_id)
    assert row.locked and not row.flagged  # flagged says the relative filmed themselves: not what was found here


def test_the_case_page_history_shows_a_revoked_certification_as_revoked(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before, the case page's history read 通过 for a certification revoked since (found by review)."""
    bid, cid = certified_at_counter(ctx)
    session_id = _revoked(ctx, cid).session_id
    csrf = login(app_client, "sup1")

    def history() -> str:
        page: str = app_client.get(f"/console/cases/{session_id}").text
        return page[page.index('id="history"') : page.index("</table>", page.index('id="history"'))]

    assert "通过" in history() and "已撤销" not in history()
    assert revoke_by_two(
        app_client, f"/console/beneficiaries/{bid}/certifications/{cid}/revoke", revoke_form(csrf)
    ).is_success
    assert "已撤销" in history()
