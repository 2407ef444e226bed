"""An account an admin made is nobody's second person, nor the first of its granter, until another supervisor
confirms it (docs/security.md, Part BK).

Every two-person rule of the console (a case's second decision, an evidence hold's release, a revocation, the check
of a counter certification after a fraud, a finding on a roster change of ID number) asks for a supervisor other
than the first. An admin could create an account, choose its first password (and its "own" one at the first login),
and be either person through it. As a bureau separates the one who issues accounts from the one who authorises them
(三员分立), an account an admin created (any role), raised to a higher role, or whose password an admin set, carries
that admin (`StaffUser.granted_by`) until a confirmed supervisor other than that admin, and other than the account's
holder, confirms that grant (`confirm_account`, audited `user.confirm`; a refusal `user.confirm.refused`). Meanwhile
it works in its role otherwise; `check_second_person` refuses it as anyone's second person, and refuses its granter
as the second person of its acts (the puppet asking first). An admin account awaiting confirmation grants nothing
(`may_grant`): one person's two admin accounts do not make a third account the other can confirm.
Accounts made on the command line need nobody's confirmation (the operator's; docs/console.md says what follows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.errors import ServiceError
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import audit_chain
from service.features.console.auth import ROLE_RANK, Role, Staff
from service.features.console.labels import actor_label
from service.features.console.models import StaffUser
from service.features.console.scope import covers
from service.infra.security import mask_text

UNCONFIRMED = "SECOND_UNCONFIRMED"  # the catalogued refusal
# The audited acts that grant an account (the entry's detail says `grant`), as the confirmation list names them.
GRANT_ACTIONS = {"user.create": "开设", "user.role": "提升角色", "user.password": "重置密码"}
GRANT_REFUSED = "user.grant.refused"
CONFIRM_REFUSED = "user.confirm.refused"
NOT_CONFIRMED_ZH = "您的账号尚未经另一位主管确认，不能开设账号、提升角色或重置密码"
NOT_PENDING_ZH = (
    "该账号不在您可确认的列表中：开设、提升或重置它的管理员和账号本人不能确认；仍在使用管理员设定的密码的账号，"
    "待本人修改密码后再确认"
)
GRANT_CHANGED_ZH = "该账号此后已有新的变更（重新开设、提升角色或重置密码），请在预警页重新核实后再确认"


@dataclass(frozen=True)
class Pending:
    """An account awaiting a confirmation, as the alerts page lists it: who granted it, how, and that grant's
    entry in the staff audit chain (the confirmation names it)."""

    id: int
    username: str
    display_name: str
    role: str
    granter: str
    event: str
    grant: int  # the grant's `console_audit.seq`; 0 when none is recorded


def staff_names(db: Session, actors: Iterable[str | None]) -> dict[str, str]:
    """The members of staff among audit `actors` ("staff:<username>") by display name and username, "张三（sup1）",
    in one read: a page names who asked, revoked or held by the name colleagues know (labels.actor_label)."""
    usernames = {a.removeprefix("staff:") for a in actors if a and a.startswith("staff:")}
    if not usernames:
        return {}
    rows = db.execute(select(StaffUser.username, StaffUser.display_name).where(StaffUser.username.in_(usernames)))
    return {f"staff:{username}": f"{name}（{username}）" for username, name in rows}


def who_is(db: Session, actors: Iterable[str | None]) -> Callable[[str | None], str]:
    """`labels.actor_label` over `actors`' staff names, for a template (`who(actor)`)."""
    names = staff_names(db, actors)
    return lambda actor: actor_label(actor, names)


def grant(user: StaffUser, staff: Staff, before: str | None = None) -> dict[str, bool]:
    """`staff` (an admin) just created `user`, set its role (`before`: the role it had) or its password in the
    console: the account awaits another supervisor's confirmation, unless a role was lowered or kept, or the admin
    reset their own password (nobody else's hand then). The detail its audit entry adds (`grant`)."""
    if before is not None and ROLE_RANK[Role(user.role)] <= ROLE_RANK[Role(before)]:
        return {}
    if user.id is not None and user.id == staff.id:
        return {}
    user.granted_by = staff.id
    return {"grant": True}


def may_grant(db: Session, staff: Staff, op: str, username: str) -> str | None:
    """None when `staff` may create, raise or reset an account (`op`); else why not, in Chinese, and the refusal
    recorded (the caller's unit commits it): an admin account awaiting confirmation grants nothing."""
    if staff.confirmed:
        return None
    audit_chain.record(db, staff.actor, GRANT_REFUSED, username, {"op": op, "reason": UNCONFIRMED})
    return NOT_CONFIRMED_ZH


