"""Staff accounts: argon2id passwords, lockout after repeated failures, server-side sessions with idle and
absolute expiry, a CSRF token per session, and roles ordered reviewer < supervisor < admin."""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.console.config import ConsoleConfig
from service.db.console_models import StaffSession, StaffUser
from service.db.models import utcnow
from service.security import token_hash

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
# Verified against when the username is unknown, so that a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(enum.StrEnum):
    REVIEWER = "reviewer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


ROLE_RANK = {Role.REVIEWER: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}
ROLE_ZH = {Role.REVIEWER: "审核员", Role.SUPERVISOR: "主管", Role.ADMIN: "管理员"}


class LoginError(Exception):
    """Wrong credentials, or a locked or disabled account; `message` is what the login page shows."""

    def __init__(self, message: str, locked: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.locked = locked


@dataclass(frozen=True)
class Staff:
    """The logged-in user of one request."""

    id: int
    username: str
    display_name: str
    role: Role
    csrf: str

    def has(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("password must have at least 10 characters")
    return _hasher.hash(password)


def create_user(db: Session, username: str, password: str, role: Role | str, display_name: str = "") -> StaffUser:
    user = StaffUser(
        username=username.strip(),
        display_name=display_name.strip() or username.strip(),
        role=Role(role).value,
        password_hash=hash_password(password),
    )
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, cfg: ConsoleConfig, username: str, password: str) -> StaffUser:
    """Check a login; counts failures and locks the account after `max_failed_logins` in a row."""
    now = utcnow()
    user = db.scalar(select(StaffUser).where(StaffUser.username == username.strip()))
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise LoginError("用户名或密码错误")
    if user.locked_until is not None and user.locked_until > now:
        raise LoginError("账户已锁定，请稍后再试或联系管理员", locked=True)
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= cfg.max_failed_logins:
            user.locked_until = now + dt.timedelta(seconds=cfg.lockout_s)
            user.failed_logins = 0
            log.warning("staff account %s locked after repeated failures", user.id)
            raise LoginError("账户已锁定，请稍后再试或联系管理员", locked=True)
        raise LoginError("用户名或密码错误")
    if not user.active:
        raise LoginError("账户已停用")
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def start_session(db: Session, user: StaffUser) -> str:
    """A new session for `user`; returns the cookie value (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        StaffSession(
            token_hash=token_hash(token), user_id=user.id, csrf=secrets.token_urlsafe(32), created_at=now, last_seen=now
        )
    )
    return token


def resolve_session(db: Session, cfg: ConsoleConfig, token: str | None) -> Staff | None:
    """The staff member of a session cookie, or None when absent, unknown, expired or the user is disabled.
    A live session's idle clock restarts."""
    if not token:
        return None
    row = db.get(StaffSession, token_hash(token))
    if row is None:
        return None
    now = utcnow()
    idle = (now - row.last_seen).total_seconds() > cfg.idle_timeout_s
    too_old = (now - row.created_at).total_seconds() > cfg.absolute_timeout_s
    user = db.get(StaffUser, row.user_id)
    if idle or too_old or user is None or not user.active:
        db.delete(row)
        return None
    row.last_seen = now
    return Staff(user.id, user.username, user.display_name, Role(user.role), row.csrf)


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


def end_user_sessions(db: Session, user_id: int) -> None:
    db.execute(delete(StaffSession).where(StaffSession.user_id == user_id))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
