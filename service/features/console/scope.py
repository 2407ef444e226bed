"""Region scopes: which pensioners a member of staff may see and act on (least privilege, PIPL).

A staff account holds a list of GB/T 2260 division-code prefixes (``StaffUser.scope``: "4201" = 武汉市,
"420106" = 武昌区); an empty list is the whole jurisdiction. A person is in scope when their region (the
roster's ``Beneficiary.region``; for a relative's verification session, which has no beneficiary, the claimed
person's ``ProxyClaim.region``) starts with one of the prefixes. A region that is unknown ('') is in no scope.

This module is the one home of the rule: `in_scope` for one record, `region_filter` for queries, `visible` for
a record addressed directly (out of scope reads as "does not exist"; a scoped attempt is noted alike whether the
record exists or not), the lookups `case`, `beneficiary`, `request` and `alert`, `covers` for an admin granting a
scope, and `record_denials`, which writes the noted attempts to the audit chain (``scope.denied``) once the
request's unit of work has ended, in a unit of its own: the request's unit is usually rolled back when the record
"is not found".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, false, func, or_, select, true
from sqlalchemy.orm import Session

from service.certification import regions
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession
from service.features.console import audit_chain, look_alikes
from service.features.console.auth import Staff
from service.features.console.models import AssistRequest, ConsoleAlert, StaffUser
from service.features.proxy.models import ProxyClaim, subject_of
from service.infra.security import mask_number_reads

# The levels of a division code: province, city, district, township, village.
PREFIX_LENGTHS = (2, 4, 6, 9, 12)
MAX_PREFIXES = 20
DENIED = "scope.denied"
_DENIALS = "console.scope_denials"  # Session.info key: the attempts noted during one unit of work
_SEPARATORS = re.compile(r"[\s,，、;；]+")
Ts = TypeVarTuple("Ts")


class ScopeError(Exception):
    """A scope an admin typed that is not a list of division codes; ``message`` is what the page shows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_scope(text: str) -> list[str]:
    """The prefixes of a typed scope ("4201, 420106" or one a line), checked, without repeats, sorted. Empty text:
    the whole jurisdiction. Each prefix must be a 2, 4, 6, 9 or 12-digit code that regions.region_name knows."""
    codes = sorted({c for c in _SEPARATORS.split(text.strip()) if c})
    if len(codes) > MAX_PREFIXES:
        raise ScopeError(f"地区范围最多 {MAX_PREFIXES} 个行政区划代码")
    for code in codes:
        if not (code.isascii() and code.isdigit() and len(code) in PREFIX_LENGTHS):
            raise ScopeError(f"地区范围无效：“{code[:20]}”不是 2、4、6、9 或 12 位数字的行政区划代码")
        if regions.region_name(code) is None:
            raise ScopeError(f"地区范围无效：“{code}”不是已知的行政区划代码")
    return codes


def describe(prefixes: Sequence[str]) -> str:
    """A scope in words, for the pages: "全辖区" or the names joined by "、"."""
    return "、".join(regions.label(p) for p in prefixes) if prefixes else "全辖区"


def in_scope(staff: Staff, region: str | None) -> bool:
    return within(staff.scope, region)


def within(prefixes: Sequence[str], region: str | None) -> bool:
    """The rule itself: a region lies in a scope when it starts with one of its prefixes; every region lies in the
    empty scope (the whole jurisdiction), and an unknown one ('' or None) in no other."""
    if not prefixes:
        return True
    return bool(region) and any((region or "").startswith(p) for p in prefixes)


def region_filter(staff: Staff | None, region: ColumnElement[Any] | Any) -> ColumnElement[bool]:
    """The SQL condition "`region` is in this staff member's scope" (true for an unscoped one, or None: an
    internal caller acting for nobody). `region`: ``Beneficiary.region``, ``ProxyClaim.region`` or `SESSION_REGION`."""
    if staff is None or not staff.scope:
        return true()
    return or_(false(), *(region.startswith(p) for p in staff.scope))


# The region of a session's person in a query joined by `join_session_people`: the beneficiary's, else (a
# relative's verification session) the claimed identity's, else ''.
SESSION_REGION = func.coalesce(Beneficiary.region, ProxyClaim.region, "")


def join_session_people(q: Select[*Ts]) -> Select[*Ts]:
    """`q` (over ``CertSession``) joined to whom each session is about, for `SESSION_REGION`."""
    return q.outerjoin(Beneficiary, Beneficiary.id == CertSession.beneficiary_id).outerjoin(
        ProxyClaim, ProxyClaim.session_id == CertSession.id
    )


def session_region(db: Session, s: CertSession) -> str:
    """The region of the person a session is about ('' when unknown)."""
    subject = subject_of(db, s)
    return subject.region if subject is not None else ""


