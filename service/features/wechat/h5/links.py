"""Which sessions a WeChat login may link to itself (`POST /h5/api/sessions/{id}/link`): the one home of that rule.

A link makes the session this openid's: its result page and message come here, its failures count against it, and
an accepted self session makes the openid the person's own account (`accounts.own_accounts`, 我的信息). The page
links only what the family page handed it: a session the H5 pages' own relative's account of this login opened
through the proxy API (`operators.h5_account`). Holding a session's token proves nothing more: a channel's (bank
app's) token is known to the device that uploads, a helper's tablet and the integrator, and linking their self
session took over the pensioner's 我的信息. Anything else reads as an unknown id."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.errors import NotFoundError
from service.features.proxy import operators
from service.features.proxy.models import ProxySession
from service.features.wechat.models import WeChatSessionLink


def link_family_session(db: Session, ctx: ServiceContext, session_id: str, token: str | None, openid: str) -> None:
    """Link `session_id` (its token shown) to `openid` when this login's family-page account opened it; 404
    NOT_FOUND, as for an unknown id, for any other session (a channel's, another relative's). Commits."""
    sessions.check_token(sessions.get_session(db, session_id), token, ctx.settings.certification.session_ttl_s)
    opened = db.get(ProxySession, session_id)
    account = operators.h5_account(db, ctx, openid)
    if opened is None or account is None or opened.operator_id != account.id:
        raise NotFoundError("session")
    if db.get(WeChatSessionLink, session_id) is None:
        try:
            db.add(WeChatSessionLink(session_id=session_id, openid=openid))
            db.commit()
        except IntegrityError:  # a double tap: the other request linked it first, which is all this one asked
            db.rollback()
