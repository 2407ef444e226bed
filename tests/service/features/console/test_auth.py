"""Login, back-off of failed logins (per requester, never an account lock), CSRF, session expiry and role
restrictions, through the real app and database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import statistics
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

from service.certification.context import ServiceContext
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import auth, throttle
from service.features.console.models import StaffSession, StaffUser
from tests.service import servers
from tests.service.adapters.http.ops import ops_app
from tests.service.features.console.conftest import PASSWORD, csrf_of, login


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
        back = "" if path == "/console/queue" else "?next=" + path.removeprefix("/console")  # the page asked for
        assert r.status_code == 303 and r.headers["location"] == "/console/login" + back, path


def test_login_form_needs_its_csrf_token(app_client: TestClient, staff_users: dict[str, int]) -> None:
    app_client.get("/console/login")
    r = app_client.post("/console/login", data={"username": "rev1", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403
    assert app_client.get("/console/queue", follow_redirects=False).status_code == 303


def attempt(client: TestClient, username: str, password: str) -> Response:
    page = client.get("/console/login")
    data = {"username": username, "password": password, "csrf": csrf_of(page.text)}
    r: Response = client.post("/console/login", data=data, follow_redirects=False)
    return r


def shown(r: Response) -> tuple[int, str, bool]:
    """What the requester learns: status, the page's error line, whether a Retry-After came."""
    m = re.search(r'id="login-error">([^<]*)<', r.text)
    return r.status_code, m.group(1) if m else "", "retry-after" in r.headers


def from_ip(client: TestClient, ip: str) -> TestClient:
    """Another browser, on another address."""
    return TestClient(client.app, client=(ip, 40000))


def test_a_strangers_failures_slow_the_stranger_not_the_staff_member(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #22: five wrong passwords used to lock the account for 15 minutes, so anyone could lock staff out."""
    cfg = app_client.app.state.console_config  # type: ignore[attr-defined]
    stranger = from_ip(app_client, "198.51.100.66")
    for _ in range(cfg.login_free_failures + 3):
        attempt(stranger, "rev2", "wrong-password!")
    # The stranger now waits, even with the right password...
    r = attempt(stranger, "rev2", PASSWORD)
    assert r.status_code == 429 and "登录失败次数过多" in r.text and int(r.headers["retry-after"]) >= 1
    # ...while the staff member, at their own desk, logs in at once.
    login(from_ip(app_client, "192.0.2.10"), "rev2")
    login(app_client, "rev2")
    with ctx.db() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == "rev2"))
        assert user is not None and user.locked_until is None and user.failed_logins == 0
    # The back-off ends by itself (here: the clock moves past the longest wait so far).
    now = time.time()
    monkeypatch.setattr(throttle, "_clock", lambda: now + cfg.login_backoff_max_s + 1)
    assert attempt(stranger, "rev2", PASSWORD).status_code == 303
    with ctx.db() as db:
        # In the order written (PostgreSQL's heap reuses the space rolled-back tests left: no order without one).
        failed = select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "login.failed")
        fails = db.scalars(failed.order_by(ConsoleAuditEntry.seq)).all()
        # The free failures, then the attempts refused unchecked (the right password's included).
        throttled = [{"throttled": False}] * cfg.login_free_failures + [{"throttled": True}] * 4
        assert [f.detail for f in fails] == throttled


