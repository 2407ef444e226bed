"""Staff accounts: argon2id passwords, server-side sessions with idle and absolute expiry, a CSRF token per
session, and roles ordered reviewer < supervisor < admin. Repeated failures slow down the requester
(`throttle.py`, per client IP and username), never lock the account."""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import String, delete, select
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from service.certification.models import utcnow
from service.features.console.config import ConsoleConfig
from service.features.console.models import StaffSession, StaffUser
from service.infra.security import token_hash

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


# One answer for an unknown username and a wrong password (no way to tell which accounts exist).
BAD_CREDENTIALS = "用户名或密码错误"


class LoginError(Exception):
    """Wrong credentials (`bad_credentials`), or a disabled account after the right password; `message` is what
    the login page shows."""

    def __init__(self, message: str, bad_credentials: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.bad_credentials = bad_credentials


@dataclass(frozen=True)
class Staff:
    """The logged-in user of one request."""

    id: int
    username: str
    display_name: str
    role: Role
    csrf: str
    must_change_password: bool = False  # only the password page (and logout) until it is changed
    # Division-code prefixes whose pensioners this member of staff may see (scope.py); empty: everybody.
    scope: tuple[str, ...] = ()
    # False while an account an admin created, raised or reset (any role) awaits another supervisor's confirmation
    # (accounts.py): it works in its role, but is nobody's second person of a two-person rule.
    confirmed: bool = True
    # When the login ends at the latest (naive UTC: its absolute limit), told on the case page beside the claim's
    # end (typing sends nothing: a long decision can outlast the login).
    login_ends: dt.datetime | None = None

    def has(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


MIN_PASSWORD_CHARS = 10
# Longer than any passphrase anyone types; bounds the strength estimate's and argon2's work on a form field.
MAX_PASSWORD_CHARS = 128
# zxcvbn's score 3: an estimated 1e8 guesses or more, past its dictionaries (30,000 leaked passwords, names,
# words), keyboard walks, repeats, sequences, dates and years. NIST SP 800-63B asks for a check against
# commonly-used and expected values rather than composition rules; argon2id then makes each guess at a stolen
# hash slow, and the login back-off each guess online.
MIN_PASSWORD_SCORE = 3
# What an attacker tries first at a pension bureau, beside the account's own names.
_EXPECTED_WORDS = ("pension", "console", "admin", "shebao", "yanglao", "renshe", "renshe12333", "12333")


# Shown under every new-password field (the rule below, in words).
PASSWORD_HINT = (
    f"{MIN_PASSWORD_CHARS} 到 {MAX_PASSWORD_CHARS} 个字符，不能包含用户名，不能是常见密码、键盘顺序、重复或连续的字符、"
    "姓名、年份或日期；几个不相关的词连在一起既好记又难猜"
)


class PasswordError(ValueError):
    """A password the console does not take: `code`, `message` (Chinese, for staff pages) and `str()` (English,
    for the command line)."""

    def __init__(self, code: str, message: str, english: str) -> None:
        super().__init__(english)
        self.code = code
        self.message = message


def check_password(password: str, username: str, display_name: str = "") -> None:
    """The one rule for a new password (an account created on the users page or by the CLI, an admin's reset,
    a change of one's own), or PasswordError saying why not."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(
            "too_short",
            f"密码至少 {MIN_PASSWORD_CHARS} 个字符",
            f"the password must have at least {MIN_PASSWORD_CHARS} characters",
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordError(
            "too_long",
            f"密码最多 {MAX_PASSWORD_CHARS} 个字符",
            f"the password must have at most {MAX_PASSWORD_CHARS} characters",
        )
    name = username.strip().casefold()
    if len(name) >= 3 and name in password.casefold():
        raise PasswordError("contains_username", "密码不能包含用户名", "the password must not contain the username")
    words = [w for w in (username.strip(), display_name.strip()) if w] + list(_EXPECTED_WORDS)
    # zxcvbn refuses (ValueError) anything over its default 72 characters: its bound is ours.
    if zxcvbn(password, user_inputs=words, max_length=MAX_PASSWORD_CHARS)["score"] < MIN_PASSWORD_SCORE:
        raise PasswordError(
            "guessable",
            "密码太容易被猜到（常见密码、键盘顺序、重复或连续的字符、姓名、年份或日期），"
            "请换一个更长、更不规则的密码，例如几个不相关的词连在一起",
            "the password is too easy to guess (a common password, a keyboard walk, repeated or sequential "
            "characters, a name, a year or a date): choose a longer, less regular one, e.g. several unrelated words",
        )


def hash_password(password: str) -> str:
    """The stored hash of a password already checked by `check_password`."""
    return _hasher.hash(password)


_USERNAME_TYPE = StaffUser.__table__.c.username.type
USERNAME_MAX_CHARS = _USERNAME_TYPE.length if isinstance(_USERNAME_TYPE, String) and _USERNAME_TYPE.length else 64


class UsernameError(ValueError):
    """A username that cannot be an account's: empty (or only spaces) or longer than the column holds."""


def checked_username(username: str) -> str:
    """The name as it is stored and looked up (stripped), or UsernameError: the one rule for the console's user
    page and `pension-cert console create-user`."""
    name = username.strip()
    if not name or len(name) > USERNAME_MAX_CHARS:
        raise UsernameError(f"用户名须为 1 到 {USERNAME_MAX_CHARS} 个字符")
    return name


def create_user(
    db: Session,
    username: str,
    password: str,
    role: Role | str,
    display_name: str = "",
    set_by_admin: bool = False,
    scope: list[str] | None = None,
) -> StaffUser:
    """`set_by_admin`: the password was chosen by an admin for someone else (the console's user page), so its
    holder must change it at the first login. The CLI's account is the operator's own (README: the first admin).
    `scope`: division-code prefixes already checked by `scope.parse_scope` (None: the whole jurisdiction)."""
    name = checked_username(username)
    check_password(password, name, display_name)
    user = StaffUser(
        username=name,
        display_name=display_name.strip() or name,
        role=Role(role).value,
        password_hash=hash_password(password),
        must_change_password=set_by_admin,
        scope=list(scope or []),
    )
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, username: str, password: str) -> StaffUser:
    """Check a login. An unknown username costs one argon2 verification too, and gets the same error as a wrong
    password; the back-off of repeated failures is the caller's (`throttle.LoginThrottle`)."""
    user = db.scalar(select(StaffUser).where(StaffUser.username == username.strip()))
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise LoginError(BAD_CREDENTIALS)
    if not _verify(user.password_hash, password):
        raise LoginError(BAD_CREDENTIALS)
    if not user.active:
        raise LoginError("账户已停用", bad_credentials=False)  # only after the right password
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


@dataclass(frozen=True)
class SessionRead:
    """What a session cookie names: the staff member of a live login, or none; and when the login it names ran out
    (idled or aged past its limit) just now, that login's form token (`ran_out_csrf`), by which a form sent from
    one of its pages is told from one sent by another site (web.kept_decision)."""

    staff: Staff | None
    ran_out_csrf: str = ""


def resolve_session(db: Session, cfg: ConsoleConfig, token: str | None) -> Staff | None:
    """The staff member of a session cookie, or None when absent, unknown, expired or the user is disabled.
    A live session's idle clock restarts."""
    return read_session(db, cfg, token).staff


def read_session(db: Session, cfg: ConsoleConfig, token: str | None) -> SessionRead:
    """`resolve_session`, and the form token of a login that ran out (deleted here, so read nowhere else)."""
    if not token:
        return SessionRead(None)
    row = db.get(StaffSession, token_hash(token))
    if row is None:
        return SessionRead(None)
    now = utcnow()
    idle = (now - row.last_seen).total_seconds() > cfg.idle_timeout_s
    too_old = (now - row.created_at).total_seconds() > cfg.absolute_timeout_s
    user = db.get(StaffUser, row.user_id)
    if idle or too_old or user is None or not user.active:
        db.delete(row)
        ran_out = (idle or too_old) and user is not None and user.active
        return SessionRead(None, row.csrf if ran_out else "")
    row.last_seen = now
    return SessionRead(_staff(cfg, row, user))


def _staff(cfg: ConsoleConfig, row: StaffSession, user: StaffUser) -> Staff:
    return Staff(
        user.id,
        user.username,
        user.display_name,
        Role(user.role),
        row.csrf,
        bool(user.must_change_password),
        tuple(user.scope or ()),
        user.granted_by is None,
        row.created_at + dt.timedelta(seconds=cfg.absolute_timeout_s),
    )


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


def end_user_sessions(db: Session, user_id: int) -> None:
    db.execute(delete(StaffSession).where(StaffSession.user_id == user_id))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
