"""Who is told of a revoked certification of a person who has no WeChat account of their own, and what they read
(docs/security.md, Part BL; the notice itself: revoked.py, its words: messages.relative_revocation_message).

A person certified only through relatives (代认证) has no own account (accounts.py: a relative's proxy session is
never the person's), so the notice of a revocation reached nobody and the next daily run suspended the pension
without a word. It now goes to each relative whose binding to the person is in force: active, and no live binding of
that relative to the person (a relative is one person over their accounts: bindings.person_accounts, holds._held)
locked (a relative whose proxy certification was revoked: Part AB) or flagged (they filmed themselves); once per
relative, at the account that opened their latest proxy session from the H5 pages (the relative's own: the H5 pages
log the relative in with it). Never to a relative who opened a session of the person whose certification was
revoked (by the proxy session's operator, at any of their accounts, whether or not the session was linked to their
WeChat and whatever their binding's state), nor to an account that opened one, as for the person's own account.
Never for 冒领 (revoked.TOLD_REASONS: the family may be whoever collected), nor for any revocation of a person one
of whose certifications was revoked as 冒领: the bureau's investigation decides what the family hears. The person's
own account, when there is one, is told instead, and no relative besides.

The relative reads the person's name (they typed it to bind) and the date to certify by (their own certification's
result said it): not the payment's state (suspended or not), not the reason, not when or by whom the revoked
certification was made (another relative, the counter, the person themselves).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from service.certification.models import Certification, CertSession, in_force
from service.certification.revocation import revoked_as_impersonation
from service.features.proxy.bindings import persons_of
from service.features.proxy.models import (
    ENDED_STATUSES,
    BindingStatus,
    ProxyBinding,
    ProxyOperator,
    ProxySession,
)
from service.features.wechat.models import WeChatSessionLink


def relatives_to_tell(db: Session, beneficiary_id: int) -> list[str]:
    """The accounts (openids) of the relatives to tell of a revocation of person `beneficiary_id`'s certification,
    one per relative whose binding is in force (see the module's docstring), in a stable order."""
    if revoked_as_impersonation(db, beneficiary_id):
        return []
    told = _bindings_in_force(db, beneficiary_id)
    if not told:
        return []
    rows = db.execute(
        select(ProxyBinding.operator_id, WeChatSessionLink.openid)
        .join(ProxyOperator, ProxyOperator.id == ProxyBinding.operator_id)
        .join(ProxySession, ProxySession.operator_id == ProxyBinding.operator_id)
        .join(WeChatSessionLink, WeChatSessionLink.session_id == ProxySession.session_id)
        .where(
            ProxyBinding.id.in_(told),
            ProxyOperator.channel == "wechat",
            WeChatSessionLink.openid.not_in(_revoked_makers(beneficiary_id)),
        )
        .order_by(WeChatSessionLink.created_at, WeChatSessionLink.session_id)
    ).all()
    persons = persons_of(db, {operator for operator, _ in rows})
    latest = {persons[operator]: openid for operator, openid in rows}  # each relative's latest session
    return sorted(set(latest.values()))


def kept_from_revocation(db: Session, beneficiary_id: int, openids: Collection[str]) -> set[str]:
    """Those of the accounts `openids` that a revocation of person `beneficiary_id`'s certification is not for, by
    the notice's own rule (the module's docstring): an account that opened a revoked session of the person, and
    every account of a relative (the operators whose sessions were opened from it, over all their accounts) who
    opened one or whose live binding to the person is locked or flagged. The requests these accounts filed are not
    given back to staff when the certification that answered them is revoked (console/assist.py,
    `reopen_on_revocation`): before, a son whose proxy video was revoked as 错误受理 (his binding locked, told
    nothing) found his own request 正在办理 again, and it kept the elder from the daily run's suspension."""
    asked = set(openids)
    if not asked:
        return set()
    kept = set(db.scalars(_revoked_makers(beneficiary_id).where(WeChatSessionLink.openid.in_(asked))))
    barred = _relatives(db, beneficiary_id)[2]
    if barred:
        rows = db.execute(
            select(ProxySession.operator_id, WeChatSessionLink.openid)
            .join(WeChatSessionLink, WeChatSessionLink.session_id == ProxySession.session_id)
            .where(WeChatSessionLink.openid.in_(asked))
            .distinct()
        ).all()
        persons = persons_of(db, {operator for operator, _ in rows})
        kept |= {openid for operator, openid in rows if persons[operator] in barred}
    return kept


def _revoked_makers(beneficiary_id: int) -> Select[str]:
    """The accounts that opened a session of the person whose certification was revoked."""
    return (
        select(WeChatSessionLink.openid)
        .join(CertSession, CertSession.id == WeChatSessionLink.session_id)
        .join(Certification, Certification.session_id == CertSession.id)
        .where(CertSession.beneficiary_id == beneficiary_id, ~in_force())
    )


def _relatives(db: Session, beneficiary_id: int) -> tuple[Sequence[ProxyBinding], dict[str, str], set[str]]:
    """The person's live bindings, the relative behind each operator named (their verified person, over all their
    accounts), and the relatives barred: those who opened a revoked session of the person or have a live binding
    to them locked or flagged."""
    live = db.scalars(
        select(ProxyBinding).where(
            ProxyBinding.beneficiary_id == beneficiary_id, ProxyBinding.status.not_in(ENDED_STATUSES)
        )
    ).all()
    makers = set(
        db.scalars(
            select(ProxySession.operator_id)
            .join(Certification, Certification.session_id == ProxySession.session_id)
            .where(Certification.beneficiary_id == beneficiary_id, ~in_force())
        )
    )
    persons = persons_of(db, makers | {b.operator_id for b in live})
    barred = {persons[op] for op in makers} | {persons[b.operator_id] for b in live if b.locked or b.flagged}
    return live, persons, barred


def _bindings_in_force(db: Session, beneficiary_id: int) -> list[str]:
    """The ids of the person's active bindings whose relative is not barred (`_relatives`)."""
    live, persons, barred = _relatives(db, beneficiary_id)
    return [b.id for b in live if b.status == BindingStatus.ACTIVE and persons[b.operator_id] not in barred]
