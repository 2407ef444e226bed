"""The notice of a revoked certification (service/certification/revocation.py, whichever route revoked it: the
console, the operator API, `pension-cert revoke`): the person must certify again before their recomputed validity
ends, told with the new date (messages.py, `revocation_message`).

Found by the schedule (notify.py, `queue_notices`), so nothing is sent from the revocation's transaction and no
route can forget it: the revocation marks it due (`Certification.notice_state`, revocation.NoticeState), and it stays
due until the schedule settles it, however long the schedule was stopped (`revocations_to_tell`); delivered like a
reminder, in the bureau's daytime and not while a session of the person is under way.

To the person's own account (accounts.py: the reminders' rule): never the account of the revoked session itself
(it was not shown to be the person's), even when it made another accepted certification of the person, a
relative's, or one of the record's previous ID-number holder. A person without an own account (certified only
through relatives, 代认证) is told through the relatives whose binding is in force instead, in a relative's words
(relatives_told.py, docs/security.md Part BL). Once per revocation: settled once (a due notice), and recorded
once, in one run, for the accounts then to tell (the person's own, or each relative's, one per relative); never
recorded again once any is (a revocation from before migration 0018 is looked for a week, while the own account may
change: a later revocation; not told again to the new one).
The ordinary reminders of the person are held back the day its notice is pending or sent (`told_today`): it says
the new date already, and two messages the same day, one "revoked", one "overdue", would read as two matters.

Not told (`TOLD_REASONS`): a revocation for impersonation (冒领 / 他人代替). Whoever reads that person's account may be
the one who collected for them (the family of a pensioner who died), and the bureau's investigation decides how and
when the person or the family hears of it (a letter, a visit); a message would warn them first. The reason is a
required, audited choice of the supervisor or the bureau's system: staff who suspect fraud choose it, and no
separate "do not notify" box can be forgotten. A wrong accept or another reason is told.

Checked again just before sending (`revoked_message`), else cancelled: the person certified again since, died or
left the roster, or the account is no longer their own (another ID number on the record since, a later own
certification from another phone)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from service.certification.current_person import made_for_current_person
from service.certification.models import (
    AuditEntry,
    Beneficiary,
    BeneficiaryStatus,
    Certification,
    CertSession,
    in_force,
)
from service.certification.revocation import ACTION as REVOKED_ACTION
from service.certification.revocation import NoticeState, RevokeReason
from service.features.wechat.accounts import own_account
from service.features.wechat.messages import Message, relative_revocation_message, revocation_message
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.relatives_told import relatives_to_tell

REVOKED = "revoked"  # notice kind; ref "<person id>:cert<certification id>"
TOLD_REASONS = frozenset({RevokeReason.WRONG_ACCEPT.value, RevokeReason.OTHER.value})
PAID = (BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED)


def revocations_to_tell(db: Session, since: dt.datetime) -> list[tuple[str, str]]:
    """(ref, openid) of each revocation whose notice is due, to record now; each due one is settled here, in the
    caller's transaction: QUEUED with an account to tell, else SKIPPED (`_accounts_to_tell`: not a told reason,
    not the present person's, certified since, no account is theirs). Due stays due, whatever the gap since the
    revocation (a schedule stopped for weeks tells it when it resumes). A revocation from before migration 0018
    (no state) is found as it was then, by its audit entry since `since` (naive UTC: the last week), and told
    unless recorded already (for any account: one revocation is told once)."""
    legacy = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == REVOKED_ACTION, AuditEntry.at >= since))
    ids = [d["certification"] for d in legacy if isinstance(d, dict) and isinstance(d.get("certification"), int)]
    found = (Certification.notice_state == NoticeState.DUE) | (
        Certification.id.in_(ids) & Certification.notice_state.is_(None) & (Certification.revoked_at >= since)
    )
    rows = db.execute(
        select(Certification, Beneficiary, CertSession.created_at)
        .join(CertSession, CertSession.id == Certification.session_id)
        .join(Beneficiary, Beneficiary.id == Certification.beneficiary_id)
        .where(found)
        .order_by(Certification.revoked_at, Certification.id)
    ).all()
    out = []
    for cert, b, opened in rows:
        ref, openids = f"{b.id}:cert{cert.id}", _accounts_to_tell(db, cert, b, opened)
        if cert.notice_state is not None and not _settle(db, cert.id, bool(openids)):
            continue  # another scheduler settled it first
        recorded = db.scalar(select(WeChatNotice.id).where(WeChatNotice.kind == REVOKED, WeChatNotice.ref == ref))
        if recorded is None:
            out += [(ref, openid) for openid in openids]
    return out


def _accounts_to_tell(db: Session, cert: Certification, b: Beneficiary, opened: dt.datetime) -> list[str]:
    """The accounts to tell of revoked `cert` (its session opened at `opened`): the person's own, else the relatives'
    whose binding is in force (relatives_told.py); none for a reason not told, a certification of the record's
    previous ID-number holder (it changed nothing of the present person's), the person certified again since or no
    longer paid, or nobody to tell (a person certified only from the phone that made the revoked session)."""
    if cert.revoke_reason not in TOLD_REASONS or cert.revoked_at is None:
        return []
    if not made_for_current_person(b, opened) or _certified_since(db, b.id, cert.revoked_at):
        return []
    own = own_account(db, b.id)
    if own is not None:
        return [own]
    return relatives_to_tell(db, b.id) if b.status in PAID else []


def _settle(db: Session, certification_id: int, told: bool) -> bool:
    """Move a due notice to QUEUED or SKIPPED; False when it was not due any more (settled by another scheduler: the
    row's lock orders two of them, the second finds nothing due)."""
    state = NoticeState.QUEUED if told else NoticeState.SKIPPED
    done: CursorResult[Any] = db.execute(  # type: ignore[assignment]
        update(Certification)
        .where(Certification.id == certification_id, Certification.notice_state == NoticeState.DUE)
        .values(notice_state=state.value)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def told_today(db: Session, day: tuple[dt.datetime, dt.datetime]) -> set[int]:
    """The persons (ids) a notice of a revocation is pending for, or was sent to within `day` (naive UTC: the
    bureau's midnight and the next): their ordinary reminders wait for the next day (notify.queue_notices). One
    query per scan, not one per person due."""
    start, end = day
    refs = db.scalars(
        select(WeChatNotice.ref).where(
            WeChatNotice.kind == REVOKED,
            or_(
                WeChatNotice.status == NoticeStatus.PENDING,
                (WeChatNotice.sent_at >= start) & (WeChatNotice.sent_at < end),
            ),
        )
    )
    return {int(bid) for bid, _, _ in (ref.partition(":cert") for ref in refs) if bid.isdigit()}


def revoked_message(db: Session, ref: str, openid: str, today: dt.date, base: str) -> Message | None:
    """The notice's message, or None when it is no longer true (then it is cancelled, not sent)."""
    bid, _, cert_part = ref.partition(":cert")
    b = db.get(Beneficiary, int(bid)) if bid.isdigit() else None
    cert = db.get(Certification, int(cert_part)) if cert_part.isdigit() else None
    if b is None or cert is None or cert.beneficiary_id != b.id or cert.revoked_at is None:
        return None
    if cert.revoke_reason not in TOLD_REASONS or b.status not in PAID or _certified_since(db, b.id, cert.revoked_at):
        return None
    own = own_account(db, b.id)
    if own == openid:
        return revocation_message(b, cert.certified_on, today, base)
    if own is None and openid in relatives_to_tell(db, b.id):
        return relative_revocation_message(b, today, base)  # their binding still in force, the person still without
    return None


def _certified_since(db: Session, beneficiary_id: int, revoked_at: dt.datetime) -> bool:
    later = select(Certification.id).where(
        Certification.beneficiary_id == beneficiary_id, in_force(), Certification.created_at > revoked_at
    )
    return db.scalar(later.limit(1)) is not None
