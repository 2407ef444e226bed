"""Bindings of operators to elders, persisted; the limits and consent rules come from `proxy_auth`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pipelines.names import same_name
from pipelines.reasons import ReasonCode
from proxy_auth import (
    Binding,
    Consent,
    ConsentMethod,
    ProxyAuthError,
    Relationship,
    carried_over,
    check_new_binding,
    check_relative_slot,
    reusable_consent,
)
from service.certification.audit import audit
from service.certification.catalog import ServiceCode, message_zh
from service.certification.context import ServiceContext
from service.certification.contract import IdentityChange
from service.certification.errors import LockedError, NotFoundError, ServiceError
from service.certification.models import AuditEntry, Beneficiary, BeneficiaryStatus, one_of_hashes, utcnow
from service.features.proxy.errors import ProxyServiceError
from service.features.proxy.models import (
    ENDED_STATUSES,
    BindingStatus,
    ProxyBinding,
    ProxyOperator,
    ProxyOperatorIdentity,
)
from service.features.proxy.operators import actor
from service.features.proxy.policy import proxy_policy
from service.infra.security import normalise_id

PROXY_CONSENT_EXPIRED = "PROXY_CONSENT_EXPIRED"
# A consent asked for (or recorded: a staff approval) for a binding the elder (or staff) already consented to.
PROXY_CONSENT_GIVEN = "PROXY_CONSENT_GIVEN"
# A bind of an elder this account has a live binding of (a retry): the answer names it.
PROXY_ALREADY_BOUND = "PROXY_ALREADY_BOUND"
# Staff (or a worker racing a roster import) accepting a proxy certification opened for the record's previous
# person: its binding was revoked when the roster gave the record another ID number.
PROXY_BINDING_REVOKED = "PROXY_BINDING_REVOKED"
# The elder's consent video for a relative while the elder already has as many relatives as allowed: refused when
# it would be opened, rejected when decided (the relative's answer; staff consents keep PROXY_LIMIT_REACHED).
PROXY_ELDER_SLOTS_FULL = "PROXY_ELDER_SLOTS_FULL"
# A proxy certification whose binding the elder ended meanwhile (withdrew consent): it gives nothing, whoever decides
# it (`holds.why_not_bound`), and counts no failure. A decision's reason: its home is the pipelines' reason codes.
PROXY_BINDING_WITHDRAWN = ReasonCode.PROXY_BINDING_WITHDRAWN
# A proxy certification queued before another of its binding's was flagged (or the binding locked): to staff. Its
# home is the pipelines' reason codes: the core's review rule (service/certification/review.py) reads it too.
PROXY_BINDING_HELD = ReasonCode.PROXY_BINDING_HELD


def as_service_error(exc: ProxyAuthError) -> ServiceError:
    # A binding locked after repeated failures waits for staff review, unlike a citizen's daily limit (same code).
    kind = LockedError if exc.reason is ReasonCode.ATTEMPTS_EXCEEDED else ServiceError
    return kind(exc.reason.value, exc.detail)


def to_rule(row: ProxyBinding, relative: str, elder: str) -> Binding:
    consent = None
    if row.consent_method and row.consent_at:
        consent = Consent(ConsentMethod(row.consent_method), row.consent_at, row.consent_ref or "")
    return Binding(
        relative_id=relative,
        elder_id=elder,
        relationship=Relationship(row.relationship),
        created_at=row.created_at,
        consent=consent,
        ended_at=row.ended_at,
        locked=row.locked,
        failures=row.failures,
        flagged=row.flagged,
        withdrawn=row.status == BindingStatus.WITHDRAWN,
    )


def require_verified(op: ProxyOperator) -> None:
    if op.verified_at is None or op.person_hash is None:
        raise ProxyServiceError("PROXY_OPERATOR_UNVERIFIED", "operator has not passed real-name verification")


def elder_bindings(db: Session, elder_id: int) -> list[ProxyBinding]:
    return list(db.scalars(select(ProxyBinding).where(ProxyBinding.beneficiary_id == elder_id)))


def bind(
    db: Session, ctx: ServiceContext, op: ProxyOperator, elder_name: str, elder_id_number: str, relationship: str
) -> ProxyBinding:
    require_verified(op)
    try:
        rel = Relationship(relationship)
    except ValueError as exc:
        raise ServiceError("PROXY_RELATIONSHIP", f"relationship {relationship!r}") from exc
    elder = _bindable_elder(db, ctx, op, elder_name, elder_id_number)
    accounts = person_accounts(db, op)
    theirs = elder_bindings(db, elder.id)
    live = next((b for b in theirs if b.operator_id == op.id and b.ended_at is None), None)
    if live is not None:
        # A retried bind (the app timed out after the commit) or a second tap: this account's own live binding,
        # named so the app finds it. It was PROXY_LIMIT_REACHED, the code of the binding limits ("绑定数量已达上限").
        raise ProxyServiceError(PROXY_ALREADY_BOUND, "already bound to this elder", {"binding_id": live.id})
    person = op.person_hash or op.id
    # The person's live bindings of this elder from their other accounts (a new phone): the relationship moves to
    # this account, so they end here (`move`) and count in no limit (they are the same relationship).
    moving = [b for b in theirs if b.operator_id in accounts and b.operator_id != op.id and b.ended_at is None]
    try:
        rules = check_limits(db, elder, person, accounts, theirs, account=op.id, leaving_out={b.id for b in moving})
    except ProxyAuthError as exc:
        audit(db, actor(op), "proxy.bind.refused", elder.external_id, {"reason": exc.reason.value})
        db.commit()  # the refusal is on record even though the request fails (nothing else was written)
        raise as_service_error(exc) from exc
    # The pair's record (lock, flag, failures, the elder's withdrawal) is the person's, over all their accounts
    # (the moving bindings' too). The elder's consent is reused only by the account it was given to, never one
    # given by the record's previous person (a binding revoked when the roster changed the record's ID number),
    # nor after a flag on any binding of the person's, nor one given before the elder last ended a binding of theirs.
    kept = carried_over(person, rules + [to_rule(b, person, elder.id_hash) for b in moving])
    given = [to_rule(b, b.operator_id, elder.id_hash) for b in theirs if b.status != BindingStatus.REVOKED]
    reused = None if kept.flagged else reusable_consent(op.id, given, kept.withdrawn_at)
    row = ProxyBinding(
        id=str(uuid.uuid4()),
        operator_id=op.id,
        beneficiary_id=elder.id,
        relationship=rel.value,
        status=BindingStatus.PENDING_CONSENT if reused is None else BindingStatus.ACTIVE,
        failures=kept.failures,
        locked=kept.locked,
        flagged=kept.flagged,
    )
    for old in moving:
        end_binding(db, old, actor(op), "proxy.binding.moved", elder.external_id, {"to": row.id}, BindingStatus.MOVED)
    db.add(row)
    db.flush()
    carried = {"failures": kept.failures, "locked": kept.locked, "flagged": kept.flagged}
    detail = {"binding": row.id, "relationship": rel.value, "status": row.status, "carried": carried}
    audit(db, actor(op), "proxy.bind", elder.external_id, detail)
    if reused is not None:
        _reuse_consent(db, op, row, elder, theirs, reused)
    return row


def _reuse_consent(
    db: Session, op: ProxyOperator, row: ProxyBinding, elder: Beneficiary, theirs: Sequence[ProxyBinding], c: Consent
) -> None:
    """This relative's own earlier binding of the elder was consented (and never flagged): that consent is theirs
    to keep (another relative's is not: the elder agreed to that person, not to everyone). Recorded as what it is:
    the consent's own time, method and reference, and a `proxy.consent` entry for the new binding naming the binding
    it was given to (`reused_from`). Before, the row took the re-bind's time, and no entry recorded a consent for
    the new binding (the auditor's review, F4)."""
    row.consent_method, row.consent_ref, row.consent_at = c.method.value, c.evidence_ref, c.recorded_at
    given = [b for b in theirs if b.operator_id == op.id and b.consent_at == c.recorded_at]
    source = min(given, key=lambda b: b.created_at).id if given else None  # where it was given, not a copy of it
    detail = {"binding": row.id, "method": c.method.value, "ref": c.evidence_ref, "reused_from": source}
    audit(db, actor(op), "proxy.consent", elder.external_id, detail | {"given_at": c.recorded_at.isoformat() + "Z"})


def check_limits(
    db: Session,
    elder: Beneficiary,
    person: str,
    accounts: Sequence[str],
    theirs: Sequence[ProxyBinding],
    account: str | None = None,
    leaving_out: Collection[str] = (),
) -> list[Binding]:
    """`proxy_auth.check_new_binding` over the stored rows, for `person` (behind `accounts`) binding `elder`,
    whose bindings are `theirs`: ProxyAuthError when a limit breaks. `account`: the one account binding ("already
    bound" is then checked for it alone; None: for the person). `leaving_out`: bindings counted in neither list
    (one given back: `identity.restore_for_same_person`; the person's, moving to a new account: `bind`). A
    binding moved to the person's other account is not counted in their history (the one it moved to is). The
    elder's bindings as rules, relatives as persons."""
    persons = persons_of(db, {b.operator_id for b in theirs})
    rules = [to_rule(b, persons[b.operator_id], elder.id_hash) for b in theirs if b.id not in leaving_out]
    query = select(ProxyBinding).where(ProxyBinding.operator_id.in_(accounts))
    mine = [b for b in db.scalars(query) if b.id not in leaving_out and b.status != BindingStatus.MOVED]
    history = [to_rule(b, person, elder_hash(db, b)) for b in mine]
    this_account = [r for b, r in zip(mine, history, strict=True) if b.operator_id == account] if account else None
    check_new_binding(person, elder.id_hash, history, rules, proxy_policy(), this_account)
    return rules


def _bindable_elder(db: Session, ctx: ServiceContext, op: ProxyOperator, name: str, id_number: str) -> Beneficiary:
    """The living elder of this name and number, locked: the elder's row, then the relative's (`person_accounts`),
    so that two concurrent bindings cannot both pass a limit (PostgreSQL row locks; SQLite serialises writers
    anyway), in the lock order of service/certification/lock_order.py."""
    number_hashes = ctx.keyring.id_hashes(normalise_id(id_number))  # under any signing key in use
    elder = db.scalar(select(Beneficiary).where(one_of_hashes(Beneficiary.id_hash, number_hashes)).with_for_update())
    # Name and number must both match the roster: nobody binds a stranger by guessing numbers. Nobody certifies
    # for the dead, and whoever typed a name and number must not learn of a death from the answer (the H5 pages
    # and the assistance form answer alike, docs/security.md Part F). One answer for all three; the real reason
    # in the audit for staff (an account trying names and numbers against the roster is on record).
    if elder is None:
        reason = "unknown"
    elif not same_name(elder.name, name):
        reason = "name_mismatch"
    elif elder.status == BeneficiaryStatus.DECEASED:
        reason = "deceased"
    else:
        return elder
    audit(db, actor(op), "proxy.bind.refused", elder.external_id if elder else "-", {"reason": reason})
    db.commit()  # the refusal is on record even though the request fails (nothing else was written)
    raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "no beneficiary with this name and ID number")


def person_accounts(db: Session, op: ProxyOperator) -> list[str]:
    """The ids of every account of the verified person behind `op` (their WeChat, their phone numbers: one
    `ProxyOperator` per channel identity, each verified with the same ID number), locked in id order.

    A relative is a person: the binding limits, the elder's slots and the pair's record (flag, lock, failures)
    count over all their accounts, or a second phone number would give five more bindings, a second slot and a
    binding free of the flag their first account carries (the elder's consent stays with the account it was
    given to). Locked together, in one order, so that two accounts binding at once cannot both pass a limit."""
    who = ProxyOperatorIdentity
    same = select(who.operator_id).where(who.person_hash == op.person_hash)
    query = select(ProxyOperator.id).where(or_(ProxyOperator.id == op.id, ProxyOperator.id.in_(same)))
    return list(db.scalars(query.order_by(ProxyOperator.id).with_for_update()))


def persons_of(db: Session, operator_ids: set[str]) -> dict[str, str]:
    """Operator id → the verified person behind it (their keyed ID hash; the operator id for an account never
    verified): the relative the rules of `proxy_auth` count."""
    who = ProxyOperatorIdentity
    rows = db.execute(select(who.operator_id, who.person_hash).where(who.operator_id.in_(operator_ids)))
    known = {operator: person for operator, person in rows if person}
    return {operator: known.get(operator, operator) for operator in operator_ids}


def elder_hash(db: Session, b: ProxyBinding) -> str:
    elder = db.get(Beneficiary, b.beneficiary_id)
    return elder.id_hash if elder else str(b.beneficiary_id)


def own_binding(db: Session, op: ProxyOperator, binding_id: str, for_update: bool = False) -> ProxyBinding:
    """The caller's binding; another relative's id answers exactly like an unknown id.

    ``for_update``: the binding locked after the elder's and the operator's rows (FOR KEY SHARE: what the rows a
    request then inserts, a session naming them, take anyway), in the lock order of
    service/certification/lock_order.py. Taken after the binding, they deadlocked with a worker accepting a
    certification of the elder (the elder, the operator, then the binding)."""
    row = db.get(ProxyBinding, binding_id)
    if row is None or row.operator_id != op.id:
        raise NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    if for_update:  # a binding's elder and operator never change: read unlocked above, they are the ones to lock
        # FOR KEY SHARE (read + key_share): their other columns may still be updated meanwhile.
        elder = select(Beneficiary.id).where(Beneficiary.id == row.beneficiary_id)
        db.execute(elder.with_for_update(read=True, key_share=True))
        operator = select(ProxyOperator.id).where(ProxyOperator.id == row.operator_id)
        db.execute(operator.with_for_update(read=True, key_share=True))
        db.refresh(row, with_for_update=True)
    return row


def unbind(db: Session, op: ProxyOperator, binding_id: str) -> ProxyBinding:
    row = own_binding(db, op, binding_id, for_update=True)
    if row.status in ENDED_STATUSES:
        # Ended already (a second tap, or expired, revoked): not bound, as every route answers for an ended binding.
        raise NotFoundError("binding", code=ReasonCode.PROXY_NOT_BOUND.value)
    elder = db.get(Beneficiary, row.beneficiary_id)
    target = elder.external_id if elder else "-"
    if row.locked:
        # A lock waits for staff: unbinding (and binding again) must not be the relative's way around it.
        audit(db, actor(op), "proxy.unbind.refused", target, {"binding": row.id, "reason": "PROXY_BINDING_LOCKED"})
        db.commit()  # the refusal is on record even though the request fails (nothing else was written)
        raise ProxyServiceError("PROXY_BINDING_LOCKED", "binding locked pending staff review; staff unlock it first")
    end_binding(db, row, actor(op), "proxy.unbind", target)
    return row


def end_binding(
    db: Session,
    row: ProxyBinding,
    who: str,
    action: str,
    target: str,
    detail: Mapping[str, object] | None = None,
    status: BindingStatus = BindingStatus.ENDED,
) -> None:
    """The one way a binding ends (unbound, the elder's record given another ID number, expired unconsented, ended
    by the elder, moved to the person's other account): kept with its record (failures, lock, flag: a later
    binding of the pair carries them over), audited."""
    row.status, row.ended_at = status, utcnow()
    audit(db, who, action, target, {"binding": row.id, **(detail or {})})


def end_for_identity_change(db: Session, change: IdentityChange, /) -> None:
    """An `IdentityChangedHook`: the record now names another person, so no relative of the old one may
    certify for them: every live binding of the record is revoked (a locked one too: its lock stays on it and
    carries over if the relative binds the record again; its consent never does). The relative sees it revoked
    in their list (no message channel exists for bindings).

    The record's bindings that had already ended (unbound, expired) are the old person's too: they become
    `revoked` as well (their end date kept), so that no rule takes their relative for the new person's: the
    kinship rule (`relatives.py`) and the reuse of a relative's own earlier consent (`bind`) skip revoked ones."""
    rows = db.scalars(
        select(ProxyBinding)
        .where(ProxyBinding.beneficiary_id == change.beneficiary_id, ProxyBinding.status != BindingStatus.REVOKED)
        # In a fixed order, after the record's row (updated by the import): service/certification/lock_order.py.
        .order_by(ProxyBinding.created_at, ProxyBinding.id)
        .with_for_update()
    ).all()
    # Whom the bindings were made for, as their views go on showing them (`shown_elder`): the record's number and
    # (unless it too changed) name are now the new person's.
    person = {"masked": change.masked_before, "name_kept": not change.name_changed}
    for row in rows:
        detail = {"reason": "roster.identity_changed", "import": change.import_id, "was": row.status, **person}
        if row.status in ENDED_STATUSES:
            row.status = BindingStatus.REVOKED
            audit(db, change.actor, "proxy.binding.revoked", change.external_id, {"binding": row.id, **detail})
            continue
        end_binding(db, row, change.actor, "proxy.binding.revoked", change.external_id, detail, BindingStatus.REVOKED)


# What the relative reads of a binding's status (the family page, from the binding's view: the page holds no copy).
# An ended one says why and that binding again is the way back (no unbind: nothing is bound).
STATUS_ZH: dict[BindingStatus, str] = {
    BindingStatus.PENDING_CONSENT: "待家人本人确认",
    BindingStatus.ACTIVE: "已绑定",
    BindingStatus.ENDED: "已解绑",
    BindingStatus.EXPIRED: message_zh(PROXY_CONSENT_EXPIRED),
    BindingStatus.REVOKED: "老人档案信息已变更,原绑定已失效,如需代办请重新绑定",
    # The elder ended it, not the relative: binding again needs the elder's own consent again.
    BindingStatus.WITHDRAWN: "老人本人已解除您的代办绑定,如需代办请重新绑定,并经老人本人同意",
    BindingStatus.MOVED: "您已用另一个账号绑定这位老人,请在新账号中办理",
}


def status_zh(status: str) -> str:
    return STATUS_ZH[BindingStatus(status)]


def accepted(row: ProxyBinding) -> bool:
    """Whether the elder or staff accepted `row` and it is in force: the relative may learn the elder's roster status
    (a death) through it, on the proxy API (`elder_deceased`) and the H5 pages (`roster_told`). Not a pending binding
    (only typed), nor an ended one: whoever unbound, was refused by the elder or moved on is told nothing more."""
    return row.status == BindingStatus.ACTIVE


def shown_elder(db: Session, row: ProxyBinding) -> tuple[str | None, str | None, bool]:
    """(name, masked ID number, deceased) of the elder as a binding's view shows them. A revoked binding's record
    now names another person (the roster gave it another ID number): its view shows the person it was made for,
    as the revocation recorded them (their masked number; their name only where the change kept it, else ''),
    never the new person's name, number or death. Before that record existed (older revocations): ''."""
    elder = db.get(Beneficiary, row.beneficiary_id)
    if elder is None:
        return None, None, False
    if row.status != BindingStatus.REVOKED:
        return elder.name, elder.id_masked, elder.status == BeneficiaryStatus.DECEASED
    entries = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "proxy.binding.revoked", AuditEntry.target == elder.external_id)
        .order_by(AuditEntry.id.desc())
    )
    entry = next((e.detail for e in entries if e.detail.get("binding") == row.id), {})
    return (elder.name if entry.get("name_kept") else ""), str(entry.get("masked", "")), False


