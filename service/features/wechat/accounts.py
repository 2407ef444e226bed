"""Which WeChat account is the person's own: the one home of the rule that the reminders and the notice of a
revoked certification follow (notify.py, revoked.py).

The openid of the person's latest accepted self-certification through the H5 pages: not a relative's proxy or
verification session, nor one whose certification a supervisor revoked, nor any from an account that made a revoked
certification of the person (that account was not shown to be the person's, whatever else it certified:
service/certification/revocation.py; it is neither told of the revocation nor reminded), nor one opened before
the roster gave the record another ID number (that was the previous number's person:
service/certification/current_person.py); and only while the person is paid or suspended (not deceased, not
ended). That is whoever last certified the person with the self flow from that account: possibly a relative who
filmed them on the relative's own phone (the service cannot tell; the "我的信息" page shows such an account, when
known to be a relative's, the person's data read-only: service/features/proxy/elder_bindings.py `relation_of`)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from service.certification.current_person import made_for_current_person_sql
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    Certification,
    CertSession,
    Channel,
    SessionDecision,
    in_force,
)
from service.features.proxy.models import ProxySession
from service.features.wechat.models import WeChatSessionLink


def own_accounts() -> Select[str, Beneficiary]:
    """(openid, person) of every such certification, the latest decided last: the last row of a person is theirs."""
    return (
        select(WeChatSessionLink.openid, Beneficiary)
        .join(CertSession, CertSession.id == WeChatSessionLink.session_id)
        .join(Beneficiary, Beneficiary.id == CertSession.beneficiary_id)
        .outerjoin(ProxySession, ProxySession.session_id == CertSession.id)
        .where(
            CertSession.channel == Channel.SELF,
            CertSession.decision == SessionDecision.ACCEPT,
            ProxySession.session_id.is_(None),
            ~made_a_revoked_session(),  # this session's certification revoked included
            made_for_current_person_sql(CertSession.created_at),
            Beneficiary.status.in_((BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED)),
        )
        .order_by(CertSession.decided_at)
    )


def made_a_revoked_session(
    openid: InstrumentedAttribute[str] = WeChatSessionLink.openid,
) -> ColumnElement[bool]:
    """A condition on a query over session links (or another table's `openid`) joined to their person: the openid
    opened a session of that person whose certification was revoked."""
    link, session = aliased(WeChatSessionLink), aliased(CertSession)
    return exists().where(
        link.openid == openid,
        session.id == link.session_id,
        session.beneficiary_id == Beneficiary.id,
        Certification.session_id == session.id,
        ~in_force(),
    )


def own_account(db: Session, beneficiary_id: int) -> str | None:
    """The openid that is person `beneficiary_id`'s own now, or None."""
    rows = db.execute(own_accounts().where(Beneficiary.id == beneficiary_id)).all()
    return rows[-1][0] if rows else None
