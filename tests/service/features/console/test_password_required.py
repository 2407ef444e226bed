"""A password an admin set (a new account, a reset) must be replaced by its holder before anything else: the
admin chose it and may still know it (docs/console.md, *Accounts*)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.features.console.models import StaffUser
from tests.service.features.console.conftest import PASSWORD, csrf_of, login, new_client

TEMPORARY = "handed-over-1234"
OWN = "only-i-know-5678"


def _first_login(client: TestClient, username: str, password: str) -> str:
    """Log in; answers the page it lands on (the password page when a change is required)."""
    page = client.get("/console/login")
    r = client.post("/console/login", data={"username": username, "password": password, "csrf": csrf_of(page.text)})
    assert r.status_code == 200, r.text[:300]
    return str(r.text)


def test_an_account_an_admin_made_changes_its_password_before_anything_else(
    ctx: ServiceContext, app_client: TestClient, staff_users: dict[str, int]
) -> None:
    admin_csrf = login(app_client, "admin")
    data = {"username": "new-rev", "password": TEMPORARY, "role": "reviewer", "csrf": admin_csrf}
    assert app_client.post("/console/users", data=data).status_code == 200
    holder = new_client(app_client)
    landed = _first_login(holder, "new-rev", TEMPORARY)
    assert 'id="required"' in landed and "修改密码" in landed
    for path in ("/console/queue", "/console/roster", "/console/dashboard"):
        r = holder.get(path, follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].endswith("/console/password"), path
    change = {"current": TEMPORARY, "new": OWN, "confirm": OWN, "csrf": csrf_of(landed)}
    done = holder.post("/console/password", data=change)
    assert done.status_code == 200 and 'id="required"' not in done.text
    assert holder.get("/console/queue").status_code == 200
    with ctx.db() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == "new-rev"))
        assert user is not None and user.must_change_password is False


def test_a_reset_by_an_admin_requires_a_change_again_and_others_are_not_affected(
    ctx: ServiceContext, app_client: TestClient, staff_users: dict[str, int]
) -> None:
    reviewer = new_client(app_client)
    login(reviewer, "rev1")  # an account made without an admin's password (fixtures, the CLI): free to work
    assert reviewer.get("/console/queue").status_code == 200
    admin_csrf = login(app_client, "admin")
    reset = {"op": "password", "password": TEMPORARY, "csrf": admin_csrf}
    app_client.post(f"/console/users/{staff_users['rev1']}", data=reset)
    assert reviewer.get("/console/queue", follow_redirects=False).status_code in (302, 303)  # sessions ended
    landed = _first_login(reviewer, "rev1", TEMPORARY)
    assert 'id="required"' in landed
    assert reviewer.get("/console/queue", follow_redirects=False).headers["location"].endswith("/console/password")
    assert login(new_client(app_client), "rev2", PASSWORD)  # nobody else is sent to the password page
