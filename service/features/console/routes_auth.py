"""Login, logout and user management (admin only)."""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.features.console import account_kept, accounts, audit_chain
from service.features.console.auth import (
    LoginError,
    PasswordError,
    Role,
    Staff,
    UsernameError,
    authenticate,
    check_password,
    checked_username,
    create_user,
    csrf_ok,
    end_session,
    end_user_sessions,
    hash_password,
    resolve_session,
    start_session,
)
from service.features.console.inputs import RowId
from service.features.console.models import StaffUser
from service.features.console.review_queue import release_claims_outside
from service.features.console.routes_review import RELOGGED_DECISION_ZH, reopen_decision
from service.features.console.scope import ScopeError, covers, describe, parse_scope
from service.features.console.throttle import wait_text
from service.features.console.web import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    PREFIX,
    Admin,
    CurrentStaff,
    KeptDecision,
    Supervisor,
    check_csrf,
    config_of,
    redirect,
    render,
    safe_next,
    secure_cookies,
    throttle_of,
    unit,
)

router = APIRouter(prefix=PREFIX)


# What the login page says when a form was sent after the login had idled out (LoginRequired on a POST).
EXPIRED_POST_ZH = "登录已超时，刚才提交的内容未保存。请重新登录，将返回原页面，请在该页重新填写并提交。"
# The same for a case decision, which the login form carries back (web.KeptDecision).
EXPIRED_DECISION_ZH = (
    "登录已超时，刚才提交的内容未保存。请重新登录，登录后将重新打开该案件并填回您的决定和理由，请核对后再提交。"
)


_CASE_PAGE = re.compile(r"/cases/([0-9a-f-]{1,64})")


def login_form(
    request: Request,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    next_path: str = "",
    kept: KeptDecision | None = None,
) -> Response:
    """The login page, with a fresh login CSRF value both in a SameSite=Strict cookie and in the form (double
    submit), the console page to return to after the login (`safe_next`: never off the console), and a decision
    to fill back in there (`kept`)."""
    token = secrets.token_urlsafe(24)
    values = {"error": error, "notice": notice, "next": safe_next(next_path), "kept": kept}
    resp = render(request, "login.html", None, status=status, csrf=token, **values)
    resp.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path=PREFIX
    )
    return resp


@router.get("/login")
def login_page(request: Request, next: str = "") -> Response:
    return login_form(request, next_path=next)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    kept_decision: Annotated[str, Form()] = "",
    kept_reason: Annotated[str, Form()] = "",
) -> Response:
    kept = KeptDecision(kept_decision[:16], kept_reason[:1000]) if kept_decision or kept_reason else None
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf):
        return render(request, "login.html", None, status=403, csrf="", error="表单已失效，请刷新页面后重试")
    throttle = throttle_of(request)
    ip = throttle.ip_of(request.scope)
    # Counted as a failure before the password is checked (parallel guesses cannot slip in), cleared on success.
    wait = throttle.attempt(ip, username)
    failure: LoginError | None = None
    with unit(request) as db:
        if wait > 0:
            # Decided from this requester's own failures only, before the staff table is read: the same for a
            # name that exists and one that does not.
            failure = LoginError(f"登录失败次数过多，请 {wait_text(wait)}后再试")
            audit_chain.record(db, "anonymous", "login.failed", username[:64], {"throttled": True})
        else:
            try:
                user = authenticate(db, username, password)
                token = start_session(db, user)
                audit_chain.record(db, f"staff:{user.username}", "login", user.username)
            except LoginError as exc:
                failure = exc
                audit_chain.record(db, "anonymous", "login.failed", username[:64], {"throttled": False})
    if failure is None or not failure.bad_credentials:
        throttle.succeeded(ip, username)  # the right password (a disabled account's too): not a guess
    if failure is not None:
        resp = login_form(request, 429 if wait > 0 else 401, failure.message, next_path=next, kept=kept)
        if wait > 0:
            resp.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return resp
    ok = _back_to(request, token, safe_next(next), kept)
    ok.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path=PREFIX)
    ok.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return ok


def _back_to(request: Request, token: str, path: str, kept: KeptDecision | None) -> Response:
    """Where a login leads: the page it was asked for (the queue by default); the case whose decision was sent
    after the previous login ran out, reopened with that decision filled in."""
    case = _CASE_PAGE.fullmatch(path) if kept is not None else None
    if case is not None and kept is not None:
        with unit(request) as db:
            staff = resolve_session(db, config_of(request), token)
        if staff is not None and not staff.must_change_password:
            return reopen_decision(request, staff, case.group(1), RELOGGED_DECISION_ZH, kept.decision, kept.reason)
    return redirect(path or "/queue")


