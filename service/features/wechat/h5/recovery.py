"""Recovery without starting over: a failed or timed-out certification continues with a new session for the
same person, carrying the card photo over when the card was not the problem, so the citizen goes straight
back to the video step (no name, number, consent and card again).

The new session is an ordinary one (`sessions.create_session`: the daily limit and the deceased check apply);
the card is stored through `sessions.upload`, the same checks as a fresh photo.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from fastapi import APIRouter, Request
from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from service.adapters.http.deps import DB, Ctx
from service.certification import attempts, sessions
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, utcnow
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
FINISHED_FAILED = ("reject", "retry")


def attempts_left(db: Session, ctx: ServiceContext, beneficiary_id: int, openid: str | None = None) -> int:
    """Failed certifications this WeChat user may still have today (the limit of `sessions.create_session`)."""
    requester = attempts.wechat_requester(ctx, openid) if openid else None
    return attempts.attempts_left(db, ctx, beneficiary_id, requester)


def can_continue(s: CertSession) -> bool:
    """A session that will not decide anything more: failed, expired, or open past its time."""
    if s.state == SessionState.DECIDED:
        return s.decision in FINISHED_FAILED
    if s.state in (SessionState.FAILED, SessionState.EXPIRED):
        return True
    now = utcnow()
    return s.state == SessionState.OPEN and (now > s.expires_at or now > s.nonce_expires_at)


def is_family(db: Session, session_id: str) -> bool:
    """A session of the family pages (verification, consent or proxy certification)."""
    from service.features.proxy.models import ProxySession

    return db.get(ProxySession, session_id) is not None


def card_reusable(s: CertSession) -> bool:
    # A card reason (ID_*) means the photo itself was the problem: that one is taken again.
    return s.id_card_key is not None and not any(r.startswith("ID_") for r in s.reasons or [])


def _copy_card(db: Session, ctx: ServiceContext, old: CertSession, new: CertSession) -> bool:
    assert old.id_card_key is not None
    try:
        data = ctx.storage.get(old.id_card_key)
        with Image.open(io.BytesIO(data)) as img:
            ctype = Image.MIME.get(img.format or "", "")
    except (OSError, UnidentifiedImageError, KeyError):
        log.info("h5 again: card of %s no longer readable, asking for a new photo", old.id[:8])
        return False  # e.g. removed by retention: the citizen takes it again
    sessions.upload(db, ctx, new, "id_card", data, ctype, f"again-{old.id}", None)
    return True


@router.post("/api/sessions/{session_id}/again")
def continue_session(ctx: Ctx, db: DB, request: Request, session_id: str) -> dict[str, Any]:
    """A new session after `session_id` failed or timed out; only for the WeChat user the session belongs to
    (the cookie, not the old session's token, which may have expired: that is the timeout case)."""
    openid = identity.openid_from(ctx, request)
    if openid is None:
        raise ServiceError("UNAUTHORIZED", "open the page from the WeChat menu", status=401)
    link = db.get(WeChatSessionLink, session_id)
    old = db.get(CertSession, session_id)
    if link is None or old is None or link.openid != openid:
        raise ServiceError("NOT_FOUND", "no such session for this user", status=404)
    if old.channel != Channel.SELF or is_family(db, old.id):
        # Family sessions (the relative's own verification is a self session too) start from the family page:
        # the relative's binding and verification decide who may be certified, not this endpoint.
        raise ServiceError("SESSION_STATE", "family sessions restart from the family page", status=409)
    if not can_continue(old):
        raise ServiceError("SESSION_STATE", f"session is {old.state}", status=409)
    b = db.get(Beneficiary, old.beneficiary_id)
    if b is None:
        raise ServiceError("NOT_FOUND", "beneficiary gone", status=404)
    new = start_self_session(db, ctx, b, openid, old.template_consent)
    kept = card_reusable(old) and _copy_card(db, ctx, old, new.session)
    db.commit()
    return {**session_answer(db, ctx, new, openid), "card_kept": kept}


def start_self_session(
    db: Session, ctx: ServiceContext, b: Beneficiary, openid: str, template_consent: bool
) -> sessions.NewSession:
    """A self session opened from these pages, linked to the WeChat account (its result page and message go
    there); the caller commits."""
    new = sessions.create_session(db, ctx, b, Channel.SELF, template_consent, attempts.wechat_requester(ctx, openid))
    db.add(WeChatSessionLink(session_id=new.session.id, openid=openid))
    return new


def session_answer(db: Session, ctx: ServiceContext, new: sessions.NewSession, openid: str) -> dict[str, Any]:
    """What the page needs to go on: the session, its token and challenge, and this account's tries left."""
    s = new.session
    return {
        "session_id": s.id,
        "token": new.token,
        "challenge": {"actions": s.actions, "nonce": s.nonce, "expires_at": s.nonce_expires_at.isoformat() + "Z"},
        "attempts_left": attempts_left(db, ctx, s.beneficiary_id, openid),
    }
