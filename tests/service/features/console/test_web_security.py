"""What an outside web-security review of the staff console found, through the real app and database: each test
holds one fix (docs/security.md, Part I)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from tests.service import factories
from tests.service.features.console.conftest import PASSWORD, csrf_of, login

NEW_PASSWORD = "another-long-passphrase"


def _logs_in(client: TestClient, username: str, password: str) -> bool:
    page = client.get("/console/login")
    data = {"username": username, "password": password, "csrf": csrf_of(page.text)}
    status: int = client.post("/console/login", data=data, follow_redirects=False).status_code
    return status == 303


def _change(client: TestClient, csrf: str, current: str, new: str, confirm: str | None = None) -> int:
    data = {"current": current, "new": new, "confirm": new if confirm is None else confirm, "csrf": csrf}
    status: int = client.post("/console/password", data=data, follow_redirects=False).status_code
    return status


def test_staff_change_their_own_password_and_every_other_session_ends(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Without this, a staff member kept the password an admin chose and still knows, so the admin could act in
    their name (a proxy rejection's second supervisor included)."""
    elsewhere = TestClient(app_client.app)
    login(elsewhere, "sup2")
    csrf = login(app_client, "sup2")
    assert 'href="/console/password"' in app_client.get("/console/queue").text
    assert _change(app_client, csrf, "wrong-password-1", NEW_PASSWORD) == 401
    assert _change(app_client, csrf, PASSWORD, NEW_PASSWORD, confirm="something-else") == 422
    assert _change(app_client, csrf, PASSWORD, "short") == 422
    assert _change(app_client, csrf, PASSWORD, PASSWORD) == 422
    assert _change(app_client, "forged", PASSWORD, NEW_PASSWORD) == 403
    assert _change(app_client, csrf, PASSWORD, NEW_PASSWORD) == 303
    # This browser goes on with a new session; the other one (and the old cookie) are over.
    assert "密码已修改" in app_client.get("/console/password?ok=1").text
    assert elsewhere.get("/console/queue", follow_redirects=False).status_code == 303
    assert not _logs_in(TestClient(app_client.app), "sup2", PASSWORD)
    assert _logs_in(TestClient(app_client.app), "sup2", NEW_PASSWORD)
    with ctx.db() as db:
        rows = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "user.password.self")).all()
        assert [(e.actor, e.target) for e in rows] == [("staff:sup2", "sup2")]


def test_guessing_the_current_password_from_a_session_meets_the_login_back_off(
    app_client: TestClient, staff_users: dict[str, int]
) -> None:
    """Whoever finds a console left open cannot try passwords on the change form faster than on the login page."""
    csrf = login(app_client, "rev2")
    answers = [_change(app_client, csrf, f"guess-number-{i}", NEW_PASSWORD) for i in range(6)]
    assert answers == [401] * 5 + [429]
    assert _change(app_client, csrf, PASSWORD, NEW_PASSWORD) == 429  # even the right one waits
    # The same back-off as the login page's (per address and name): the staff member at another desk is not slowed.
    assert _logs_in(TestClient(app_client.app, client=("192.0.2.10", 40000)), "rev2", PASSWORD)


def test_the_error_box_of_the_person_page_says_only_what_the_console_wrote(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """`?e=` used to be printed as it came: a link sent to a staff member put its author's words ("call this
    number to verify") in a red box of the bureau's own page."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    login(app_client, "rev1")
    planted = "该人员已死亡，请拨打13800000000核实"
    page = app_client.get(f"/console/beneficiaries/{bid}", params={"e": planted}).text
    assert planted not in page and 'id="error"' not in page
    assert "日期无效" in app_client.get(f"/console/beneficiaries/{bid}", params={"e": "date"}).text
