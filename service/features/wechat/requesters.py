"""The WeChat feature's record of who asked for a session: the account the session is linked to (the daily
failure limits count against it, service/certification/attempts.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.attempts import wechat_requester
from service.certification.context import ServiceContext
from service.features.wechat.models import WeChatSessionLink


def account_requesters(db: Session, ctx: ServiceContext, session_ids: Sequence[str], /) -> dict[str, str]:
    """``wechat:<mac8>`` for each of these sessions linked to a WeChat account (a `RequesterSource`)."""
    query = select(WeChatSessionLink.session_id, WeChatSessionLink.openid).where(
        WeChatSessionLink.session_id.in_(session_ids)
    )
    return {sid: wechat_requester(ctx, openid) for sid, openid in db.execute(query)}
