"""Recovery without starting over: a failed or timed-out certification continues with a new session for the
same person, carrying the card photo over when the card was not the problem, so the citizen goes straight
back to the video step (no name, number, consent and card again).

The new session is an ordinary one (`sessions.create_session`: the daily limit and the deceased check apply);
the card is stored through `sessions.upload`, the same checks as a fresh photo. Sessions of the family pages
(the relative's own verification, the elder's consent, a proxy certification) are opened again through the
proxy feature's own openers, so the binding's rules (consent pending, lock, unbound, deceased) and the
relative's daily limit apply exactly as from the family page.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from fastapi import APIRouter, Request
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.reasons import ReasonCode, needs_new_card
from service.adapters.http.deps import DB, Ctx, SessionId
from service.adapters.http.schemas import session_created
from service.certification import attempts, sessions
from service.certification.audit import audit
from service.certification.catalog import message_zh
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionDecision,
    SessionState,
    UploadKind,
    beneficiary_of,
    utcnow,
)
from service.features.proxy import bindings
from service.features.proxy import sessions as proxy_sessions
from service.features.proxy.models import (
    CLAIM_FIELD,
    ENDED_STATUSES,
    BindingStatus,
    ProxyClaim,
    ProxyOperator,
    ProxySession,
    ProxySessionKind,
)
from service.features.wechat.h5 import identity, roster_told
from service.features.wechat.models import WeChatSessionLink
from service.infra.storage import StorageError, StorageUnavailableError

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
FINISHED_FAILED = (SessionDecision.REJECT, SessionDecision.RETRY)
CONTINUED_ZH = "这次认证已经继续办理过了,请返回查看最新的一次认证。"
IDENTITY_CHANGED_AGAIN_ZH = "该档案登记的身份证号已变更,这次认证无法继续,请返回重新认证(需本人现用身份证)。"
# The capture page's mode for each kind of family session (h5.js: its steps and wording).
FAMILY_MODES = {
    ProxySessionKind.VERIFICATION: "verify",
    ProxySessionKind.CONSENT: "consent",
    ProxySessionKind.CERTIFICATION: "proxy",
}


class AgainRefused(ServiceError):
    """A refusal of "continue", with the sentence the page shows under its button (the code stays the generic
    one: NOT_FOUND, SESSION_STATE)."""

    def __init__(self, code: str, detail: str, message: str) -> None:
        super().__init__(code, detail)
        self._message = message

    @property
    def message_zh(self) -> str:
        return self._message


def not_yours() -> AgainRefused:
    """Another user's session answers like an unknown one."""
    return AgainRefused("NOT_FOUND", "no such session for this user", "未找到这次认证,请从公众号菜单重新进入。")


def attempts_left(db: Session, ctx: ServiceContext, s: CertSession) -> int:
    """Failed certifications still possible today for whoever asked for `s` (the limit of
    `sessions.create_session`): the relative for family sessions, the WeChat account for self sessions."""
    if s.beneficiary_id is None:  # a relative's verification: their own daily limit (service/features/proxy)
        ps = db.get(ProxySession, s.id)
        return proxy_sessions.verification_attempts_left(db, ctx, ps.operator_id) if ps is not None else 0
    requester = attempts.requesters(db, ctx, [(s.id, s.created_at)])[s.id] or None
    return attempts.attempts_left(db, ctx, s.beneficiary_id, requester)


def can_continue(s: CertSession) -> bool:
    """A session that will not decide anything more: failed, expired, or open past its time. Not one rejected
    because the roster gave the record another ID number after it was opened (IDENTITY_CHANGED): it was opened for
    the number the record named then, and continuing would open one for the new number without anyone entering it
    (the citizen starts again: their current number, a new card photo)."""
    if s.state == SessionState.DECIDED:
        return s.decision in FINISHED_FAILED and not opened_for_previous_number(s)
    if s.state in (SessionState.FAILED, SessionState.EXPIRED):
        return True
    now = utcnow()
    return s.state == SessionState.OPEN and (now > s.expires_at or now > s.nonce_expires_at)


