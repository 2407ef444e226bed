"""Login, lockout, CSRF, session expiry and role restrictions, through the real app and database."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.console.auth import hash_password
from service.context import ServiceContext
from service.db.console_models import ConsoleAuditEntry, StaffSession, StaffUser
from tests.service.console.conftest import PASSWORD, csrf_of, login


def test_login_sets_httponly_strict_cookie_and_stores_argon2_hash(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    page = app_client.get("/console/login")
    r = app_client.post(
        "/console/login",
        data={"username": "rev1", "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/queue"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("pc_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    with ctx.db() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == "rev1"))
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        # Only a hash of the cookie is stored.
        token = cookie.split(";")[0].split("=", 1)[1]
        assert db.scalar(select(StaffSession).where(StaffSession.token_hash == token)) is None
    assert app_client.get("/console/queue").status_code == 200


def test_pages_need_login(app_client: TestClient) -> None:
    for path in ("/console/queue", "/console/users", "/console/roster", "/console/dashboard", "/console/audit"):
        r = app_client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login", path


def test_login_form_needs_its_csrf_token(app_client: TestClient, staff_users: dict[str, int]) -> None:
    app_client.get("/console/login")
    r = app_client.post("/console/login", data={"username": "rev1", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403
    assert app_client.get("/console/queue", follow_redirects=False).status_code == 303


def test_wrong_password_then_lockout(app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]) -> None:
    cfg = app_client.app.state.console_config  # type: ignore[attr-defined]
    statuses = []
    for _ in range(cfg.max_failed_logins):
        page = app_client.get("/console/login")
        r = app_client.post(
            "/console/login", data={"username": "rev2", "password": "wrong-password!", "csrf": csrf_of(page.text)}
        )
        statuses.append((r.status_code, "锁定" in r.text))
    assert statuses[:-1] == [(401, False)] * (cfg.max_failed_logins - 1)
    assert statuses[-1] == (401, True)
    # Locked: even the right password is refused until the lock expires.
    page = app_client.get("/console/login")
    r = app_client.post("/console/login", data={"username": "rev2", "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert r.status_code == 401 and "锁定" in r.text
    with ctx.db() as db:
        db.execute(update(StaffUser).where(StaffUser.username == "rev2").values(locked_until=dt.datetime(2000, 1, 1)))
    login(app_client, "rev2")
    with ctx.db() as db:
        fails = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "login.failed")).all()
        assert len(fails) == cfg.max_failed_logins + 1
        assert fails[-1].detail == {"locked": True}


def test_unknown_user_and_disabled_user_refused(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    page = app_client.get("/console/login")
    r = app_client.post("/console/login", data={"username": "nobody", "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert r.status_code == 401
    with ctx.db() as db:
        db.execute(update(StaffUser).where(StaffUser.username == "rev1").values(active=False))
    page = app_client.get("/console/login")
    r = app_client.post("/console/login", data={"username": "rev1", "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert r.status_code == 401 and "停用" in r.text


def test_post_without_or_with_wrong_csrf_is_refused(app_client: TestClient, staff_users: dict[str, int]) -> None:
    csrf = login(app_client, "admin")
    data = {"username": "new1", "password": "a-long-password", "role": "reviewer"}
    assert app_client.post("/console/users", data=data).status_code == 403
    assert app_client.post("/console/users", data=data | {"csrf": csrf[:-2] + "xx"}).status_code == 403
    assert "new1" not in app_client.get("/console/users").text
    r = app_client.post("/console/users", data=data | {"csrf": csrf})
    assert r.status_code == 200 and "new1" in r.text
    # Logging out also needs the token, so a forged link cannot end a session.
    assert app_client.post("/console/logout").status_code == 403
    assert app_client.get("/console/queue", follow_redirects=False).status_code == 200


def test_idle_and_absolute_session_expiry(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    cfg = app_client.app.state.console_config  # type: ignore[attr-defined]
    login(app_client, "rev1")
    assert app_client.get("/console/queue", follow_redirects=False).status_code == 200
    with ctx.db() as db:
        idle = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=cfg.idle_timeout_s + 5)
        db.execute(update(StaffSession).values(last_seen=idle))
    assert app_client.get("/console/queue", follow_redirects=False).headers["location"] == "/console/login"
    with ctx.db() as db:
        assert db.scalars(select(StaffSession)).all() == []  # the expired session is deleted

    login(app_client, "rev1")
    with ctx.db() as db:
        old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=cfg.absolute_timeout_s + 5)
        db.execute(update(StaffSession).values(created_at=old))  # active all day, still over
    assert app_client.get("/console/queue", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(app_client: TestClient, staff_users: dict[str, int]) -> None:
    csrf = login(app_client, "rev1")
    cookie = app_client.cookies.get("pc_console")
    assert app_client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    # The old cookie value is dead server-side, not just removed from this browser.
    other = TestClient(app_client.app, cookies={"pc_console": cookie or ""})
    assert other.get("/console/queue", follow_redirects=False).status_code == 303


def test_reviewer_cannot_manage_users(app_client: TestClient, staff_users: dict[str, int]) -> None:
    csrf = login(app_client, "rev1")
    assert app_client.get("/console/users").status_code == 403
    r = app_client.post(
        "/console/users", data={"username": "x2", "password": "a-long-password", "role": "admin", "csrf": csrf}
    )
    assert r.status_code == 403
    r = app_client.post(f"/console/users/{staff_users['rev1']}", data={"op": "role", "role": "admin", "csrf": csrf})
    assert r.status_code == 403
    assert "用户管理" not in app_client.get("/console/queue").text


def test_admin_role_change_and_disable_end_sessions(app_client: TestClient, staff_users: dict[str, int]) -> None:
    rev = TestClient(app_client.app)
    login(rev, "rev1")
    csrf = login(app_client, "admin")
    r = app_client.post(f"/console/users/{staff_users['rev1']}", data={"op": "disable", "csrf": csrf})
    assert r.status_code == 200
    assert rev.get("/console/queue", follow_redirects=False).status_code == 303


def test_short_passwords_are_refused() -> None:
    try:
        hash_password("short")
    except ValueError:
        return
    raise AssertionError("a 5-character password was accepted")
