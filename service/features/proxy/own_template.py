"""A relative withdraws the consent to keep their own face template (ticked on the family page at their real-name
verification: "同意保存我的人脸特征,用于以后代办时快速核验"), from WeChat's "我的信息" page (PIPL art. 15, 47).

The template of every account of the verified person goes (their WeChat, their phone numbers: one consent, one
person), and the consent of their verification sessions not yet accepted with it, an account's not verified yet
too when its session claims the person's ID number (an accept then stores none: `processing._apply`). A
template is only ever stored by the verification that verifies an account, so none comes back; the operator-face
check of their proxy certifications then has no enrolled face of theirs to compare with.
Locks (service/certification/lock_order.py): the sessions by id, then the accounts by id, then their identities."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, BeneficiaryStatus, CertSession, one_of_hashes
from service.certification.template_withdrawal import Withdrawn, withdraw_session_consent
from service.certification.withdrawal_records import RESTORE_ACTOR, KeptWithdrawal, note
from service.features.proxy.claim_retention import ERASED
from service.features.proxy.models import CLAIM_FIELD, ProxyClaim, ProxyOperator, ProxyOperatorIdentity, ProxySession

WITHDRAWN_ACTION = "proxy.operator.template.withdrawn"


def person_operator_ids(db: Session, ctx: ServiceContext, op: ProxyOperator) -> list[str]:
    """`op` and the other accounts of the verified person behind it, by id: those verified as the same person, and
    those not verified yet (as anyone else) whose verification session in flight claims the person's number."""
    if not op.person_hash:
        return [op.id]
    hashes = _person_hashes(db, ctx, op.person_hash)
    same = select(ProxyOperatorIdentity.operator_id).where(one_of_hashes(ProxyOperatorIdentity.person_hash, hashes))
    verified = select(ProxyOperatorIdentity.operator_id).where(ProxyOperatorIdentity.person_hash.is_not(None))
    claiming = (
        select(ProxyClaim.operator_id)
        .join(CertSession, CertSession.id == ProxyClaim.session_id)
        .where(
            one_of_hashes(ProxyClaim.id_hash, hashes),
            CertSession.decision.is_(None),
            ProxyClaim.operator_id.not_in(verified),
        )
    )
    where = or_(ProxyOperator.id == op.id, ProxyOperator.id.in_(same), ProxyOperator.id.in_(claiming))
    return list(db.scalars(select(ProxyOperator.id).where(where).order_by(ProxyOperator.id)))


def _person_hashes(db: Session, ctx: ServiceContext, person_hash: str) -> tuple[str, ...]:
    """The person's ID number's hash under every signing key in use (a rotation may be under way), from a claim
    that carries `person_hash`; only `person_hash` when none is kept."""
    sealed = db.scalar(
        select(ProxyClaim.id_enc).where(ProxyClaim.id_hash == person_hash, ProxyClaim.id_enc != ERASED).limit(1)
    )  # an emptied claim (claim_retention.py) opens to nothing
    if sealed is None:
        return (person_hash,)
    return tuple(dict.fromkeys((person_hash, *ctx.keyring.id_hashes(ctx.keyring.decrypt_field(sealed, CLAIM_FIELD)))))


def consent_pending(db: Session, op: ProxyOperator) -> bool:
    sessions = select(ProxySession.session_id).where(ProxySession.operator_id == op.id)
    query = select(CertSession.id).where(
        CertSession.id.in_(sessions), CertSession.template_consent.is_(True), CertSession.decision.is_(None)
    )
    return db.scalar(query.limit(1)) is not None


def withdraw_operator_template(db: Session, ctx: ServiceContext, op: ProxyOperator, event: str = "") -> Withdrawn:
    """Erase the face template of `op`'s person, in the caller's unit of work (it audits, with `detail`, and
    commits). Recorded in the media store once committed, so that a restore from an older dump does it again
    (withdrawal_records.py); `event`: a restore doing a recorded one again."""
    event = note(db, WITHDRAWN_ACTION, op.id, op.id, event)
    ids = person_operator_ids(db, ctx, op)
    sessions = select(ProxySession.session_id).where(ProxySession.operator_id.in_(ids))
    withdrawn = withdraw_session_consent(db, CertSession.id.in_(sessions))
    db.execute(select(ProxyOperator.id).where(ProxyOperator.id.in_(ids)).order_by(ProxyOperator.id).with_for_update())
    identities = db.scalars(
        select(ProxyOperatorIdentity)
        .where(ProxyOperatorIdentity.operator_id.in_(ids))
        .order_by(ProxyOperatorIdentity.operator_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    cleared = any(who.template is not None for who in identities)
    for who in identities:
        who.template, who.template_model, who.template_consent = None, None, False
    return Withdrawn(template_cleared=cleared, sessions=withdrawn, event=event)


def reapply_withdrawal(db: Session, ctx: ServiceContext, w: KeptWithdrawal, /) -> bool:
    """A `ReapplyHook`: a relative's withdrawal later than the dump, done again after a restore (every account of
    the person, as the withdrawal does); False when the restored database has no such account."""
    op = db.get(ProxyOperator, w.ref)
    if op is None:
        return False
    done = withdraw_operator_template(db, ctx, op, event=w.event)
    audit(db, RESTORE_ACTOR, WITHDRAWN_ACTION, op.id, done.detail("restore") | w.detail())
    return True


def erase_templates_of_the_deceased(ctx: ServiceContext, at: dt.datetime, /) -> dict[str, int]:
    """An `UpkeepHook`, the relatives' side of `retention.erase_templates_of_the_deceased`: the face template kept
    on the identity of a relative who is themselves a pensioner recorded as deceased (a husband and wife who each
    certified for the other) is erased like the beneficiary's, matched by the keyed hash of the ID number: nobody
    will certify as them, or for anyone as them, again (docs/security.md, Part H). Each account audited."""
    with ctx.db() as db:
        ids = _identities_of_the_deceased(db)
        if not ids:
            return {"proxy_templates_erased": 0}
        # The accounts by id, then their identities (lock_order.py), as a withdrawal takes them.
        db.execute(
            select(ProxyOperator.id).where(ProxyOperator.id.in_(ids)).order_by(ProxyOperator.id).with_for_update()
        )
        identities = db.scalars(
            select(ProxyOperatorIdentity)
            .where(ProxyOperatorIdentity.operator_id.in_(ids), ProxyOperatorIdentity.template.is_not(None))
            .order_by(ProxyOperatorIdentity.operator_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for who in identities:
            who.template, who.template_model, who.template_consent = None, None, False
            audit(db, "system", "retention.template", who.operator_id, {"reason": "deceased", "relative": True})
    return {"proxy_templates_erased": len(identities)}


def _identities_of_the_deceased(db: Session) -> list[str]:
    """The accounts whose identity keeps a template and is a deceased beneficiary's. One hash per person in every
    table, a rotation included (`sessions._stored_hash`; `pension-cert rekey` moves a person's rows together):
    the hashes compare as stored."""
    dead = select(Beneficiary.id_hash).where(Beneficiary.status == BeneficiaryStatus.DECEASED)
    query = select(ProxyOperatorIdentity.operator_id).where(
        ProxyOperatorIdentity.template.is_not(None), ProxyOperatorIdentity.person_hash.in_(dead)
    )
    return list(db.scalars(query))
