"""The relatives' bindings when a supervisor finds that a roster change of ID number was a typo corrected.

The change revoked every binding of the record (`bindings.end_for_identity_change`): the relatives of the old
number's person are not a new person's. A same-person finding (service/certification/identity_review.py) gives
each binding that change revoked its status back, consent included (the elder gave it; the person is the same),
unless the binding changed since or giving it back would now break a limit (the relative, or another one, bound
meanwhile): then it stays revoked and its relative binds again as before. Each binding given back is audited.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from proxy_auth import ProxyAuthError
from service.certification.audit import audit
from service.certification.contract import IdentityConfirmed
from service.certification.models import AuditEntry, Beneficiary, BeneficiaryStatus
from service.features.proxy.bindings import check_limits, persons_of
from service.features.proxy.models import (
    ENDED_STATUSES,
    BindingStatus,
    ProxyBinding,
    ProxyOperator,
    ProxyOperatorIdentity,
)

REVOKED_ACTION = "proxy.binding.revoked"


def restore_for_same_person(db: Session, confirmed: IdentityConfirmed, /) -> dict[str, int]:
    """An `IdentityConfirmedHook`: the bindings the confirmed change revoked, given back where they may be. The
    record's row is locked by the core; then every account of the relatives concerned, then the record's
    bindings (service/certification/lock_order.py)."""
    was = _revoked_by(db, confirmed)
    if not was:
        return {"bindings_restored": 0, "bindings_left_revoked": 0}
    operators = set(db.scalars(select(ProxyBinding.operator_id).where(ProxyBinding.id.in_(was))))
    persons = _lock_persons(db, operators)
    rows = db.scalars(
        select(ProxyBinding)
        .where(ProxyBinding.beneficiary_id == confirmed.beneficiary_id)
        .order_by(ProxyBinding.created_at, ProxyBinding.id)
        .with_for_update()
    ).all()
    restored = left = 0
    for row in rows:
        if row.id not in was:
            continue
        if row.status == BindingStatus.REVOKED and _may_return(db, row, was[row.id], rows, persons):
            _give_back(db, row, was[row.id], confirmed)
            restored += 1
        else:
            left += 1
    return {"bindings_restored": restored, "bindings_left_revoked": left}


def _revoked_by(db: Session, confirmed: IdentityConfirmed) -> dict[str, str]:
    """Binding id → its status before the confirmed change revoked it (from the change's audit entries)."""
    entries = db.scalars(
        select(AuditEntry).where(AuditEntry.action == REVOKED_ACTION, AuditEntry.target == confirmed.external_id)
    )
    return {
        str(e.detail["binding"]): str(e.detail.get("was", ""))
        for e in entries
        if e.detail.get("reason") == "roster.identity_changed" and e.detail.get("import") == confirmed.import_id
    }


def _lock_persons(db: Session, operators: set[str]) -> dict[str, str]:
    """Lock every account of the persons behind `operators` (their other phone numbers too) in one id order, as
    `bindings.person_accounts` does for one person; each such account's person (`bindings.persons_of`)."""
    who = ProxyOperatorIdentity
    hashes = select(who.person_hash).where(who.operator_id.in_(operators), who.person_hash.is_not(None))
    accounts = operators | set(db.scalars(select(who.operator_id).where(who.person_hash.in_(hashes))))
    query = select(ProxyOperator.id).where(ProxyOperator.id.in_(accounts)).order_by(ProxyOperator.id)
    db.scalars(query.with_for_update()).all()
    return persons_of(db, accounts)


def _may_return(
    db: Session, row: ProxyBinding, before: str, record_rows: Sequence[ProxyBinding], persons: dict[str, str]
) -> bool:
    """An ended binding always may (it only counts in history); a live one if the elder is alive (nobody binds
    to the dead: `bindings._bindable_elder`) and no limit breaks now."""
    if before in ENDED_STATUSES:
        return True
    elder = db.get(Beneficiary, row.beneficiary_id)
    if elder is None or elder.status == BeneficiaryStatus.DECEASED:
        return False
    person = persons.get(row.operator_id, row.operator_id)
    accounts = [op for op, p in persons.items() if p == person]
    try:
        # As a new binding of the pair would be checked, "already bound" for any of the person's accounts.
        check_limits(db, elder, person, accounts, record_rows, leaving_out={row.id})
    except ProxyAuthError:
        return False
    return True


def _give_back(db: Session, row: ProxyBinding, before: str, confirmed: IdentityConfirmed) -> None:
    row.status = before
    if before not in ENDED_STATUSES:
        row.ended_at = None
    detail = {"binding": row.id, "status": before, "import": confirmed.import_id}
    audit(db, confirmed.actor, "proxy.binding.restored", confirmed.external_id, detail)
