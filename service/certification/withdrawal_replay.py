"""Withdrawals later than the dump done again after a database restore (`pension-cert console record-restore`;
docs/security.md, Part BU; the records: withdrawal_records.py).

Every recorded withdrawal whose audit entry the restored database does not hold (it came after the dump) is done
again through the same service function, audited with the same action and event id (`via: restore`): a rerun finds
that entry and skips it, and nothing else is undone. A withdrawal later than the dump is undone by the restore even
if the person consented again after it: that later consent, and the certification that enrolled, are lost with the
dump as well. A staff account's change (the console's account_kept.redo) is also left when the database holds a
newer change of that account (made after the service reopened): the later decision stands. The core's kind is
here; a feature's comes through `FeatureHooks.reapply` (the core never imports a feature).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.models import Beneficiary
from service.certification.template_withdrawal import WITHDRAWN_ACTION, withdraw_template
from service.certification.withdrawal_records import RESTORE_ACTOR, KeptWithdrawal, reflected

if TYPE_CHECKING:
    from service.certification.context import ServiceContext

log = logging.getLogger(__name__)


def reapply_withdrawals(db: Session, ctx: ServiceContext, kept: list[KeptWithdrawal]) -> list[KeptWithdrawal]:
    """Do again, in `db`'s unit of work, each of the recorded withdrawals `kept` (withdrawal_records.read_withdrawals,
    read before anything of the restore is written) that the restored database does not reflect; those done. One
    of a kind no installed feature knows is logged and left (nothing guessed)."""
    handlers = {WITHDRAWN_ACTION: _reapply_template, **ctx.hooks.require_installed().reapply}
    done = []
    for w in kept:
        if reflected(db, w):
            continue
        handler = handlers.get(w.kind)
        if handler is None:
            log.error("withdrawal %s (%s of %s) not redone: no installed feature knows it", w.event, w.kind, w.ref)
        elif handler(db, ctx, w):
            done.append(w)
    db.flush()
    if done:
        log.warning("restore: %d withdrawals later than the dump done again", len(done))
    return done


def _reapply_template(db: Session, ctx: ServiceContext, w: KeptWithdrawal, /) -> bool:
    """The person's template withdrawn again (its consent, and their sessions' not yet accepted, with it)."""
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == w.ref))
    if b is None:  # a record the dump does not hold: nothing of theirs came back
        return False
    done = withdraw_template(db, b, event=w.event)
    audit(db, RESTORE_ACTOR, WITHDRAWN_ACTION, b.external_id, done.detail("restore") | w.detail())
    return True