def _account(db: Session, first: str | int | None) -> StaffUser | None:
    """The console account of a first person: a staff_users id, or an actor as the trails keep it."""
    if isinstance(first, int):
        return db.get(StaffUser, first)
    if first and first.startswith("staff:"):
        return db.scalar(select(StaffUser).where(StaffUser.username == first.removeprefix("staff:")))
    return None


def check_second_person(db: Session | None, staff: Staff, first: str | int | None = None) -> None:
    """The one check that `staff` may be the second person of a two-person rule whose first is `first` (an actor as
    the trails keep it, or a staff_users id; the other rules: not the first): `staff`'s own account confirmed, and
    `first` no account `staff` granted that awaits confirmation (`db` None: only the former, for a page's buttons).
    Refused: SECOND_UNCONFIRMED."""
    if not staff.confirmed:
        raise ServiceError(UNCONFIRMED, f"account {staff.username} awaits another supervisor's confirmation")
    user = _account(db, first) if db is not None else None
    if user is not None and user.granted_by == staff.id:
        raise ServiceError(UNCONFIRMED, f"account {user.username} was granted by {staff.username}, unconfirmed")


def pending_accounts(db: Session, staff: Staff) -> list[Pending]:
    """The accounts awaiting a confirmation `staff` may give (none when `staff` may not confirm at all): not
    `staff`'s own, not granted by `staff`, within `staff`'s scope, and no longer on the password an admin chose."""
    if not staff.confirmed or not staff.has(Role.SUPERVISOR):
        return []
    rows = db.scalars(
        select(StaffUser)
        .where(StaffUser.granted_by.is_not(None), StaffUser.active.is_(True), StaffUser.must_change_password.is_(False))
        .order_by(StaffUser.username)
    ).all()
    out = []
    for u in rows:
        if u.id == staff.id or u.granted_by == staff.id or not covers(staff, u.scope or []):
            continue
        granter = db.get(StaffUser, u.granted_by) if u.granted_by is not None else None
        event = _grant_entry(db, u.username)
        seq, label = (event.seq, GRANT_ACTIONS[event.action]) if event is not None else (0, "变更")
        name = granter.username if granter is not None else str(u.granted_by)
        out.append(Pending(u.id, u.username, u.display_name, u.role, name, label, seq))
    return out


def _grant_entry(db: Session, username: str) -> ConsoleAuditEntry | None:
    """The newest audited grant of account `username` (`console_audit.target`'s index: that account's entries)."""
    e = ConsoleAuditEntry
    q = select(e).where(e.target == mask_text(username)[:64], e.action.in_(GRANT_ACTIONS)).order_by(e.seq.desc())
    return next((x for x in db.scalars(q) if x.detail.get("grant")), None)


def confirm_account(
    db: Session, staff: Staff, user_id: int, grant_seq: int, kept: Callable[[StaffUser], dict[str, Any]]
) -> str | None:
    """`staff` (a confirmed supervisor, neither the account's granter nor its holder, whose scope covers it)
    confirms the grant `grant_seq` of account `user_id` (the one the page showed): from now on it may be a second
    person. Audited, with what `kept` (account_kept.note_change, passed in: account_kept reads this module's
    neighbours) adds; else why not, in Chinese, recorded too (nothing changed): not one `staff` may confirm
    (NOT_PENDING), or granted again since (GRANT_CHANGED)."""
    user = db.get(StaffUser, user_id, with_for_update=True)
    pending = {p.id: p for p in pending_accounts(db, staff)} if user is not None else {}
    p = pending.get(user_id)
    if user is None or p is None or p.grant != grant_seq:
        reason, message = ("NOT_PENDING", NOT_PENDING_ZH) if p is None else ("GRANT_CHANGED", GRANT_CHANGED_ZH)
        target = user.username if user is not None else str(user_id)
        audit_chain.record(db, staff.actor, CONFIRM_REFUSED, target, {"reason": reason, "grant": grant_seq})
        return message
    user.granted_by = None
    # `event`: the kept record's id, as every kept account change's entry names it (account_kept: a restore from an
    # older dump lists the confirmation for a supervisor to give again); `granted_as`: how the account was granted.
    detail = {"role": user.role, "granted_by": p.granter, "grant": p.grant, "granted_as": p.event}
    detail |= kept(user)
    audit_chain.record(db, staff.actor, "user.confirm", user.username, detail)
    return None
