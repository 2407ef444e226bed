"""Staff account changes a database restore must not take back (docs/security.md, Parts CO and CS;
docs/operations.md, "Restoring from a backup").

An admin's change of an account lived in the database only: a restore from a dump older than it brought the
account back as it was (a dismissed reviewer active again, a demoted supervisor with their rights, a reset
password's predecessor valid), and nothing outside the database said which account. Each change is now recorded as
a withdrawal is (withdrawal_records.note: sealed in the media store once its transaction commits, its event id in
the chain entry's detail), with what it set (`value`; a password's new hash: the store is encrypted with the media
key, as the dump holds the hash too). `pension-cert console record-restore` then redoes the ones that took rights
away (disable, a role lowered, a scope narrowed, a password set: its old one no longer works) which the restored
database does not reflect, through `redo` (FeatureHooks.reapply), audited with the same action `via: restore`.
One that gave rights (enable, a role raised, a scope widened or moved) is never redone on its own: a grant is a
person's decision (Part BK), so `left` lists it for an admin to make again. So are an account's creation and a
supervisor's confirmation of an admin's grant (`user.create`, `user.confirm`): after a restore from a dump older
than them the account is missing, or awaits confirmation again (the safe side), and `left` says what to do by hand
(`todo`). A reset redone marks the account as the reset did (awaiting another supervisor's confirmation: the admin
knew the password), so a confirmation the dump lacks is never taken as given.

`record-restore` may run after the service reopened (docs/operations.md, restore step 5): an admin may by then have
changed the account again. A kept change is redone only while the database holds no newer change of the same
account and field (`_newer_held`: their chain entries' times); one it holds wins, and `left` lists the kept change
as not redone. A narrowing takes away only what it took away then (`_narrowed`), never gives the account a district
it does not have now; one that would leave it no district (the empty scope is the whole jurisdiction) disables it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.staff_audit import ConsoleAuditEntry
from service.certification.withdrawal_records import RESTORE_ACTOR, KeptWithdrawal, note, reflected
from service.features.console import audit_chain
from service.features.console.auth import ROLE_RANK, end_user_sessions
from service.features.console.models import StaffUser
from service.features.console.review_queue import release_claims_outside
from service.features.console.scope import within
from service.infra.security import mask_text

if TYPE_CHECKING:
    from service.certification.context import ServiceContext

# The chain actions of the account changes kept (routes_auth.py writes them).
KINDS = (
    "user.disable",
    "user.enable",
    "user.role",
    "user.scope",
    "user.password",
    "user.password.self",
    "user.create",
    "user.confirm",
)
# The chain actions that set each kind's field of an account (creating it sets them all): a newer one of these in the
# restored database is a later decision than the kept change (`_newer_held`).
_SAME_FIELD = {
    "user.disable": ("user.disable", "user.enable"),
    "user.enable": ("user.disable", "user.enable"),
    "user.role": ("user.role",),
    "user.scope": ("user.scope",),
    "user.password": ("user.password", "user.password.self"),
    "user.password.self": ("user.password", "user.password.self"),
    "user.create": ("user.create",),
    # A confirmation settles the newest grant: a newer grant awaits a confirmation of its own.
    "user.confirm": ("user.confirm", "user.password", "user.role"),
}
# Why `left` lists a kept change (the CLI's `account_changes_left[].why`).
GRANT, NEWER, EMPTIED, MISSING = "grant", "newer_change", "scope_emptied", "account_missing"
USERS_PAGE = "the console's users page (/console/users)"


def note_change(db: Session, kind: str, user: StaffUser, value: dict[str, Any] | None = None) -> dict[str, str]:
    """Record account change `kind` of `user` (as it now stands: `value` adds what redoing it needs) in the media
    store once `db` commits; the detail its chain entry adds (the event id)."""
    value = dict(value or {})
    if kind in ("user.password", "user.password.self"):
        value |= {"hash": user.password_hash, "must_change": user.must_change_password}
    granter = db.get(StaffUser, user.granted_by) if kind == "user.password" and user.granted_by is not None else None
    if granter is not None:  # the admin's reset awaits another supervisor's confirmation: redone so (`_password`)
        value |= {"granted_by": granter.username, "granted_by_id": granter.id}
    event = note(db, kind, target_of(user.username), user.username, value=json.dumps(value, sort_keys=True))
    return {"event": event}


def target_of(username: str) -> str:
    """The chain entry's target for an account, as audit_chain.record stores it."""
    return mask_text(username)[:64]