def superseded(db: Session, old: CertSession, openid: str) -> bool:
    """Whether this WeChat account has opened a later session for the same person (or, for a relative's own
    verification, a later one of its own): continuing consumes the old session. Without this an expired session
    stayed continuable for ever, each tap a new open session and a new copy of the card photo (review: workload
    1). The later session is what the citizen goes on with; a second "continue" on the old one is refused."""
    later = (
        select(CertSession.id)
        .join(WeChatSessionLink, WeChatSessionLink.session_id == CertSession.id)
        .where(WeChatSessionLink.openid == openid, CertSession.created_at > old.created_at)
    )
    if old.beneficiary_id is None:
        later = later.where(CertSession.beneficiary_id.is_(None))
    else:
        later = later.where(CertSession.beneficiary_id == old.beneficiary_id)
    return db.scalar(later.limit(1)) is not None


def _close(old: CertSession) -> None:
    """An open session past its time becomes `expired` now, as the expiry run would make it (retention.py): it
    is continued, never resumed (the row is locked by the caller, so no upload can queue it meanwhile)."""
    if old.state == SessionState.OPEN:
        old.state, old.decided_at = SessionState.EXPIRED, utcnow()


def opened_for_previous_number(s: CertSession) -> bool:
    """Rejected because the record names another ID number since `s` was opened (current_person.py)."""
    return ReasonCode.IDENTITY_CHANGED in (s.reasons or [])


def is_family(db: Session, session_id: str) -> bool:
    """A session of the family pages (verification, consent or proxy certification)."""
    return db.get(ProxySession, session_id) is not None


def card_reusable(s: CertSession) -> bool:
    # A card reason (the photo itself was the problem) or a change of the record's ID number: a new photo.
    return s.id_card_key is not None and not any(needs_new_card(r) for r in s.reasons or [])


def _copy_card(db: Session, ctx: ServiceContext, old: CertSession, new: CertSession) -> bool:
    if old.id_card_key is None:
        return False
    try:
        data = ctx.storage.get(old.id_card_key)
        with Image.open(io.BytesIO(data)) as img:
            ctype = Image.MIME.get(img.format or "", "")
    except StorageUnavailableError:
        raise  # the store does not answer: the upload of a new photo would fail too (503, try later)
    except (StorageError, OSError, UnidentifiedImageError, KeyError):
        log.info("h5 again: card of %s no longer readable, asking for a new photo", old.id[:8])
        return False  # e.g. removed by retention, or lost: the citizen takes it again
    sessions.upload(db, ctx, new, UploadKind.ID_CARD, data, ctype, f"again-{old.id}", None)
    return True


@router.post("/api/sessions/{session_id}/again")
def continue_session(ctx: Ctx, db: DB, request: Request, session_id: SessionId) -> dict[str, Any]:
    """A new session after `session_id` failed or timed out; only for the WeChat user the session belongs to
    (the cookie, not the old session's token, which may have expired: that is the timeout case)."""
    openid = identity.openid_from(ctx, request)
    if openid is None:
        raise ServiceError("UNAUTHORIZED", "open the page from the WeChat menu")
    link = db.get(WeChatSessionLink, session_id)
    # Locked (sessions first: service/certification/lock_order.py): a withdrawal of the template consent holding it
    # is waited for and its consent read after it; one coming later waits for the new session and then sees it.
    old = db.get(CertSession, session_id, with_for_update=True, populate_existing=True)
    if link is None or old is None or link.openid != openid:
        raise not_yours()
    if opened_for_previous_number(old):
        raise AgainRefused("SESSION_STATE", "record's ID number changed", IDENTITY_CHANGED_AGAIN_ZH)
    if not can_continue(old):
        raise AgainRefused("SESSION_STATE", f"session is {old.state}", "这次认证已无法继续,请返回重新开始。")
    if superseded(db, old, openid):
        raise AgainRefused("SESSION_STATE", "session already continued", CONTINUED_ZH)
    _close(old)
    ps = db.get(ProxySession, old.id)
    if ps is not None:
        new, extra = reopen_family(db, ctx, old, ps)
        db.add(WeChatSessionLink(session_id=new.session.id, openid=openid))
    elif old.channel == Channel.SELF:
        b = beneficiary_of(db, old)
        if b is None:
            raise not_yours()
        _hide_a_death(db, ctx, b, openid)
        new, extra = start_self_session(db, ctx, b, openid, old.template_consent), {"mode": "self"}
    else:
        raise AgainRefused("SESSION_STATE", f"{old.channel} session", "这次认证不是在本页面办理的,无法继续。")
    kept = card_reusable(old) and _copy_card(db, ctx, old, new.session)
    db.commit()
    return {**session_answer(db, ctx, new), "card_kept": kept, **extra}


