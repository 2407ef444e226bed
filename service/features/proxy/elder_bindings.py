"""The elder's side of a binding (PIPL art. 15: consent may be withdrawn): the relatives who may certify for an elder,
as the elder's own page lists them, and the elder ending one. A relative ends their own with `bindings.unbind`;
both go through `bindings.end_binding`, the one way a binding ends (kept with its record, audited).

The elder's page cannot tell the elder from a relative who certified them through the ordinary self flow on the
relative's own phone (the service sees an account that certified the person, nothing more): `relation_of` names the
accounts known to be a relative's, whose page is read-only (an account verified as a person recorded deceased is not
one: it has passed to a survivor; a household's account shared by pensioners: docs/wechat.md, my_data_view.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.reasons import ReasonCode
from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.errors import NotFoundError
from service.certification.models import Beneficiary, BeneficiaryStatus, one_of_hashes
from service.certification.withdrawal_records import RESTORE_ACTOR, KeptWithdrawal, note
from service.features.proxy.bindings import end_binding
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import ENDED_STATUSES, BindingStatus, ProxyBinding, ProxyClaim, ProxyOperator
from service.features.proxy.operators import actor, channel_hashes

ENDED_BY_ELDER = "proxy.binding.ended_by_elder"
# What the elder's page lists: the bindings that may certify now or will once the elder consents.
LISTED = (BindingStatus.ACTIVE, BindingStatus.PENDING_CONSENT)


def elder_bindings_listed(db: Session, elder_id: int) -> list[ProxyBinding]:
    query = select(ProxyBinding).where(ProxyBinding.beneficiary_id == elder_id, ProxyBinding.status.in_(LISTED))
    return list(db.scalars(query.order_by(ProxyBinding.created_at, ProxyBinding.id)))


@dataclass(frozen=True)
class AccountRelation:
    """What the service knows of an account (channel, channel_id) and an elder, read once for a page: `bound`, a
    relative's account of it (under any signing key in use) has a binding to the elder, whatever its status;
    `others`, the people other than the elder verified on it (their person hash none of the elder's number's under
    the keys in use: a rotation may be under way): each one's roster record, None for one not on the roster (a
    relative who draws no pension here). A person recorded deceased is left out: the account has passed to a
    survivor (a widow keeps her late husband's WeChat, the only one she has), and his check protects nobody."""

    bound: bool
    others: tuple[Beneficiary | None, ...]

    @property
    def relative(self) -> bool:
        """The account is known to be a relative's, not the elder's own: bound to the elder, or verified as another
        living person."""
        return self.bound or bool(self.others)


def relation_of(db: Session, ctx: ServiceContext, channel: str, channel_id: str, elder: Beneficiary) -> AccountRelation:
    """The account's `AccountRelation` to `elder`: its accounts, its binding and the people verified on it, each
    read once (the certificate page asks both whether it is a relative's and whether a household's)."""
    ops = _accounts(db, ctx, channel, channel_id)
    if not ops:
        return AccountRelation(False, ())
    bound = select(ProxyBinding.id).where(
        ProxyBinding.beneficiary_id == elder.id, ProxyBinding.operator_id.in_([op.id for op in ops])
    )
    return AccountRelation(db.scalar(bound.limit(1)) is not None, tuple(_others_verified(db, ctx, ops, elder)))


def _accounts(db: Session, ctx: ServiceContext, channel: str, channel_id: str) -> Sequence[ProxyOperator]:
    hashes = channel_hashes(ctx, channel, channel_id)
    query = select(ProxyOperator).where(
        ProxyOperator.channel == channel, one_of_hashes(ProxyOperator.channel_hash, hashes)
    )
    return db.scalars(query).all()


def _others_verified(
    db: Session, ctx: ServiceContext, ops: Sequence[ProxyOperator], elder: Beneficiary
) -> list[Beneficiary | None]:
    named = _hashes_of_the_verified(db, ops)
    elders = set(ctx.keyring.id_hashes(ctx.keyring.decrypt_field(elder.id_enc, "beneficiary.id_number")))
    others = sorted(person for person, hashes in named.items() if not hashes & elders)
    if not others:
        return []
    wanted = sorted(set().union(*(named[person] for person in others)))
    rows = {b.id_hash: b for b in db.scalars(select(Beneficiary).where(Beneficiary.id_hash.in_(wanted)))}
    found = [next((rows[h] for h in sorted(named[person]) if h in rows), None) for person in others]
    return [b for b in found if b is None or b.status != BeneficiaryStatus.DECEASED]


def _hashes_of_the_verified(db: Session, ops: Sequence[ProxyOperator]) -> dict[str, set[str]]:
    """Each person verified on the accounts (by their identity's hash) and the hashes that may name their roster
    record: the identity's, and that of the claim it was verified from (the operator's latest claim of the same
    masked number, as `pension-cert rekey` reads it). The rekey moves a record's hash and its copies on the claims
    and identities in one transaction, but a verification decided across that move writes the claim's hash read
    before it: until the rekey's rerun his identity held the old key's hash, his record was not found, and a
    deceased husband read as a living relative (his widow's page read-only, her certificate refused)."""
    named: dict[str, set[str]] = {}
    for op in ops:
        if op.person_hash is None:
            continue
        claimed = db.scalar(
            select(ProxyClaim.id_hash)
            .where(ProxyClaim.operator_id == op.id, ProxyClaim.id_masked == op.id_masked)
            .order_by(ProxyClaim.created_at.desc(), ProxyClaim.session_id)
            .limit(1)
        )
        named.setdefault(op.person_hash, {op.person_hash}).update([claimed] if claimed else [])
    return named


def end_by_elder(
    db: Session,
    elder: Beneficiary,
    binding_id: str,
    who: str,
    poster: ProxyOperator | None = None,
    redo: KeptWithdrawal | None = None,
) -> ProxyBinding:
    """End binding `binding_id` of `elder` at the elder's request, in the caller's unit of work. Another elder's
    binding, or one ended already, answers like an unknown one. A binding locked for staff review ends too: the
    lock keeps the relative from going round staff; the elder ending it is what staff would do (its record, lock
    and flag, stays for a later binding of the pair); but not when `poster`, the account asking, is the binding's
    own relative (`bindings.unbind`'s refusal, PROXY_BINDING_LOCKED). Locks: the elder and the operator (FOR KEY
    SHARE), then the binding (service/certification/lock_order.py). Recorded in the media store once committed,
    so that a restore from an older dump ends it again (withdrawal_records.py; `redo`: that restore, doing it)."""
    row = db.get(ProxyBinding, binding_id)
    if row is None or row.beneficiary_id != elder.id:
        raise NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    db.execute(select(Beneficiary.id).where(Beneficiary.id == elder.id).with_for_update(read=True, key_share=True))
    operator = select(ProxyOperator.id).where(ProxyOperator.id == row.operator_id)
    db.execute(operator.with_for_update(read=True, key_share=True))
    db.refresh(row, with_for_update=True)
    if row.status in ENDED_STATUSES:
        raise NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    if row.locked and poster is not None and poster.id == row.operator_id:
        # As `bindings.unbind`: the refusal is on record though the request fails (nothing else was written).
        detail = {"binding": row.id, "reason": "PROXY_BINDING_LOCKED"}
        audit(db, actor(poster), "proxy.unbind.refused", elder.external_id, detail)
        db.commit()
        raise ProxyServiceError("PROXY_BINDING_LOCKED", "binding locked pending staff review; staff unlock it first")
    event = note(db, ENDED_BY_ELDER, elder.external_id, row.id, redo.event if redo else "")
    ended: dict[str, object] = {"relationship": row.relationship, "event": event, **(redo.detail() if redo else {})}
    # WITHDRAWN, not ENDED: the elder's consent is withdrawn (no later binding of the pair reuses it, and a proxy
    # certification in flight gives nothing: `bindings.bind`, `holds.why_not_bound`).
    end_binding(db, row, who, ENDED_BY_ELDER, elder.external_id, ended, BindingStatus.WITHDRAWN)
    return row


def reapply_end(db: Session, ctx: ServiceContext, w: KeptWithdrawal, /) -> bool:
    """A `ReapplyHook`: a binding the elder ended after the dump, ended again after a restore, at its first end's
    time; False when the restored database has no such binding or it has ended already (whatever ended it)."""
    row = db.get(ProxyBinding, w.ref)
    elder = db.get(Beneficiary, row.beneficiary_id) if row is not None else None
    if row is None or elder is None or row.status in ENDED_STATUSES:
        return False
    end_by_elder(db, elder, row.id, RESTORE_ACTOR, redo=w).ended_at = w.when()
    return True