def redo(db: Session, ctx: ServiceContext, w: KeptWithdrawal, /) -> bool:
    """Account change `w`, kept, done again after a restore when it took rights away, the account still has them
    and the database holds no newer change of that field; audited as the change was, with `w.detail()`. False: a
    grant (never redone: `left` lists it), the account not in the restored database, a newer change held (listed
    too), or nothing to take away."""
    user = db.scalar(select(StaffUser).where(StaffUser.username == w.ref))
    change = _RESTRICTING.get(w.kind)
    if user is None or change is None or _newer_held(db, w):
        return False
    detail = change(db, user, _value(w))
    if detail is None:
        return False
    audit_chain.record(db, RESTORE_ACTOR, w.kind, user.username, detail | w.detail())
    return True


def left(db: Session, kept: list[KeptWithdrawal]) -> list[tuple[KeptWithdrawal, str]]:
    """The kept account changes (after `redo` ran) an admin must look at, each with why: a grant the restored
    database does not reflect (GRANT: never redone on its own), a change not redone because the database holds a
    newer one of that account and field (NEWER: the admin's later decision stands), while the account is not as the
    change left it; and a narrowing that disabled the account, while it stays disabled (EMPTIED)."""
    out = []
    for w in kept:
        if w.kind not in KINDS:
            continue
        user = db.scalar(select(StaffUser).where(StaffUser.username == w.ref))
        if user is None:  # an account created after the dump: an admin creates it again
            if w.kind == "user.create" and not reflected(db, w):
                out.append((w, MISSING))
            continue
        if reflected(db, w):
            if w.kind == "user.scope" and not user.active and _emptied(db, w):
                out.append((w, EMPTIED))
        elif not _as_left(user, w.kind, _value(w)):
            out.append((w, NEWER if _newer_held(db, w) else GRANT))
    return out


def todo(w: KeptWithdrawal, why: str) -> str:
    """What is done by hand, and where, about kept change `w` that `left` lists with `why` (the CLI's
    `account_changes_left[].todo`)."""
    if why == MISSING:
        value = _value(w)
        scope = " ".join(value.get("scope") or []) or "the whole jurisdiction"
        return (
            f"the account is not in the restored database: an admin creates it again on {USERS_PAGE} (role "
            f"{value.get('role', '?')}, scope {scope}) with a new first password, or the operator with "
            "pension-cert console create-user"
        )
    if why == EMPTIED:
        return (
            "the account was disabled (the narrowing left it no district): an admin gives it its scope and enables "
            f"it on {USERS_PAGE}"
        )
    if why == NEWER:
        return f"not redone: the database holds a newer {w.kind} of this account; an admin checks it on {USERS_PAGE}"
    if w.kind == "user.confirm":
        return (
            "not redone (a grant): the account awaits confirmation again; a supervisor other than its granter "
            "confirms it on the alerts page (/console/alerts, 待确认的账号)"
        )
    return f"not redone (a grant): an admin makes it again on {USERS_PAGE} if it still stands"


def _newer_held(db: Session, w: KeptWithdrawal) -> bool:
    """Whether the database holds a change of `w`'s account and field made after `w` by someone deciding anew (an
    admin's, after the service reopened, or its account created anew). A kept change a restore redid is the lost
    history replayed, not a newer decision, whatever its order: a grant followed by a narrowing, both lost, lists
    the grant for an admin (GRANT), not as overtaken by the narrowing's redo (which it was, or not, depending on
    whether the two fell in one second of the kept records' times). Compared to the second, as kept records are
    timed (an account created a moment before its first change is not newer)."""
    entries = db.execute(
        select(ConsoleAuditEntry.at, ConsoleAuditEntry.detail).where(
            ConsoleAuditEntry.action.in_((*_SAME_FIELD[w.kind], "user.create")),
            ConsoleAuditEntry.target == w.target,
        )
    )
    for at, detail in entries:
        detail = detail or {}
        if detail.get("event") == w.event or detail.get("via") == "restore":
            continue
        if at.replace(microsecond=0) > w.when():
            return True
    return False


def _emptied(db: Session, w: KeptWithdrawal) -> bool:
    """Whether redoing scope narrowing `w` disabled its account (its restore entry says so)."""
    details = db.scalars(
        select(ConsoleAuditEntry.detail).where(
            ConsoleAuditEntry.actor == RESTORE_ACTOR,
            ConsoleAuditEntry.action == w.kind,
            ConsoleAuditEntry.target == w.target,
        )
    )
    return any((d or {}).get("event") == w.event and (d or {}).get("disabled") for d in details)


def _value(w: KeptWithdrawal) -> dict[str, Any]:
    raw = json.loads(w.value) if w.value else {}
    return raw if isinstance(raw, dict) else {}