def _hide_a_death(db: Session, ctx: ServiceContext, b: Beneficiary, openid: str) -> None:
    """A person recorded deceased since: a self session is opened by anyone who types a name and number, and the
    roster's record of a death is not theirs to learn (roster_told.py). Answered like another user's session, as
    opening one by typing answers an unknown record; staff read the reason in the audit."""
    if b.status != BeneficiaryStatus.DECEASED or roster_told.may_read_status(db, ctx, openid, b):
        return  # alive, or told: `sessions.create_session` names the refusal
    audit(db, attempts.wechat_requester(ctx, openid), "h5.session.refused", b.external_id, {"reason": "deceased"})
    db.commit()
    raise not_yours()


def reopen_family(
    db: Session, ctx: ServiceContext, old: CertSession, ps: ProxySession
) -> tuple[sessions.NewSession, dict[str, Any]]:
    """The same family step again, for the same relative (and binding): opened by the proxy feature's openers,
    which apply the binding's rules and the relative's daily limit; the caller links and commits."""
    op = db.get(ProxyOperator, ps.operator_id)
    if op is None:
        raise not_yours()
    kind = ProxySessionKind(ps.kind)
    if kind is ProxySessionKind.VERIFICATION:
        if op.verified_at is not None:
            raise AgainRefused("SESSION_STATE", "operator already verified", "您已完成实名核验,请返回家人列表。")
        me = db.get(ProxyClaim, old.id)  # whom the first verification claimed: the same claim again
        if me is None or not me.id_enc:  # emptied past the retention period (proxy/claim_retention.py)
            raise not_yours()
        number = ctx.keyring.decrypt_field(me.id_enc, CLAIM_FIELD)
        new = proxy_sessions.open_verification(db, ctx, op, number, me.name, old.template_consent)
        return new, {"mode": FAMILY_MODES[kind]}
    if ps.binding_id is None:
        raise not_yours()
    row = bindings.own_binding(db, op, ps.binding_id, for_update=True)
    if row.status == BindingStatus.EXPIRED:
        raise AgainRefused("PROXY_CONSENT_EXPIRED", "binding expired unconsented", message_zh("PROXY_CONSENT_EXPIRED"))
    if row.status == BindingStatus.REVOKED:  # the relative did nothing: the roster changed the elder's record
        raise AgainRefused("PROXY_NOT_BOUND", "binding revoked", "该老人的档案信息已变更,原绑定已失效,请重新绑定。")
    if row.status in (BindingStatus.WITHDRAWN, BindingStatus.MOVED):  # the elder ended it; or the person's new account
        raise AgainRefused("PROXY_NOT_BOUND", f"binding {row.status}", bindings.status_zh(row.status) + "。")
    if row.status in ENDED_STATUSES:
        raise AgainRefused("PROXY_NOT_BOUND", "binding ended", "您已解除与这位家人的绑定,无法继续认证。")
    if kind is ProxySessionKind.CONSENT:
        if row.status != BindingStatus.PENDING_CONSENT:
            raise AgainRefused("SESSION_STATE", f"binding is {row.status}", "家人已确认绑定,无需再录像确认。")
        new = proxy_sessions.open_consent(db, ctx, op, row)
    else:
        new = proxy_sessions.open_certification(db, ctx, op, row)
    elder = db.get(Beneficiary, row.beneficiary_id)
    return new, {"mode": FAMILY_MODES[kind], "elder_name": elder.name if elder is not None else None}


def start_self_session(
    db: Session, ctx: ServiceContext, b: Beneficiary, openid: str, template_consent: bool
) -> sessions.NewSession:
    """A self session opened from these pages, linked to the WeChat account (its result page and message go
    there); the caller commits."""
    new = sessions.create_session(db, ctx, b, Channel.SELF, template_consent, attempts.wechat_requester(ctx, openid))
    db.add(WeChatSessionLink(session_id=new.session.id, openid=openid))
    return new


def session_answer(db: Session, ctx: ServiceContext, new: sessions.NewSession) -> dict[str, Any]:
    """What the page needs to go on: the session, its token and challenge, and the requester's tries left."""
    opened = session_created(ctx, new).model_dump(exclude={"expires_at"})  # the API's answer, less the session's expiry
    return {**opened, "attempts_left": attempts_left(db, ctx, new.session)}
