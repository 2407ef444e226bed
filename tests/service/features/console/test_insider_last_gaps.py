"""The last gaps of the insider review (docs/security.md, Part BK): every person a list page showed counts on their
查阅记录 and in the day's volume (one row per person shown, `console_audit_shown`, written in one batch), and one
supervisor alone no longer revokes a certification (the first asks, another confirms: the evidence release's rule).
Real console over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text, update

from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import (
    AuditEntry,
    Beneficiary,
    Certification,
    CertSession,
    EvidenceHold,
    utcnow,
)
from service.certification.second_person import ASK_DAYS
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import access_log, alert_review, identity_alerts, review_queue, revoke
from service.features.console.auth import Role, Staff
from service.features.console.config import ConsoleConfig
from service.features.console.models import AssistRequest, ConsoleAlert, ConsoleAuditShown, ReviewClaim, StaffUser
from service.features.console.review_queue import CaseError
from tests.service import factories
from tests.service.features.console.conftest import certified_at_counter, csrf_of, login, new_client, revoke_form
from tests.service.features.console.test_access_log import rows_of


def _cert(ctx: ServiceContext, cid: int) -> Certification:
    return factories.update(ctx, Certification, cid)


def _trail(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_one_supervisor_alone_cannot_revoke_a_certification(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A supervisor revoked a certification alone: the pension stopped, the template went, the person was told, on
    one person's word. The first supervisor now asks (nothing revoked), the same one asking again is refused and
    recorded, another supervisor's confirmation revokes it with the asked reason, naming both."""
    bid, cid = certified_at_counter(ctx)
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    csrf = login(app_client, "sup1")
    r = app_client.post(action, data=revoke_form(csrf))
    assert r.status_code == 200 and r.url.path == f"/console/beneficiaries/{bid}"
    assert "已申请撤销" in r.text and "须由另一位主管确认" in r.text
    assert _cert(ctx, cid).revoked_at is None
    assert [e.actor for e in _trail(ctx, "certification.revoke.asked")] == ["staff:sup1"]
    again = app_client.post(action, data=revoke_form(csrf))
    assert again.status_code == 409 and "另一位主管确认" in again.text
    assert _cert(ctx, cid).revoked_at is None
    assert [e.detail["reason"] for e in _trail(ctx, "certification.revoke.refused")] == ["REVOKE_SELF"]

    other = new_client(app_client)
    csrf2 = login(other, "sup2")
    page = other.get(f"/console/beneficiaries/{bid}").text
    assert "老人已于上月去世" in page and "确认撤销" in page  # the request, and who asked, shown before confirming
    # A confirmation naming another reason than the request's does not revoke under the request's.
    differs = other.post(action, data=revoke_form(csrf2, reason="other", note="复核"))
    assert differs.status_code == 409 and _cert(ctx, cid).revoked_at is None
    done = other.post(action, data=revoke_form(csrf2, note="复核属实"))
    assert done.status_code == 200 and "已撤销" in done.text
    cert = _cert(ctx, cid)
    assert (cert.revoke_reason, cert.revoked_by) == ("impersonation", "staff:sup2")
    assert cert.revoke_note == "家属持老人照片认证，老人已于上月去世"
    with ctx.db() as db:
        entry = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "certification.revoke")).one()
        assert entry.actor == "staff:sup2" and entry.detail["asked_by"] == "staff:sup1"
        assert entry.detail["confirm_note"] == "复核属实"


