"""The proxy feature's record of who asked for a session: the family-page operator who opened it (the daily
failure limits count against them, service/certification/attempts.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.features.proxy.models import ProxySession


def operator_requesters(db: Session, _ctx: ServiceContext, session_ids: Sequence[str], /) -> dict[str, str]:
    """``operator:<id>`` for each of these sessions a proxy operator opened (a `RequesterSource`)."""
    query = select(ProxySession.session_id, ProxySession.operator_id).where(ProxySession.session_id.in_(session_ids))
    return {sid: f"operator:{op}" for sid, op in db.execute(query)}
