"""Whether a WeChat user of the H5 pages may read a person's roster status (a recorded death): the one home of the
rule that the assistance form (requests.py) and "继续认证" (recovery.py) follow (docs/security.md Parts F, BP).

Told: the person's own account, i.e. one a self certification of the person the record names now was accepted
from (their face matched), none of this account's certifications of the person since revoked (the account was
not shown to be theirs: as accounts.py); or a relative whose binding to the person the elder or staff accepted
(an active binding of this account's family login: `bindings.accepted`, the proxy API's `elder_deceased` too;
the H5 pages' own account of the openid, `operators.h5_account`: a channel key's account for the same openid is its
app's, the openid only what the app said, Part BV).
Not whoever only typed a name and number: to open a self session (anyone may), or to bind (a pending binding), nor
a relative whose binding ended: such a user reads a death as an unknown record.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.current_person import made_for_current_person_sql
from service.certification.models import Beneficiary, CertSession, Channel, SessionDecision
from service.features.proxy import operators
from service.features.proxy.bindings import accepted as accepted  # the rule's one home, read by requests.py too
from service.features.proxy.models import BindingStatus, ProxyBinding
from service.features.wechat.accounts import made_a_revoked_session
from service.features.wechat.models import WeChatSessionLink


def may_read_status(db: Session, ctx: ServiceContext, openid: str, b: Beneficiary) -> bool:
    """Whether `openid` may learn that `b` is recorded deceased (see the module's docstring)."""
    return certified_from(db, openid, b) or _accepted_relative(db, ctx, openid, b)


def certified_from(db: Session, openid: str, b: Beneficiary) -> bool:
    """A self certification of `b`'s current person was accepted from this account, none of its certifications
    of `b` since revoked."""
    found = (
        select(CertSession.id)
        .join(WeChatSessionLink, WeChatSessionLink.session_id == CertSession.id)
        .join(Beneficiary, Beneficiary.id == CertSession.beneficiary_id)
        .where(
            WeChatSessionLink.openid == openid,
            CertSession.beneficiary_id == b.id,
            CertSession.channel == Channel.SELF,
            CertSession.decision == SessionDecision.ACCEPT,
            ~made_a_revoked_session(),
            made_for_current_person_sql(CertSession.created_at),  # not the record's previous person
        )
    )
    return db.scalar(found.limit(1)) is not None


def _accepted_relative(db: Session, ctx: ServiceContext, openid: str, b: Beneficiary) -> bool:
    """This account's family login (the H5 pages' own account, never a channel key's) holds an accepted (active)
    binding to `b`."""
    op = operators.h5_account(db, ctx, openid)
    if op is None:
        return False
    found = select(ProxyBinding.id).where(
        ProxyBinding.operator_id == op.id,
        ProxyBinding.beneficiary_id == b.id,
        ProxyBinding.status == BindingStatus.ACTIVE,  # accepted(), in SQL: one row read, not every binding
    )
    return db.scalar(found.limit(1)) is not None
