"""The bindings of a relative who is themselves a pensioner recorded as deceased end (the daily upkeep).

A relative is a verified person (`ProxyOperatorIdentity.person_hash`, the keyed hash of their ID number, one hash
per person in every table, a rotation included: `pension-cert rekey` moves a person's rows together). When that
person is recorded deceased here (a supervisor's registration, a roster row: service/certification/deaths.py), the
elder consented to them, not to whoever keeps their phone: a survivor on the late husband's WeChat (docs/security.md
Part CR) is not the relative the elder chose. Before, the binding stayed `active` until the elder (我的信息) or staff
ended it, holding one of the elder's relative slots (`proxy_auth.check_relative_slot`: a daughter's consent was
refused PROXY_LIMIT_REACHED) and letting the account certify for the elder. Now the daily upkeep ends each live
binding of such a person (`ended`, audited `proxy.binding.relative_deceased`), as the relatives' side of
`retention.erase_templates_of_the_deceased` erases their template (own_template.py). A death withdrawn as recorded
by mistake does not bring a binding back: the person binds again, as after an unbinding. The bindings of an elder
recorded deceased are left: nobody certifies for the dead (service/certification/sessions.create_session,
hooks.on_accept), and an accepted binding is how the relative learns of the death (`bindings.accepted`); a
withdrawn death leaves them working again.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, BeneficiaryStatus
from service.features.proxy.bindings import end_binding
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperatorIdentity

ACTION = "proxy.binding.relative_deceased"
LIVE = (BindingStatus.ACTIVE, BindingStatus.PENDING_CONSENT)


def end_bindings_of_the_deceased(ctx: ServiceContext, at: dt.datetime, /) -> dict[str, int]:
    """An `UpkeepHook`: end every live binding (consented or waiting) whose relative is a person recorded deceased;
    each audited with the elder as target. Locked in the order the expiry takes bindings, a binding another
    transaction holds skipped (tomorrow's run ends it)."""
    with ctx.db() as db:
        dead = select(Beneficiary.id_hash).where(Beneficiary.status == BeneficiaryStatus.DECEASED)
        theirs = select(ProxyOperatorIdentity.operator_id).where(ProxyOperatorIdentity.person_hash.in_(dead))
        rows = db.scalars(
            select(ProxyBinding)
            .where(ProxyBinding.operator_id.in_(theirs), ProxyBinding.status.in_(LIVE))
            .order_by(ProxyBinding.created_at, ProxyBinding.id)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            elder = db.get(Beneficiary, row.beneficiary_id)
            target = elder.external_id if elder is not None else "-"
            end_binding(db, row, "system", ACTION, target, {"reason": "relative_deceased", "was": row.status})
    return {"proxy_bindings_of_the_deceased": len(rows)}
