"""Staff account changes a database restore must not take back (docs/security.md, Part on the auditor's review;
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
person's decision (Part BK), so `left` lists it for an admin to make again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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
KINDS = ("user.disable", "user.enable", "user.role", "user.scope", "user.password", "user.password.self")


def note_change(db: Session, kind: str, user: StaffUser, value: dict[str, Any] | None = None) -> dict[str, str]:
    """Record account change `kind` of `user` (as it now stands: `value` adds what redoing it needs) in the media
    store once `db` commits; the detail its chain entry adds (the event id)."""
    value = dict(value or {})
    if kind in ("user.password", "user.password.self"):
        value |= {"hash": user.password_hash, "must_change": user.must_change_password}
    event = note(db, kind, target_of(user.username), user.username, value=json.dumps(value, sort_keys=True))
    return {"event": event}


def target_of(username: str) -> str:
    """The chain entry's target for an account, as audit_chain.record stores it."""
    return mask_text(username)[:64]


def redo(db: Session, ctx: ServiceContext, w: KeptWithdrawal, /) -> bool:
    """Account change `w`, kept, done again after a restore when it took rights away and the account still has
    them; audited as the change was, with `w.detail()`. False: a grant (never redone: `left` lists it), the
    account not in the restored database, or nothing to take away."""
    user = db.scalar(select(StaffUser).where(StaffUser.username == w.ref))
    change = _RESTRICTING.get(w.kind)
    if user is None or change is None:
        return False
    detail = change(db, user, _value(w))
    if detail is None:
        return False
    audit_chain.record(db, RESTORE_ACTOR, w.kind, user.username, detail | w.detail())
    return True


def left(db: Session, kept: list[KeptWithdrawal]) -> list[KeptWithdrawal]:
    """The kept account changes (after `redo` ran) that the restored database does not reflect and whose account
    is not as they left it: the grants, for an admin to decide on and make again (none is redone on its own)."""
    out = []
    for w in kept:
        if w.kind not in KINDS or reflected(db, w):
            continue
        user = db.scalar(select(StaffUser).where(StaffUser.username == w.ref))
        if user is not None and not _as_left(user, w.kind, _value(w)):
            out.append(w)
    return out


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
    if new == old or not _inside(new, old) or _inside(now, new):
        return None  # widened or moved (a grant), or the account sees no more than it now
    user.scope = new
    return {"from": now, "to": new, "released": release_claims_outside(db, user.id, new)}


def _password(db: Session, user: StaffUser, value: dict[str, Any]) -> dict[str, Any] | None:
    if "hash" not in value or user.password_hash == value["hash"]:
        return None
    user.password_hash, user.must_change_password = str(value["hash"]), bool(value.get("must_change"))
    end_user_sessions(db, user.id)
    return {}


def _as_left(user: StaffUser, kind: str, value: dict[str, Any]) -> bool:
    """Whether `user` is as change `kind` left it (nothing for a person to do again)."""
    if kind in ("user.disable", "user.enable"):
        return user.active == (kind == "user.enable")
    if kind == "user.role":
        return str(user.role) == str(value.get("role"))
    if kind == "user.scope":
        return list(user.scope or []) == list(value.get("to") or [])
    return user.password_hash == value.get("hash")


_RESTRICTING: dict[str, Callable[[Session, StaffUser, dict[str, Any]], dict[str, Any] | None]] = {
    "user.disable": _disable,
    "user.role": _role,
    "user.scope": _scope,
    "user.password": _password,
    "user.password.self": _password,
}