def test_an_old_revocation_request_is_not_confirmed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A request counts for ASK_DAYS (as an evidence release's); after that another supervisor's click is a new
    request, not a confirmation of a request its asker may have given up."""
    bid, cid = certified_at_counter(ctx)
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    assert app_client.post(action, data=revoke_form(login(app_client, "sup1"))).status_code == 200
    with ctx.db() as db:
        db.execute(
            update(AuditEntry)
            .where(AuditEntry.action == "certification.revoke.asked")
            .values(at=utcnow() - dt.timedelta(days=ASK_DAYS, hours=1))
        )
    other = new_client(app_client)
    assert other.post(action, data=revoke_form(login(other, "sup2"))).status_code == 200
    assert _cert(ctx, cid).revoked_at is None
    assert [e.actor for e in _trail(ctx, "certification.revoke.asked")] == ["staff:sup1", "staff:sup2"]


def _people(ctx: ServiceContext, n: int, name: str = "李桂兰", case: bool = True) -> list[tuple[int, str]]:
    """`n` people of 济南 (region 370102), each with a case waiting in the queue unless told: (row id, external
    id)."""
    out = []
    with ctx.db() as db:
        for _ in range(n):
            b = factories.beneficiary(db, ctx.keyring, name=name)
            if case:
                db.add(factories.session_row(b.id, state="decided", decision="review", decided_at=utcnow()))
            out.append((b.id, b.external_id))
    return out


def test_every_person_a_list_page_showed_is_on_their_access_log(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The queue, the alerts, the citizens' requests and a roster search named the people they showed only inside
    the entry's JSON list: not on the person's 查阅记录. Each person shown now counts there, under the list's action."""
    (bid, ext), (other, _) = _people(ctx, 2)
    with ctx.db() as db:
        db.add(ConsoleAlert(kind="certified_after_death", beneficiary_id=bid, detail={}))
        db.add(AssistRequest(beneficiary_id=bid, kind="home_visit", phone="13800000000", openid="o-1"))
    rev = new_client(app_client)
    csrf = login(rev, "rev1")
    assert rev.get("/console/queue").status_code == 200
    assert rev.get("/console/requests").status_code == 200
    assert rev.post("/console/roster/search", data={"csrf": csrf, "q": ext}).status_code == 200
    login(app_client, "sup1")
    assert app_client.get("/console/alerts").status_code == 200
    rows = rows_of(app_client.get(f"/console/beneficiaries/{bid}/access").text)
    listed = [(r[1], r[2]) for r in rows if r[2] != "查看人员"]
    # Newest first; a login lands on the queue, which is a list view too.
    assert listed == [
        ("sup1-姓名（sup1）", "查看预警"),
        ("sup1-姓名（sup1）", "查看审核队列"),
        ("rev1-姓名（rev1）", "名册查询"),
        ("rev1-姓名（rev1）", "查看群众申请"),
        ("rev1-姓名（rev1）", "查看审核队列"),
        ("rev1-姓名（rev1）", "查看审核队列"),
    ]
    others = [(r[1], r[2]) for r in rows_of(app_client.get(f"/console/beneficiaries/{other}/access").text)]
    assert ("rev1-姓名（rev1）", "查看审核队列") in others and ("rev1-姓名（rev1）", "名册查询") not in others


def test_a_fifty_row_list_writes_its_people_in_one_statement(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """One row per person shown, written as one batch: a 50-row queue page costs one INSERT, not fifty."""
    people = _people(ctx, 50)
    login(app_client, "rev1")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "console_audit_shown" in statement and statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        assert app_client.get("/console/queue").status_code == 200
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    with ctx.db() as db:
        last = db.scalar(select(ConsoleAuditEntry.seq).order_by(ConsoleAuditEntry.seq.desc()).limit(1))
        assert db.scalar(select(ConsoleAuditEntry.action).where(ConsoleAuditEntry.seq == last)) == "queue.view"
        shown = db.scalars(select(ConsoleAuditShown.beneficiary_id).where(ConsoleAuditShown.seq == last)).all()
    assert sorted(shown) == sorted(b for b, _ in people)


def test_people_seen_on_lists_count_in_the_days_volume(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A reviewer paging roster searches over a whole village opened nobody's page: the volume counted searches,
    never the people the results showed. People shown on lists are counted (distinct), against their own line
    (a list shows many at once: LISTED_FACTOR times the daily line)."""
    _people(ctx, 12, name="王建国", case=False)
    app_client.app.state.console_config = ConsoleConfig(views_alert_per_day=2)  # type: ignore[attr-defined]
    rev = new_client(app_client)
    csrf = login(rev, "rev1")
    assert rev.post("/console/roster/search", data={"csrf": csrf, "q": "王建国"}).status_code == 200
    login(app_client, "sup1")
    rows = rows_of(app_client.get("/console/access/volume").text)
    assert rows == [("rev1-姓名（rev1）", "0", "1", "12", "审计日志")]
    assert access_log.LISTED_FACTOR * 2 < 12  # 12 people shown once: over the list line of this test's setting
    alerts = app_client.get("/console/alerts").text
    assert "1 名工作人员" in alerts[alerts.index('id="heavy-viewers"') :].split("</p>")[0]


def _admin_made_supervisor(app_client: TestClient, username: str) -> TestClient:
    """An admin creates supervisor `username` in the console; its holder (maybe the admin) logs in and sets "their
    own" password, as the first login requires. Their browser."""
    data = {
        "username": username,
        "password": "handed-over-1234",
        "role": "supervisor",
        "csrf": login(app_client, "admin"),
    }
    assert app_client.post("/console/users", data=data).status_code == 200
    holder = new_client(app_client)
    page = holder.get("/console/login")
    landed = holder.post(
        "/console/login", data={"username": username, "password": "handed-over-1234", "csrf": csrf_of(page.text)}
    )
    change = {"current": "handed-over-1234", "new": "only-i-know-5678", "confirm": "only-i-know-5678"}
    assert holder.post("/console/password", data={**change, "csrf": csrf_of(landed.text)}).status_code == 200
    return holder


def test_an_admin_made_supervisor_is_nobodys_second_person_until_another_confirms_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """An admin created a supervisor account, chose its password (and "its own" at the first login), asked for a
    revocation as admin and confirmed it as that account: two people on paper, one in fact. Such an account (made,
    raised or reset by an admin in the console) is nobody's second person until a supervisor other than that admin
    confirms it; meanwhile it works as a supervisor otherwise."""
    bid, cid = certified_at_counter(ctx)
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    puppet = _admin_made_supervisor(app_client, "sup9")
    assert app_client.post(action, data=revoke_form(csrf_of(app_client.get("/console/roster").text))).status_code == 200
    refused = puppet.post(action, data=revoke_form(csrf_of(puppet.get("/console/roster").text), note="复核属实"))
    assert refused.status_code == 409 and "须经另一位主管确认" in refused.text
    assert _cert(ctx, cid).revoked_at is None
    # The admin who made it cannot confirm it; the account cannot confirm itself; another supervisor can.
    assert 'id="pending-accounts"' not in app_client.get("/console/alerts").text
    assert 'id="pending-accounts"' not in puppet.get("/console/alerts").text
    with ctx.db() as db:
        sup9 = db.scalar(select(StaffUser).where(StaffUser.username == "sup9"))
        assert sup9 is not None and sup9.granted_by == staff_users["admin"]
        sup9_id = sup9.id
    own = app_client.post(
        f"/console/users/{sup9_id}/confirm", data={"csrf": csrf_of(app_client.get("/console/roster").text)}
    )
    assert own.status_code == 409 and "不能确认" in own.text
    assert factories.update(ctx, StaffUser, sup9_id).granted_by is not None
    assert [e.detail["reason"] for e in _chain(ctx, "user.confirm.refused")] == ["NOT_PENDING"]
    sup1 = new_client(app_client)
    sup1_csrf = login(sup1, "sup1")
    alerts = sup1.get("/console/alerts").text
    assert 'id="pending-accounts"' in alerts and "sup9" in alerts
    grant = re.search(rf'/users/{sup9_id}/confirm".*?name="grant" value="(\d+)"', alerts, re.S)
    assert grant is not None
    confirm = {"csrf": sup1_csrf, "grant": grant.group(1)}
    assert sup1.post(f"/console/users/{sup9_id}/confirm", data=confirm).status_code == 200
    assert factories.update(ctx, StaffUser, sup9_id).granted_by is None
    with ctx.db() as db:
        entry = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "user.confirm")).one()
        assert (entry.actor, entry.target, entry.detail["granted_by"]) == ("staff:sup1", "sup9", "admin")
    done = puppet.post(action, data=revoke_form(csrf_of(puppet.get("/console/roster").text), note="复核属实"))
    assert done.status_code == 200 and _cert(ctx, cid).revoked_by == "staff:sup9"


def test_an_admin_reset_or_raise_puts_a_supervisor_back_under_confirmation(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A reset password is one the admin knows, a raised reviewer one the admin may hold: both wait for another
    supervisor's confirmation; lowering a role or an account made by the operator changes nothing."""
    csrf = login(app_client, "admin")
    reset = {"op": "password", "password": "handed-over-1234", "csrf": csrf}
    assert app_client.post(f"/console/users/{staff_users['sup2']}", data=reset).status_code == 200
    assert (
        app_client.post(
            f"/console/users/{staff_users['rev2']}", data={"op": "role", "role": "supervisor", "csrf": csrf}
        ).status_code
        == 200
    )
    assert (
        app_client.post(
            f"/console/users/{staff_users['rev1']}", data={"op": "role", "role": "reviewer", "csrf": csrf}
        ).status_code
        == 200
    )
    granted = {n: factories.update(ctx, StaffUser, staff_users[n]).granted_by for n in ("sup2", "rev2", "rev1", "sup1")}
    assert granted == {"sup2": staff_users["admin"], "rev2": staff_users["admin"], "rev1": None, "sup1": None}
    assert "待另一位主管确认" in app_client.get("/console/users").text


def test_an_unconfirmed_account_is_refused_as_second_person_by_every_rule(
    ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The other two-person rules read the same check (`accounts.check_second_person`): a case's second decision,
    the check of a counter certification after a fraud, a finding on a roster change of ID number."""
    puppet = Staff(staff_users["sup2"], "sup2", "sup2", Role.SUPERVISOR, "-", confirmed=False)
    confirmed = Staff(staff_users["sup2"], "sup2", "sup2", Role.SUPERVISOR, "-")
    claim = ReviewClaim(session_id="s", pending_decision="reject", pending_by=staff_users["sup1"])
    with pytest.raises(CaseError, match="须经另一位主管确认"):
        review_queue.check_second(puppet, claim)
    review_queue.check_second(confirmed, claim)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        recert = ConsoleAlert(kind=alert_review.RECERTIFIED, beneficiary_id=b.id, detail={"actor": "staff:admin"})
        changed = ConsoleAlert(kind=identity_alerts.KIND, beneficiary_id=b.id, detail={"actor": "staff:admin"})
        db.add_all([recert, changed])
        db.flush()
        assert alert_review.resolve_alert(db, puppet, recert.id, "电话回访属实") == "SECOND_UNCONFIRMED"
        assert (
            identity_alerts.settle_identity_alert(db, ctx, puppet, changed.id, "other_person") == "SECOND_UNCONFIRMED"
        )
        assert not recert.resolved and not changed.resolved
        assert alert_review.resolve_alert(db, confirmed, recert.id, "电话回访属实") is None and recert.resolved


def _chain(ctx: ServiceContext, action: str) -> list[ConsoleAuditEntry]:
    with ctx.db() as db:
        return list(
            db.scalars(
                select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == action).order_by(ConsoleAuditEntry.seq)
            )
        )


def _puppet_of_admin(ctx: ServiceContext, staff_users: dict[str, int], name: str = "sup2") -> Staff:
    """Account `name` as an admin's reset left it (the admin knows its password: not yet confirmed); the admin."""
    user = factories.update(ctx, StaffUser, staff_users[name], granted_by=staff_users["admin"])
    assert user.granted_by == staff_users["admin"]
    return Staff(staff_users["admin"], "admin", "admin", Role.ADMIN, "-")


def test_the_admin_cannot_confirm_a_request_its_own_unconfirmed_account_made(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Puppet first: the admin made sup9, asked to revoke as sup9 and confirmed as admin, one person. The admin's
    confirmation of a request by an account it made (not yet confirmed by another) is refused, and recorded."""
    bid, cid = certified_at_counter(ctx)
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    puppet = _admin_made_supervisor(app_client, "sup9")
    assert puppet.post(action, data=revoke_form(csrf_of(puppet.get("/console/roster").text))).status_code == 200
    done = app_client.post(action, data=revoke_form(csrf_of(app_client.get("/console/roster").text), note="复核属实"))
    assert done.status_code == 409 and "开设它的管理员" in done.text
    assert _cert(ctx, cid).revoked_at is None
    refused = _trail(ctx, "certification.revoke.refused")
    assert [(e.actor, e.detail["reason"]) for e in refused] == [("staff:admin", "SECOND_UNCONFIRMED")]
    sup1 = new_client(app_client)
    assert sup1.post(action, data=revoke_form(login(sup1, "sup1"), note="复核属实")).status_code == 200
    assert _cert(ctx, cid).revoked_by == "staff:sup1"  # another supervisor still confirms it


def test_the_puppet_first_direction_is_refused_by_every_other_rule(
    ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A case's first decision, a staff certification after a fraud, a roster change of ID number, a release
    request, each made by the admin's unconfirmed account: the admin is not their second person (recorded)."""
    admin = _puppet_of_admin(ctx, staff_users)
    claim = ReviewClaim(session_id="s", pending_decision="reject", pending_by=staff_users["sup2"])
    with ctx.db() as db:
        review_queue.check_second(admin, claim)  # without the database: only the admin's own account is read
        with pytest.raises(CaseError, match="开设它的管理员"):
            review_queue.check_second(admin, claim, db)
        b = factories.beneficiary(db, ctx.keyring)
        recert = ConsoleAlert(kind=alert_review.RECERTIFIED, beneficiary_id=b.id, detail={"actor": "staff:sup2"})
        changed = ConsoleAlert(kind=identity_alerts.KIND, beneficiary_id=b.id, detail={"actor": "staff:sup2"})
        db.add_all([recert, changed])
        db.flush()
        assert alert_review.resolve_alert(db, admin, recert.id, "电话回访属实") == "SECOND_UNCONFIRMED"
        assert identity_alerts.settle_identity_alert(db, ctx, admin, changed.id, "other_person") == "SECOND_UNCONFIRMED"
        assert not recert.resolved and not changed.resolved
    assert [e.detail["reason"] for e in _chain(ctx, "alert.resolve.refused")] == ["SECOND_UNCONFIRMED"]
    assert [e.detail["reason"] for e in _chain(ctx, "alert.identity.refused")] == ["SECOND_UNCONFIRMED"]
    (bid, _), *_ = _people(ctx, 1)
    with ctx.db() as db:
        sid = db.scalars(select(CertSession.id).where(CertSession.beneficiary_id == bid)).one()
        db.add(ReviewClaim(session_id=sid, pending_decision="reject", pending_by=staff_users["sup2"]))
    with ctx.db() as db, pytest.raises(CaseError, match="开设它的管理员"):
        review_queue.claim_case(db, ConsoleConfig(), admin, sid)
    assert [(e.target, e.detail["reason"]) for e in _chain(ctx, "case.second.refused")] == [(sid, "SECOND_UNCONFIRMED")]


def test_the_admin_cannot_release_a_hold_its_own_account_asked_to_release(
    ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    admin = _puppet_of_admin(ctx, staff_users)
    puppet = Staff(staff_users["sup2"], "sup2", "sup2", Role.SUPERVISOR, "-", confirmed=False)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(b.id, state="decided", decision="accept", decided_at=utcnow())
        s.video_key = f"sessions/{s.id}/video"
        ctx.storage.put(s.video_key, b"media")
        db.add(s)
        db.flush()
        bid, hold = b.id, revoke.hold_from_console(db, admin, b.id, s.id, "investigation", "举报", 30)
        assert hold is not None
        hold_id = hold.id
    with ctx.db() as db:
        assert revoke.release_from_console(db, puppet, bid, hold_id, "核实为本人") is not None
    with ctx.db() as db, pytest.raises(ServiceError) as refused:
        revoke.release_from_console(db, admin, bid, hold_id, "同意解除")
    assert refused.value.code == "SECOND_UNCONFIRMED"
    with ctx.db() as db:
        assert db.get(EvidenceHold, hold_id).released_at is None  # type: ignore[union-attr]
    assert [e.detail["reason"] for e in _trail(ctx, "evidence.hold.release_refused")] == ["SECOND_UNCONFIRMED"]


def test_an_unconfirmed_admin_grants_nothing_so_two_accounts_of_one_admin_make_no_confirmed_puppet(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The admin made admin adm9 (unconfirmed), adm9 made sup9, and the admin, not sup9's granter, confirmed it.
    An admin account not yet confirmed creates no account, raises no role and resets no password (recorded)."""
    login(app_client, "admin")
    data = {"username": "adm9", "password": "handed-over-1234", "role": "admin", "csrf": ""}
    data["csrf"] = csrf_of(app_client.get("/console/users").text)
    assert app_client.post("/console/users", data=data).status_code == 200
    adm9 = new_client(app_client)
    landed = adm9.post(
        "/console/login",
        data={"username": "adm9", "password": "handed-over-1234", "csrf": csrf_of(adm9.get("/console/login").text)},
    )
    change = {"current": "handed-over-1234", "new": "only-i-know-5678", "confirm": "only-i-know-5678"}
    assert adm9.post("/console/password", data={**change, "csrf": csrf_of(landed.text)}).status_code == 200
    csrf = csrf_of(adm9.get("/console/users").text)
    made = adm9.post(
        "/console/users",
        data={"username": "sup9", "password": "handed-over-1234", "role": "supervisor", "csrf": csrf},
    )
    assert made.status_code == 422 and "尚未经另一位主管确认" in made.text
    raised = adm9.post(f"/console/users/{staff_users['rev1']}", data={"op": "role", "role": "admin", "csrf": csrf})
    reset = adm9.post(
        f"/console/users/{staff_users['sup1']}", data={"op": "password", "password": "handed-over-1234", "csrf": csrf}
    )
    assert raised.status_code == 422 and reset.status_code == 422
    with ctx.db() as db:
        assert db.scalar(select(StaffUser).where(StaffUser.username == "sup9")) is None
    assert factories.update(ctx, StaffUser, staff_users["rev1"]).role == "reviewer"
    assert factories.update(ctx, StaffUser, staff_users["sup1"]).granted_by is None
    assert [e.detail["op"] for e in _chain(ctx, "user.grant.refused")] == ["create", "role", "password"]


def test_an_admin_made_reviewer_is_marked_too(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A reviewer the admin made decides first or imports a roster change as the admin's hand: marked, so the admin
    is not the second person of its acts."""
    data = {"username": "rev9", "password": "handed-over-1234", "role": "reviewer", "csrf": login(app_client, "admin")}
    assert app_client.post("/console/users", data=data).status_code == 200
    with ctx.db() as db:
        rev9 = db.scalar(select(StaffUser).where(StaffUser.username == "rev9"))
        assert rev9 is not None and rev9.granted_by == staff_users["admin"]


def test_a_refused_confirmation_of_another_reason_is_recorded(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """REVOKE_REASON_DIFFERS and an unconfirmed account's confirmation rolled back without a trace."""
    bid, cid = certified_at_counter(ctx)
    action = f"/console/beneficiaries/{bid}/certifications/{cid}/revoke"
    assert app_client.post(action, data=revoke_form(login(app_client, "sup1"))).status_code == 200
    other = new_client(app_client)
    assert other.post(action, data=revoke_form(login(other, "sup2"), reason="other", note="复核")).status_code == 409
    factories.update(ctx, StaffUser, staff_users["sup2"], granted_by=staff_users["admin"])
    puppet = new_client(app_client)
    assert puppet.post(action, data=revoke_form(login(puppet, "sup2"), note="复核")).status_code == 409
    refused = [e.detail["reason"] for e in _trail(ctx, "certification.revoke.refused")]
    assert refused == ["REVOKE_REASON_DIFFERS", "SECOND_UNCONFIRMED"]


def test_a_confirmation_names_the_grant_it_confirms(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The list shows who granted what (created, raised, reset); an account still on the admin's password is not
    offered; a confirmation given for an earlier grant (reset since) is refused, not applied to the new one."""
    puppet = _admin_made_supervisor(app_client, "sup9")
    del puppet
    csrf = csrf_of(app_client.get("/console/users").text)
    assert (
        app_client.post(
            f"/console/users/{staff_users['rev2']}", data={"op": "role", "role": "supervisor", "csrf": csrf}
        ).status_code
        == 200
    )
    reset = {"op": "password", "password": "handed-over-1234", "csrf": csrf}
    assert app_client.post(f"/console/users/{staff_users['sup2']}", data=reset).status_code == 200
    sup1 = new_client(app_client)
    login(sup1, "sup1")
    page = sup1.get("/console/alerts").text
    listed = page[page.index('id="pending-accounts"') :]
    assert "sup9" in listed and "开设" in listed and "rev2" in listed and "提升" in listed
    assert "sup2-姓名" not in listed  # still on the password the admin chose: nothing to confirm yet
    form = re.search(rf'/users/{staff_users["rev2"]}/confirm".*?name="grant" value="(\d+)"', listed, re.S)
    assert form is not None
    raise_again = {"op": "role", "role": "admin", "csrf": csrf}
    assert app_client.post(f"/console/users/{staff_users['rev2']}", data=raise_again).status_code == 200
    data = {"csrf": csrf_of(page), "grant": form.group(1)}
    stale = sup1.post(f"/console/users/{staff_users['rev2']}/confirm", data=data)
    assert stale.status_code == 409 and "已有新的变更" in stale.text
    assert factories.update(ctx, StaffUser, staff_users["rev2"]).granted_by == staff_users["admin"]
    assert [e.detail["reason"] for e in _chain(ctx, "user.confirm.refused")] == ["GRANT_CHANGED"]


def test_the_access_log_reads_the_persons_entries_not_the_whole_log(
    ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The people shown on lists OR'ed into the indexed look-ups made PostgreSQL filter the whole log (200,000
    entries read to show one person's). Each query the page runs reads the person's own entries by index."""
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("the planner under test is PostgreSQL's")
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM console_audit" in statement and "ORDER BY console_audit.seq DESC" in statement:
            statements.append((statement, parameters))

    # Everything in the test's own transaction, rolled back after it: committed, the 200,000 made-up entries broke
    # the chain and the restores of the tests after it on the same database.
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        db.add(factories.session_row(b.id, state="decided", decision="review", decided_at=utcnow()))
        db.flush()
        db.execute(
            text(
                "INSERT INTO console_audit (seq, at, actor, action, target, detail, prev_hash, hash) SELECT g, now(), "
                "'staff:rev1', 'queue.view', 'T' || g, '{}', 'x', 'h' || g FROM generate_series(1, 200000) g"
            )
        )
        # Before the next insert's foreign-key checks are planned: on a log the planner still takes for empty, each
        # of their 200,000 look-ups scanned the whole log (a quarter of an hour in CI).
        db.execute(text("ANALYZE console_audit"))
        db.execute(
            text(
                "INSERT INTO console_audit_shown (seq, beneficiary_id) "
                "SELECT g, (g % 5000) + 100000 FROM generate_series(1, 200000) g"
            )
        )
        db.execute(text("INSERT INTO console_audit_shown (seq, beneficiary_id) VALUES (199999, :b)"), {"b": b.id})
        db.execute(text("ANALYZE console_audit_shown"))
        person = db.get(Beneficiary, b.id)
        assert person is not None
        event.listen(ctx.engine, "before_cursor_execute", seen)
        try:
            assert [a.seq for a in access_log.person_entries(db, person)] == [199999]
        finally:
            event.remove(ctx.engine, "before_cursor_execute", seen)
        assert statements
        conn = db.connection()
        for statement, parameters in statements:
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters))
            removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
            assert "Seq Scan on console_audit " not in plan and "Backward" not in plan, plan
            assert max(removed, default=0) < 100, plan
