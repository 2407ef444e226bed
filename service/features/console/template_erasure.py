"""At the counter (PIPL art. 47): a person without WeChat, or whose WeChat account is not their own (a relative
certifies for them), asks staff to erase their face template. Any staff member who may see the person (the region
scope: one outside it reads as missing) records the request; the erasure itself is the core's
(service/certification/template_withdrawal.py), recorded in the console's audit chain with the staff member and
how the request was made."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.certification.template_withdrawal import WITHDRAWN_ACTION, Withdrawn, withdraw_template
from service.features.console import audit_chain, scope
from service.features.console.auth import Staff

NOTE_MAX = 500


def withdraw_at_counter(db: Session, staff: Staff, bid: int, note: str) -> Withdrawn | None:
    """Erase person `bid`'s template at their request (`note`: how they asked, the card seen), in the unit of work;
    None when `staff` may not see them."""
    b = scope.beneficiary(db, staff, bid)
    if b is None:
        return None
    done = withdraw_template(db, b)
    detail = {**done.detail("console"), "note": note.strip()[:NOTE_MAX]}
    audit_chain.record(db, staff.actor, WITHDRAWN_ACTION, audit_chain.person_target(b), detail)
    return done