@router.post("/logout")
def logout(request: Request, staff: CurrentStaff, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(staff, csrf)
    with unit(request) as db:
        end_session(db, request.cookies.get(COOKIE))
        audit_chain.record(db, staff.actor, "logout", staff.username)
    resp = redirect("/login")
    resp.delete_cookie(COOKIE, path=PREFIX)
    return resp


@router.get("/password")
def password_page(request: Request, staff: CurrentStaff, ok: int = 0) -> Response:
    return render(request, "password.html", staff, error=None, done=bool(ok))


@router.post("/password")
def change_own_password(
    request: Request,
    staff: CurrentStaff,
    current: Annotated[str, Form()],
    new: Annotated[str, Form()],
    confirm: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Staff change their own password: until then it is the one an admin chose and handed over (and still
    knows), so the admin could act in their name, the second supervisor of a proxy rejection included. The
    current password is checked under the login back-off (a borrowed session cannot guess it); every session of
    the account ends and this browser gets a new one."""
    check_csrf(staff, csrf)
    throttle = throttle_of(request)
    ip = throttle.ip_of(request.scope)
    wait = throttle.attempt(ip, staff.username)
    if wait > 0:
        return render(request, "password.html", staff, status=429, error=f"尝试次数过多，请 {wait_text(wait)}后再试")
    with unit(request) as db:
        try:
            user = authenticate(db, staff.username, current)
        except LoginError:
            return render(request, "password.html", staff, status=401, error="当前密码不正确")
        throttle.succeeded(ip, staff.username)
        error = _new_password_problem(user, current, new, confirm)
        if error is not None:
            return render(request, "password.html", staff, status=422, error=error)
        user.password_hash, user.must_change_password = hash_password(new), False
        end_user_sessions(db, user.id)
        token = start_session(db, user)
        kept = account_kept.note_change(db, "user.password.self", user)  # a restore must not bring the old one back
        audit_chain.record(db, staff.actor, "user.password.self", staff.username, kept)
    ok = redirect("/password?ok=1")
    ok.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path=PREFIX)
    return ok


def _new_password_problem(user: StaffUser, current: str, new: str, confirm: str) -> str | None:
    if new != confirm:
        return "两次输入的新密码不一致"
    if new == current:
        return "新密码不能与当前密码相同"
    try:
        check_password(new, user.username, user.display_name)
    except PasswordError as exc:
        return exc.message
    return None


@dataclass(frozen=True)
class _Account:
    """A staff account as the users page lists it (read in the unit of work, rendered after its commit)."""

    id: int
    username: str
    display_name: str
    role: str
    active: bool
    scope: tuple[str, ...]
    granted_by: int | None = None  # awaiting another supervisor's confirmation (accounts.py)


def _accounts(db: Session, staff: Staff) -> list[_Account]:
    """The accounts `staff` may manage (scope.covers: all for an unscoped admin) and their own."""
    rows = db.scalars(select(StaffUser).order_by(StaffUser.username)).all()
    return [
        _Account(u.id, u.username, u.display_name, u.role, u.active, tuple(u.scope or []), u.granted_by)
        for u in rows
        if u.id == staff.id or covers(staff, u.scope or [])
    ]


def _users_page(request: Request, staff: Staff, users: list[_Account], error: str | None = None) -> Response:
    status = 200 if error is None else 422
    return render(
        request, "users.html", staff, status=status, users=users, roles=list(Role), error=error, describe=describe
    )


@router.get("/users")
def users_page(request: Request, staff: Admin) -> Response:
    with unit(request) as db:
        users = _accounts(db, staff)
    return _users_page(request, staff, users)


@router.post("/users")
def add_user(
    request: Request,
    staff: Admin,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    display_name: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """A new account; `scope`: the division codes whose pensioners it may see (empty: the whole jurisdiction)."""
    check_csrf(staff, csrf)
    with unit(request) as db:
        error = _create_account(db, staff, username, password, role, display_name, scope)
        users = _accounts(db, staff)
    return _users_page(request, staff, users, error)


def _create_account(
    db: Session, staff: Staff, username: str, password: str, role: str, display_name: str, scope: str
) -> str | None:
    """The new account, audited; or why not, in Chinese (nothing created)."""
    try:
        name = checked_username(username)
    except UsernameError as exc:
        return str(exc)
    if db.scalar(select(StaffUser).where(StaffUser.username == name)) is not None:
        return "用户名已存在"
    if role not in {r.value for r in Role}:
        return "角色无效"
    refused = accounts.may_grant(db, staff, "create", name)  # an admin account awaiting confirmation (Part BK)
    if refused is not None:
        return refused
    try:
        prefixes = _grantable(staff, scope)
        user = create_user(db, name, password, role, display_name, set_by_admin=True, scope=prefixes)
    except (ScopeError, PasswordError) as exc:
        return exc.message
    granted = accounts.grant(user, staff)  # nobody's second person, nor its granter's, until confirmed (Part BK)
    value = {"role": role, "scope": prefixes}
    kept = account_kept.note_change(db, "user.create", user, value)  # a restore lists it for an admin to redo
    audit_chain.record(db, staff.actor, "user.create", name, value | granted | kept)
    return None


@router.post("/users/{user_id}")
def change_user(
    request: Request,
    staff: Admin,
    user_id: RowId,
    op: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
) -> Response:
    """op: disable | enable | role | password | scope. (No unlock: failed logins never lock an account.)"""
    check_csrf(staff, csrf)
    with unit(request) as db:
        user = db.get(StaffUser, user_id)
        if user is None or (user.id == staff.id and op in ("disable", "role")):
            return redirect("/users")  # nobody removes their own admin rights by accident
        error = _refusal(staff, user, op)
        if error is None and op in ("role", "password"):
            error = accounts.may_grant(db, staff, op, user.username)  # an admin awaiting confirmation (Part BK)
        if error is None and op == "scope":
            try:
                _set_scope(db, staff, user, scope)
            except ScopeError as exc:
                error = exc.message
        elif error is None and op == "password":
            error = _reset_password(db, staff, user, password)
        elif error is None and not _apply_account_op(db, staff, user, op, role):
            return redirect("/users")
        users = _accounts(db, staff) if error is not None else []
    # Rendered after the unit of work has committed (or, for a refusal, changed nothing).
    return redirect("/users") if error is None else _users_page(request, staff, users, error)


def _refusal(staff: Staff, user: StaffUser, op: str) -> str | None:
    """Why `staff` may not change `user` this way, in Chinese; None when they may."""
    if user.id == staff.id and op == "scope":
        # Nor narrows their own view (the last unscoped admin would leave nobody to import the roster or to
        # unscope anyone), nor widens it: another admin's to change.
        return "不能修改本人的地区范围，请由另一位管理员修改"
    if not covers(staff, user.scope or []):
        # A scoped admin resetting an unscoped account's password could log in with it: not theirs to manage.
        return _outside(staff)
    return None


def _reset_password(db: Session, staff: Staff, user: StaffUser, password: str) -> str | None:
    """An admin's new password for `user`, audited; or why not, in Chinese (nothing changed). The admin now
    knows it: the holder replaces it at the next login (an admin resetting their own password too: it was typed
    into a form others may have seen)."""
    try:
        check_password(password, user.username, user.display_name)
    except PasswordError as exc:
        return exc.message
    user.password_hash, user.must_change_password = hash_password(password), True
    granted = accounts.grant(user, staff)  # the admin knows the password now: confirmed again by another supervisor
    end_user_sessions(db, user.id)
    kept = account_kept.note_change(db, "user.password", user)  # a restore must not bring the old one back
    audit_chain.record(db, staff.actor, "user.password", user.username, granted | kept)
    return None


def _apply_account_op(db: Session, staff: Staff, user: StaffUser, op: str, role: str) -> bool:
    """disable | enable | role, audited; False when the operation or its value is not one of them."""
    granted: dict[str, bool] = {}
    before = user.role
    if op == "disable":
        user.active = False
        end_user_sessions(db, user.id)
    elif op == "enable":
        user.active = True
    elif op == "role" and role in {r.value for r in Role}:
        user.role = role
        granted = accounts.grant(user, staff, before)  # raised: confirmed again by another supervisor (Part BK)
        end_user_sessions(db, user.id)
    else:
        return False
    value: dict[str, object] = {"role": role, "from": before} if op == "role" else {}
    # Kept outside the database: a restore from an older dump redoes the ones that took rights away (account_kept).
    detail: dict[str, object] = value | granted | account_kept.note_change(db, f"user.{op}", user, value)
    audit_chain.record(db, staff.actor, f"user.{op}", user.username, detail)
    return True


def _set_scope(db: Session, staff: Staff, user: StaffUser, text: str) -> None:
    """The account's region scope, as typed (checked); the change, old and new, is audited. It applies from the
    account's next request (each request reads it), so its sessions stay; its claims on cases now out of its
    scope are released (audited with the change)."""
    old, new = list(user.scope or []), _grantable(staff, text)
    if new == old:
        return
    user.scope = new
    released = release_claims_outside(db, user.id, new)
    kept = account_kept.note_change(db, "user.scope", user, {"from": old, "to": new})  # a restore redoes a narrowing
    detail = {"from": old, "to": new, "released": released} | kept
    audit_chain.record(db, staff.actor, "user.scope", user.username, detail)


def _outside(staff: Staff) -> str:
    return f"只能管理本人地区范围（{describe(staff.scope)}）以内的账户"


def _grantable(staff: Staff, text: str) -> list[str]:
    """A typed scope (`parse_scope`) that `staff` may grant: within their own (scope.covers)."""
    prefixes = parse_scope(text)
    if not covers(staff, prefixes):
        raise ScopeError(_outside(staff))
    return prefixes


@router.post("/users/{user_id}/confirm")
def confirm_user(
    request: Request,
    staff: Supervisor,
    user_id: RowId,
    csrf: Annotated[str, Form()] = "",
    grant: Annotated[int, Form()] = 0,
) -> Response:
    """Another supervisor confirms an admin's grant (`grant`: its audit entry, as the alerts page showed it) of an
    account (accounts.py); a refusal is recorded and said."""
    check_csrf(staff, csrf)
    with unit(request) as db:
        refused = accounts.confirm_account(
            db, staff, user_id, grant, lambda user: account_kept.note_change(db, "user.confirm", user)
        )
    if refused is not None:
        return render(request, "message.html", staff, status=409, message=refused, back="/alerts")
    return redirect("/alerts")