def consent_window() -> dt.timedelta:
    """How long a binding waits for the elder's consent (``ProxyPolicy.pending_consent_days``)."""
    return dt.timedelta(days=proxy_policy().pending_consent_days)


def consent_expired(row: ProxyBinding, now: dt.datetime | None = None) -> bool:
    """Expired, or still waiting for consent past the window (the daily upkeep has not ended it yet)."""
    if row.status == BindingStatus.EXPIRED:
        return True
    return row.status == BindingStatus.PENDING_CONSENT and row.created_at + consent_window() <= (now or utcnow())


def expire_pending(ctx: ServiceContext, at: dt.datetime, /) -> dict[str, int]:
    """An `UpkeepHook`: every binding still waiting for the elder's consent past the window expires, so a
    stranger who knew the elder's name and number leaves no binding behind; its relative sees it expired and may
    bind again (it counts in their lifetime history like any binding)."""
    cutoff = at - consent_window()
    with ctx.db() as db:
        rows = db.scalars(
            select(ProxyBinding)
            .where(ProxyBinding.status == BindingStatus.PENDING_CONSENT, ProxyBinding.created_at <= cutoff)
            .order_by(ProxyBinding.created_at)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            expire(db, row, "system")
    return {"proxy_bindings_expired": len(rows)}


def expire(db: Session, row: ProxyBinding, who: str) -> None:
    elder = db.get(Beneficiary, row.beneficiary_id)
    target = elder.external_id if elder else "-"
    detail = {"created_at": row.created_at.isoformat()}
    end_binding(db, row, who, "proxy.binding.expired", target, detail, BindingStatus.EXPIRED)


def record_consent(db: Session, row: ProxyBinding, method: ConsentMethod, ref: str, who: str) -> str | None:
    """Record the elder's consent to this binding's relative; None when recorded, else the refusal's code
    (nothing recorded, the refusal audited): PROXY_CONSENT_EXPIRED past the consent window (a binding still
    pending then expires now), PROXY_NOT_BOUND for an ended binding, PROXY_CONSENT_GIVEN when a consent is recorded
    already (a retried or second staff approval rewrote it, even the elder's own video's link), PROXY_LIMIT_REACHED
    when the elder has meanwhile consented to as many other relatives as allowed (a pending binding holds no slot)."""
    elder = db.get(Beneficiary, row.beneficiary_id)
    target = elder.external_id if elder else "-"
    refusal = _consent_refusal(db, row, who)
    if refusal is None and elder_slots_full(db, row):
        refusal = ReasonCode.PROXY_LIMIT_REACHED.value
    if refusal is not None:
        audit(db, who, "proxy.consent.refused", target, {"binding": row.id, "reason": refusal})
        return refusal
    row.consent_method, row.consent_ref, row.consent_at = method.value, ref[:64], utcnow()
    if row.status == BindingStatus.PENDING_CONSENT:
        row.status = BindingStatus.ACTIVE
    audit(
        db,
        who,
        "proxy.consent",
        target,
        {"binding": row.id, "method": method.value, "ref": ref[:64]},
    )
    return None


def elder_slots_full(db: Session, row: ProxyBinding) -> bool:
    """The elder has consented to as many other relatives (persons, not accounts) as allowed: a consent to this
    binding's relative cannot be recorded now (`proxy_auth.check_relative_slot`). Read under the elder's row lock
    where it decides (a consent recorded: `record_consent`; a consent video's decision: `holds.hold`)."""
    others = db.scalars(select(ProxyBinding).where(ProxyBinding.beneficiary_id == row.beneficiary_id)).all()
    persons = persons_of(db, {b.operator_id for b in others})  # a relative is a person, not an account
    rules = [to_rule(b, persons[b.operator_id], str(b.beneficiary_id)) for b in others]
    try:
        check_relative_slot(persons[row.operator_id], rules, proxy_policy())
    except ProxyAuthError:
        return True
    return False


def _consent_refusal(db: Session, row: ProxyBinding, who: str) -> str | None:
    if consent_expired(row):
        if row.status == BindingStatus.PENDING_CONSENT:
            expire(db, row, who)  # what the daily upkeep would do tonight
        return PROXY_CONSENT_EXPIRED
    if row.status in ENDED_STATUSES:
        # Unbound, or revoked by a roster change, while the consent video waited for its decision.
        return ReasonCode.PROXY_NOT_BOUND.value
    if row.consent_at is not None:
        return PROXY_CONSENT_GIVEN
    return None


def staff_binding(db: Session, binding_id: str) -> ProxyBinding:
    """The binding staff consent to, locked after its elder's row (the lock order of
    service/certification/lock_order.py): consents to one elder's relatives are serialised on the elder, as a
    worker's or a reviewer's accept of a consent video is (both hold the elder's row), so two given at once cannot
    both pass the relative slots. A binding ended otherwise than by expiry answers as an unknown one."""
    row = db.get(ProxyBinding, binding_id)
    if row is None:
        raise NotFoundError("binding")
    db.execute(select(Beneficiary.id).where(Beneficiary.id == row.beneficiary_id).with_for_update())
    db.refresh(row, with_for_update=True)
    if row.status in ENDED_STATUSES - {BindingStatus.EXPIRED}:
        raise NotFoundError("binding")
    return row


def unlock(db: Session, row: ProxyBinding, who: str, note: str) -> None:
    """Staff lift a lock; the flag stays (it is part of the binding's record)."""
    row.locked, row.failures = False, 0
    elder = db.get(Beneficiary, row.beneficiary_id)
    audit(
        db, who, "proxy.binding.unlocked", elder.external_id if elder else "-", {"binding": row.id, "note": note[:200]}
    )