def _inside(prefixes: Sequence[str], outer: Sequence[str]) -> bool:
    """Whether scope `prefixes` sees no one `outer` does not (the empty scope: everyone)."""
    return not outer or (bool(prefixes) and all(within(outer, p) for p in prefixes))


def _lowered(before: object, role: object) -> bool:
    ranks = {str(r): n for r, n in ROLE_RANK.items()}
    return str(role) in ranks and ranks[str(role)] < ranks.get(str(before), 0)


def _disable(db: Session, user: StaffUser, value: dict[str, Any]) -> dict[str, Any] | None:
    if not user.active:
        return None
    user.active = False
    end_user_sessions(db, user.id)
    return {}


def _role(db: Session, user: StaffUser, value: dict[str, Any]) -> dict[str, Any] | None:
    role = value.get("role")
    if not _lowered(value.get("from"), role) or not _lowered(user.role, role):
        return None  # raised (a grant), or the account holds no more than it now
    before, user.role = user.role, str(role)
    end_user_sessions(db, user.id)
    return {"role": str(role), "from": before}


def _scope(db: Session, user: StaffUser, value: dict[str, Any]) -> dict[str, Any] | None:
    new, old, now = list(value.get("to") or []), list(value.get("from") or []), list(user.scope or [])
    if new == old or not _inside(new, old):
        return None  # widened or moved: a grant
    kept = _narrowed(now, old, new)
    if kept == sorted(now):
        return None  # the account sees nothing the change took away
    if not kept:  # nothing of its scope is left, and an empty scope is the whole jurisdiction: disabled instead
        _disable(db, user, value)
        return {"from": now, "to": now, "disabled": True, "released": 0}
    user.scope = kept
    return {"from": now, "to": kept, "released": release_claims_outside(db, user.id, kept)}


def _narrowed(now: Sequence[str], old: Sequence[str], new: Sequence[str]) -> list[str]:
    """Scope `now` less what narrowing `old` -> `new` took away, never more than `now` (the change's `new` whole
    could give a district the account does not have: the review of new surfaces, F2). A prefix of `now` inside
    `new`, or apart from `old`, stays; one overlapping what was taken away is cut to the prefixes of `new` inside it
    (one wider than `old`'s, e.g. the whole jurisdiction, loses the rest too: a restriction, never a grant)."""
    out: set[str] = set()
    for p in now or [""]:  # the empty scope: every region
        apart = bool(old) and not (p and within(old, p)) and not any(q.startswith(p) for q in old)
        if (p and within(new, p)) or apart:
            out.add(p)
        else:
            out.update(q for q in new if q.startswith(p))
    return sorted(out)


def _password(db: Session, user: StaffUser, value: dict[str, Any]) -> dict[str, Any] | None:
    if "hash" not in value or user.password_hash == value["hash"]:
        return None
    user.password_hash, user.must_change_password = str(value["hash"]), bool(value.get("must_change"))
    if value.get("granted_by"):  # the admin's reset: nobody's second person until confirmed again (Part BK)
        granter = db.scalar(select(StaffUser.id).where(StaffUser.username == str(value["granted_by"])))
        # That admin's account lost with the dump: its id as it was still marks the account as awaiting.
        user.granted_by = granter if granter is not None else int(value["granted_by_id"])
    end_user_sessions(db, user.id)
    return {}


def _as_left(user: StaffUser, kind: str, value: dict[str, Any]) -> bool:
    """Whether `user` is as change `kind` left it (nothing for a person to do again); for one that took rights
    away, whether the account holds none of them (a lower role, a scope without what the narrowing took)."""
    if kind in ("user.disable", "user.enable"):
        return user.active == (kind == "user.enable")
    if kind == "user.role":
        role = value.get("role")
        return not _lowered(user.role, role) if _lowered(value.get("from"), role) else str(user.role) == str(role)
    if kind == "user.scope":
        new, old, now = list(value.get("to") or []), list(value.get("from") or []), list(user.scope or [])
        if new != old and _inside(new, old):
            return _narrowed(now, old, new) == sorted(now)
        return now == new
    if kind == "user.create":
        return True  # the account is there (created anew after the restore: that admin's decision stands)
    if kind == "user.confirm":
        return user.granted_by is None
    return user.password_hash == value.get("hash")


_RESTRICTING: dict[str, Callable[[Session, StaffUser, dict[str, Any]], dict[str, Any] | None]] = {
    "user.disable": _disable,
    "user.role": _role,
    "user.scope": _scope,
    "user.password": _password,
    "user.password.self": _password,
}
