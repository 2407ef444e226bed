"""解除锁定 from the person's page: a relative's binding locked after repeated failed 代认证 tries (or a revoked
proxy certification, or the relative filming themselves: flagged) is lifted by staff who have looked at the
failures, with a note saying why. Before, only the operator API (`POST /api/v1/proxy/bindings/{id}/unlock`, an
operator key) could lift it, and no reviewer or supervisor could: the binding stayed locked for good, a home visit
left it as it was, and the relative was told to 联系经办机构 whose staff had no control for it.

The lift itself is the proxy feature's (`bindings.unlock`, one home: failures reset, the flag stays on record,
audited `proxy.binding.unlocked`); the console checks the region scope (a person outside it reads as missing), the
note, and the role: any staff member lifts a lock of failures, a flagged binding (the relative filmed themselves
instead of the elder: a possible impostor) only a supervisor. Recorded in the console's audit chain too. Nothing
lifts a lock by itself (a home visit neither): staff decide, with this form."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.certification.errors import NotFoundError, ServiceError
from service.certification.evidence_hold import checked_note
from service.features.console import audit_chain, scope
from service.features.console.auth import Role, Staff
from service.features.proxy import bindings
from service.features.proxy.models import ENDED_STATUSES, ProxyBinding
from service.infra.security import mask_text

ACTION = "proxy.binding.unlocked"  # the records' trail's action (bindings.unlock) on the console's chain too
NOTE_REFUSED = "PROXY_UNLOCK_NOTE"
FLAGGED_REFUSED = "PROXY_UNLOCK_FLAGGED"


def may_unlock(staff: Staff, row: ProxyBinding) -> bool:
    """Whether `staff` may lift `row`'s lock: a flagged binding needs a supervisor."""
    return staff.has(Role.SUPERVISOR) or not row.flagged


def unlock_offer(staff: Staff, row: ProxyBinding) -> str:
    """What the person's page offers on `row`'s line: "form" (解除锁定), "supervisor" (a flagged binding, to a
    reviewer: 须由主管解除), "" (not locked, or ended: nothing to lift)."""
    if not row.locked or row.status in ENDED_STATUSES:
        return ""
    return "form" if may_unlock(staff, row) else "supervisor"


def unlock_from_console(db: Session, staff: Staff, bid: int, binding_id: str, note: str) -> ProxyBinding | None:
    """Lift the lock of binding `binding_id` of person `bid`, in the unit of work: the binding; None when the person
    is not one `staff` may see. A binding not locked (lifted meanwhile in another window) is left as it is. Raises
    PROXY_UNLOCK_NOTE (no note, or too long), PROXY_NOT_BOUND (not a live binding of the person's),
    PROXY_UNLOCK_FLAGGED (a flagged binding, and `staff` no supervisor). The binding's row alone is locked
    (service/certification/lock_order.py: staff unlock the binding alone)."""
    b = scope.beneficiary(db, staff, bid)
    if b is None:
        return None
    text = mask_text(checked_note(note, NOTE_REFUSED))
    row = db.get(ProxyBinding, binding_id, with_for_update=True)
    if row is None or row.beneficiary_id != b.id or row.status in ENDED_STATUSES:
        raise NotFoundError("binding", code="PROXY_NOT_BOUND")
    if not may_unlock(staff, row):
        raise ServiceError(FLAGGED_REFUSED, "a flagged binding is unlocked by a supervisor")
    if not row.locked:
        return row
    failures = row.failures
    bindings.unlock(db, row, staff.actor, text)
    detail = {"binding": row.id, "failures": failures, "flagged": row.flagged, "note": text}
    audit_chain.record(db, staff.actor, ACTION, audit_chain.person_target(b), detail)
    return row
