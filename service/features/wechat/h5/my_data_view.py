"""What the "我的信息" page shows a person about themselves (PIPL art. 44–45), in plain Chinese: their name and ID
number masked, the validity, whether a face template is kept and since when, their last certifications, the
relatives who may certify for them and how long media are kept.

Whose data: the person whose own WeChat account this is to the service (service/features/wechat/accounts.py: the
account of their latest accepted self-certification from these pages, not a relative's proxy session, nor a revoked
one, nor one made before the roster changed the record's ID number). That is whoever last certified the person with
the self flow from this account: possibly a relative who filmed them on the relative's own phone; the service cannot
tell. Typing a name and a number, or certifying for the elder as a bound relative (proxy sessions), does not make an
account the person's own. When the account is known to be a relative's (`elder_bindings.relation_of`: bound to the
elder, or verified as someone else not recorded deceased), the page is read-only for the elder's data: no
withdrawal, no binding ended (请本人或到柜台办理), no certificate copy unless the account is a household's
(`certificate_served`). An elder without an own account withdraws at the counter (the console's person page).

Each relative is named by their verified name, masked (王*红): the elder must tell a daughter from a son, both
"子女", bound the same week, to end the right one, and see a stranger who declared "子女" for what they are. Who may
act for the elder is the elder's own data (PIPL art. 44); a read-only page (a relative's account) shows the
relationship only, as before: one relative does not learn the others' names from it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.certificates import mask_name
from service.certification.context import ServiceContext
from service.certification.current_person import made_for_current_person_sql
from service.certification.models import Beneficiary, Certification, CertSession, Channel, SessionDecision
from service.certification.template_withdrawal import pending_consent
from service.features.console.labels import RELATIONSHIP_ZH
from service.features.proxy.elder_bindings import AccountRelation, elder_bindings_listed
from service.features.proxy.models import BindingStatus, ProxyOperator, ProxySession
from service.features.wechat.accounts import own_account, own_accounts
from service.features.wechat.models import WeChatSessionLink
from service.infra.clock import local_date

CERTS_SHOWN = 5


@dataclass(frozen=True)
class CertLine:
    certified_on: dt.date
    valid_until: dt.date
    how: str
    in_force: bool


@dataclass(frozen=True)
class BindingLine:
    id: str
    relationship: str
    since: dt.date
    consented: bool
    relative: str  # the relative's verified name, masked; "" on a read-only page


@dataclass(frozen=True)
class MyData:
    person_id: int
    external_id: str
    name: str
    id_masked: str
    valid_until: dt.date | None
    template_kept: bool
    template_since: dt.date | None
    consent_pending: bool
    certs: list[CertLine]
    bindings: list[BindingLine]
    read_only: bool  # the account is known to be a relative's: shown, not changed from here
    certificate: bool  # the person's certificate copy is served to this account (`certificate_served`)


def own_persons(db: Session, openid: str) -> list[Beneficiary]:
    """The people whose own account `openid` is now (one, or none; a shared phone may be two people's)."""
    out: list[Beneficiary] = []
    for _, b in db.execute(own_accounts().where(WeChatSessionLink.openid == openid)).all():
        if b not in out and own_account(db, b.id) == openid:
            out.append(b)
    return out


def own_person(db: Session, openid: str, person_id: int) -> Beneficiary | None:
    return next((b for b in own_persons(db, openid) if b.id == person_id), None)


def household(db: Session, openid: str, relation: AccountRelation) -> bool:
    """`openid`, the person's own account, is a household's shared by pensioners: everyone else verified on it (a
    relative's real-name check, `AccountRelation.others`) is a pensioner whose own account it is too (a couple on
    one phone, both certifying themselves from it, one of them once a relative on the family page)."""
    others = relation.others
    return bool(others) and all(p is not None and own_account(db, p.id) == openid for p in others)


def certificate_served(db: Session, openid: str, relation: AccountRelation) -> bool:
    """Whether the person's certificate copy goes to `openid`, their own account (`relation`: the account's to the
    person, `elder_bindings.relation_of`): unless it is known to be a relative's (the relative's copy goes through
    their binding); a household's shared account is the person's own still. Its page stays read-only: the service
    cannot tell a spouse on one phone from a retired son who filmed his mother through the self flow on his; the
    copy gives such a son nothing the result message did not already tell him (docs/wechat.md "我的信息")."""
    return not relation.relative or household(db, openid, relation)


def my_data(db: Session, ctx: ServiceContext, b: Beneficiary, read_only: bool, certificate: bool) -> MyData:
    return MyData(
        person_id=b.id,
        external_id=b.external_id,
        name=mask_name(b.name),
        id_masked=b.id_masked,
        valid_until=b.valid_until,
        template_kept=b.template is not None,
        template_since=_template_since(db, ctx, b) if b.template is not None else None,
        consent_pending=pending_consent(db, b.id) > 0,
        certs=_certs(db, ctx, b),
        bindings=_bindings(db, ctx, b, read_only),
        read_only=read_only,
        certificate=certificate,
    )


def _bindings(db: Session, ctx: ServiceContext, b: Beneficiary, read_only: bool) -> list[BindingLine]:
    rows = elder_bindings_listed(db, b.id)
    query = select(ProxyOperator).where(ProxyOperator.id.in_([r.operator_id for r in rows]))
    ops = {op.id: op for op in db.scalars(query)}
    return [
        BindingLine(
            row.id,
            RELATIONSHIP_ZH.get(row.relationship, "亲属"),
            local_date(ctx.settings, row.created_at),
            row.status == BindingStatus.ACTIVE,
            "" if read_only else _relative_name(ops.get(row.operator_id)),
        )
        for row in rows
    ]


def _relative_name(op: ProxyOperator | None) -> str:
    # A binding needs a verified relative (`bindings.require_verified`); a name emptied since reads as nobody's.
    name = op.name if op is not None else None
    return mask_name(name) if name else ""


def _template_since(db: Session, ctx: ServiceContext, b: Beneficiary) -> dt.date | None:
    """The day of the latest accepted certification with consent to keep the template: the one that stored it
    (None: enrolled otherwise, e.g. before these pages kept the consent). Only the record's present person's: a
    consent of the previous ID-number holder's stored no template of theirs (current_person.py)."""
    at = db.scalar(
        select(CertSession.decided_at)
        .join(Beneficiary, Beneficiary.id == CertSession.beneficiary_id)
        .where(
            CertSession.beneficiary_id == b.id,
            CertSession.template_consent.is_(True),
            CertSession.decision == SessionDecision.ACCEPT,
            made_for_current_person_sql(CertSession.created_at),
        )
        .order_by(CertSession.decided_at.desc())
        .limit(1)
    )
    return local_date(ctx.settings, at) if at is not None else None


def _certs(db: Session, ctx: ServiceContext, b: Beneficiary) -> list[CertLine]:
    """The person's latest certifications: the record's present person's only, not those of the person the record
    named before the roster gave it another ID number (current_person.py: theirs, not this person's data)."""
    rows = db.execute(
        select(Certification, CertSession.channel, ProxySession.session_id)
        .join(CertSession, CertSession.id == Certification.session_id)
        .join(Beneficiary, Beneficiary.id == Certification.beneficiary_id)
        .outerjoin(ProxySession, ProxySession.session_id == CertSession.id)
        .where(Certification.beneficiary_id == b.id, made_for_current_person_sql(CertSession.created_at))
        .order_by(Certification.certified_on.desc(), Certification.id.desc())
        .limit(CERTS_SHOWN)
    ).all()
    return [CertLine(c.certified_on, c.valid_until, _how(ch, proxy), c.revoked_at is None) for c, ch, proxy in rows]


def _how(channel: str, proxy: str | None) -> str:
    if proxy is not None:
        return "家人代办"
    return "本人自助认证" if channel == Channel.SELF else "经办机构办理"