def test_back_off_doubles_per_failure_up_to_its_cap_and_a_success_clears_it(
    app_client: TestClient, staff_users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = throttle.BackoffPolicy(free_failures=5, base_s=2.0, max_s=900.0)
    assert [policy.delay(n) for n in (0, 4, 5, 6, 7, 30)] == [0.0, 0.0, 2.0, 4.0, 8.0, 900.0]
    now = [1_000_000.0]
    monkeypatch.setattr(throttle, "_clock", lambda: now[0])
    cfg = app_client.app.state.console_config  # type: ignore[attr-defined]
    me = from_ip(app_client, "192.0.2.20")
    for _ in range(cfg.login_free_failures - 1):
        assert attempt(me, "rev1", "typo-password").status_code == 401
    login(me, "rev1")  # a success forgets the typos: the next ones are free again
    statuses = [attempt(me, "rev1", "typo-password").status_code for _ in range(cfg.login_free_failures + 1)]
    assert statuses == [401] * cfg.login_free_failures + [429]
    now[0] += cfg.login_backoff_base_s  # the first wait is over: one more try, then twice as long
    assert attempt(me, "rev1", "typo-password").status_code == 401
    r = attempt(me, "rev1", PASSWORD)
    assert r.status_code == 429 and int(r.headers["retry-after"]) == int(2 * cfg.login_backoff_base_s)


def test_unknown_usernames_and_wrong_passwords_get_identical_answers(
    app_client: TestClient, staff_users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same status, same message, the back-off included (it never looks at the staff table); and the same
    argon2 verification, hence the same time, for an unknown name."""
    calls: list[str] = []
    real_verify = auth._verify

    def counting(stored: str, password: str) -> bool:
        calls.append("dummy" if stored == auth._DUMMY_HASH else "user")
        return real_verify(stored, password)

    monkeypatch.setattr(auth, "_verify", counting)
    # The back-off's clock stands still: its "请 N 秒后再试" counts down between the two attempts of a round on a
    # loaded machine (argon2 takes its time), and the answers are to be compared, not the machine's speed.
    monkeypatch.setattr(throttle, "_clock", lambda: 1_000_000.0)
    cfg = app_client.app.state.console_config  # type: ignore[attr-defined]
    known, unknown = from_ip(app_client, "198.51.100.1"), from_ip(app_client, "198.51.100.2")
    durations: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range(cfg.login_free_failures + 2):
        answers = []
        for who, client, name in (("known", known, "rev2"), ("unknown", unknown, "no-such-user")):
            t0 = time.perf_counter()
            answers.append(shown(attempt(client, name, "wrong-password!")))
            durations[who].append(time.perf_counter() - t0)
        assert answers[0] == answers[1]
    assert answers[0][0] == 429 and answers[0][2]  # the last ones were the back-off, for both alike
    assert calls.count("user") == calls.count("dummy") == cfg.login_free_failures
    free = cfg.login_free_failures
    slow_known = statistics.median(durations["known"][:free])
    slow_unknown = statistics.median(durations["unknown"][:free])
    assert slow_unknown > slow_known / 3, (slow_known, slow_unknown)  # both ran argon2 (tens of ms)


def test_one_address_trying_many_names_is_capped(
    app_client: TestClient, staff_users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Password spraying: one guess per name from one address stays under the per-name back-off."""
    limiter = app_client.app.state.login_throttle  # type: ignore[attr-defined]
    monkeypatch.setattr(limiter, "policy", dataclasses.replace(limiter.policy, ip_max_failures=4))
    now = [1_000_000.0]
    monkeypatch.setattr(throttle, "_clock", lambda: now[0])
    sprayer = from_ip(app_client, "203.0.113.99")
    statuses = [attempt(sprayer, name, "Winter2026!!").status_code for name in ("rev1", "rev2", "sup1", "x", "admin")]
    assert statuses == [401, 401, 401, 401, 429]
    assert attempt(sprayer, "sup2", PASSWORD).status_code == 429
    login(from_ip(app_client, "192.0.2.30"), "sup2")  # everyone else is unaffected
    now[0] += limiter.policy.ip_window_s  # the next window
    assert attempt(sprayer, "sup2", PASSWORD).status_code == 303


def test_back_off_is_shared_by_api_processes_through_redis(tmp_path: Path) -> None:
    if not servers.redis_available():
        pytest.skip("redis-server not installed")
    with servers.redis_server(tmp_path / "redis") as url:
        shared = {
            "database_url": f"sqlite:///{tmp_path / 'shared.db'}",
            "signing_key": "k" * 40,
            "rate_limit_backend": "redis",
            "rate_limit_redis_url": url,
            "rate_limit_redis_timeout_s": 5.0,
        }
        a, b = ops_app(tmp_path / "a", **shared), ops_app(tmp_path / "b", **shared)
        assert isinstance(a.state.login_throttle.store, throttle.RedisBackoff)
        free = a.state.console_config.login_free_failures
        with TestClient(a, client=("198.51.100.7", 1)) as ca, TestClient(b, client=("198.51.100.7", 2)) as cb:
            for i in range(free):
                assert attempt(ca if i % 2 else cb, "nobody", "wrong-password!").status_code == 401
            assert attempt(ca, "nobody", "wrong-password!").status_code == 429
            assert attempt(cb, "nobody", "wrong-password!").status_code == 429
            other_ip = TestClient(b, client=("198.51.100.8", 3))
            assert attempt(other_ip, "nobody", "wrong-password!").status_code == 401


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


def test_a_new_account_needs_a_username_that_can_be_stored(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Blank names, names longer than the column, and an existing name with spaces around it are refused with a
    Chinese reason and create nothing (a blank or spaced one was a 500; an empty field is refused as missing)."""
    csrf = login(app_client, "admin")
    form = {"csrf": csrf, "password": "a-long-password", "role": "reviewer"}
    for bad, why in (("   ", "用户名须为"), ("x" * 65, "用户名须为"), (" rev1 ", "用户名已存在")):
        r = app_client.post("/console/users", data={**form, "username": bad})
        assert r.status_code == 422 and why in r.text, bad
    assert app_client.post("/console/users", data={**form, "username": " 新人 "}).status_code == 200
    with ctx.db() as db:
        names = sorted(db.scalars(select(StaffUser.username)))
    assert names == sorted([*staff_users, "新人"])