def covers(staff: Staff, prefixes: Sequence[str]) -> bool:
    """Whether an account scoped to `prefixes` sees no one `staff` may not see: an admin manages only accounts
    inside their own scope and grants no more than they have (an unscoped account is covered by unscoped staff
    only)."""
    if not staff.scope:
        return True
    return bool(prefixes) and all(in_scope(staff, p) for p in prefixes)


def audit_actors(db: Session, staff: Staff) -> list[str] | None:
    """Whose entries the audit viewer lists for `staff`: None (everyone's) for unscoped staff; for a scoped
    supervisor, the staff accounts their scope covers, themselves included (a district's supervisor oversees the
    district's staff; another district's entries name its sessions and records, and its reviewers' reasons)."""
    if not staff.scope:
        return None
    accounts = db.execute(select(StaffUser.username, StaffUser.scope)).all()
    return [f"staff:{name}" for name, prefixes in accounts if covers(staff, prefixes or [])] + [staff.actor]


def visible(db: Session, staff: Staff, region: str | None, kind: str, asked: str) -> bool:
    """Whether `staff` may see a record addressed directly; `region`: the record's, None when no such record
    exists; `asked`: what the staff member gave (the id in the URL, a typed external id, "id_number"). When not,
    a scoped staff member's attempt is noted for `record_denials`, alike for a missing record and a hidden one,
    naming what was asked, never what was found: supervisors read the audit log, scoped or not, and it must not
    tell them whether the record exists. The caller answers exactly as for a record that does not exist."""
    if region is not None and in_scope(staff, region):
        return True
    if staff.scope:
        # Masked as card reads are: a number typed as an external id may be most of an ID number.
        db.info.setdefault(_DENIALS, []).append((staff.actor, kind, mask_number_reads(asked)[:64]))
    return False


def beneficiary(db: Session, staff: Staff, bid: int) -> Beneficiary | None:
    """The beneficiary `bid` if it exists and is in scope; None otherwise (the same answer for both)."""
    b = db.get(Beneficiary, bid)
    return b if visible(db, staff, b.region if b is not None else None, "beneficiary", str(bid)) else None


def case(db: Session, staff: Staff, session_id: str) -> CertSession | None:
    """The certification session `session_id` if it exists and its person is in scope; None otherwise."""
    s = db.get(CertSession, session_id)
    return s if visible(db, staff, session_region(db, s) if s is not None else None, "case", session_id) else None


def request(db: Session, staff: Staff, rid: int, for_update: bool = False) -> tuple[AssistRequest, Beneficiary] | None:
    """The citizen's request `rid` and its person if it exists and the person is in scope; None otherwise."""
    req = db.get(AssistRequest, rid, with_for_update=for_update)
    b = db.get(Beneficiary, req.beneficiary_id) if req is not None else None
    region = b.region if req is not None and b is not None else None
    if not visible(db, staff, region, "request", str(rid)) or req is None or b is None:
        return None
    return req, b


def alert(db: Session, staff: Staff, alert_id: int) -> ConsoleAlert | None:
    """The alert `alert_id` if it exists and every person it names (a look-alike names two) is in scope."""
    a = db.get(ConsoleAlert, alert_id)
    region: str | None = None
    if a is not None:
        ids = [i for i in (a.beneficiary_id, look_alikes.other_id(a)) if i is not None]
        named = list(db.scalars(select(Beneficiary.region).where(Beneficiary.id.in_(ids)))) or [""]  # nobody: none
        # One region standing for all: the first one out of scope ("" when none named), else the first.
        region = next((r for r in named if not in_scope(staff, r)), named[0])
    return a if visible(db, staff, region, "alert", str(alert_id)) else None


def alerts_in_scope(
    staff: Staff, rows: Sequence[tuple[ConsoleAlert, Beneficiary]], others: dict[int, Beneficiary]
) -> list[tuple[ConsoleAlert, Beneficiary]]:
    """The alerts page's rows (already filtered by the first person's region) whose second person, for a
    look-alike, is in scope too: a pair across two districts is for staff who see both."""
    kept = []
    for a, b in rows:
        other = others.get(look_alikes.other_id(a) or -1)
        if other is None or in_scope(staff, other.region):
            kept.append((a, b))
    return kept


def record_denials(ctx: ServiceContext, db: Session) -> None:
    """Write the attempts noted on `db` (a finished unit of work, committed or rolled back) to the audit chain."""
    denials: list[tuple[str, str, str]] = db.info.pop(_DENIALS, [])
    if not denials:
        return
    with ctx.db() as audit_db:
        for actor, kind, target in denials:
            audit_chain.record(audit_db, actor, DENIED, target, {"kind": kind})
