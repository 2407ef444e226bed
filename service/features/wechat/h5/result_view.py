"""What the H5 result page (/h5/result/{id}, templates/result.html) shows of a session: the reasons a citizen may
read, whether staff decided it, whether another try is offered. The template picks the heading and the spoken
prompt from these, one branch each (a death: docs/security.md Part BP)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.reasons import TELLS_OF_REVIEW, ReasonCode, screen_light_advice
from service.certification import catalog
from service.certification.context import ServiceContext
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionState,
    beneficiary_of,
    certification_revoked,
)
from service.features.proxy.models import ProxySession
from service.features.wechat.h5 import recovery, roster_told, voice
from service.features.wechat.h5.elder import is_elder
from service.infra.clock import local_today

# Family sessions about the elder (the relative's own verification is about the relative).
PROXY_KINDS = ("consent", "certification")


def proxy_kind(db: Session, session_id: str) -> str | None:
    """verification / consent / certification for sessions of the family pages; None for self sessions."""
    row = db.get(ProxySession, session_id)
    return str(row.kind) if row is not None else None


def staff_decision(s: CertSession) -> str | None:
    """reject / retry / accept when staff decided the session (service/certification/review.py and the console's
    retake request write ``result["review"]``); None for the machine's own decision."""
    review = (s.result or {}).get("review")
    decision = review.get("decision") if isinstance(review, dict) else None
    return str(decision) if decision is not None and s.decision == decision else None


def shown_reasons(
    db: Session, ctx: ServiceContext, openid: str, s: CertSession, b: Beneficiary | None
) -> list[tuple[str, str | None]]:
    """The citizen texts of the session's reasons, each with the prompt key that speaks it (voice.reason_key; None:
    shown, not spoken). A recorded death only to whom roster_told.py allows (a self session is opened by anyone who
    types a name and number: Part BP); a reason that describes the review the case went to ("请耐心等待审核结果")
    not once staff have decided it."""
    codes = [r for r in s.reasons or [] if catalog.is_known(r)]
    if staff_decision(s) is not None:
        codes = [r for r in codes if r not in TELLS_OF_REVIEW]
    if ReasonCode.BENEFICIARY_DECEASED in codes and (b is None or not roster_told.may_read_status(db, ctx, openid, b)):
        codes = [r for r in codes if r != ReasonCode.BENEFICIARY_DECEASED]
    return [(catalog.message_zh(r), voice.reason_key(r)) for r in codes]


def _ended(b: Beneficiary | None, s: CertSession) -> bool:
    """No try can succeed: the person is recorded deceased (now, or when the session was decided)."""
    deceased = b is not None and b.status == BeneficiaryStatus.DECEASED
    return deceased or ReasonCode.BENEFICIARY_DECEASED in (s.reasons or [])


RETAKE_ADVICE = "请在光线充足处正对镜头。"
RETAKE_LIGHT_ADVICE = "请在室内调亮手机屏幕,脸靠近屏幕。"


def result_context(db: Session, ctx: ServiceContext, openid: str, s: CertSession) -> dict[str, Any]:
    """The template's values for `s`, viewed by `openid` (the account the session is linked to)."""
    b = beneficiary_of(db, s)
    kind = proxy_kind(db, s.id)
    ended = _ended(b, s)
    return {
        "s": s,
        "pending": s.state not in (SessionState.DECIDED, SessionState.FAILED, SessionState.EXPIRED),
        "reasons": shown_reasons(db, ctx, openid, s, b),
        "voice": voice.PROMPTS,  # the reasons' prompts too (other pages carry voice.PAGE_PROMPTS)
        "staff": staff_decision(s),
        "kind": kind,
        "valid_until": b.valid_until if b is not None else None,
        # A certification a supervisor revoked since (found fraudulent: service/certification/revocation.py).
        "revoked": db.scalar(select(CertSession.id).where(CertSession.id == s.id, certification_revoked())) is not None,
        # No try offered where none can succeed (a death: "继续认证" and typing again answer as unknown).
        "retry_offered": not ended,
        "attempts_left": 0 if ended else recovery.attempts_left(db, ctx, s),
        # The line under the tries left: where to take the next one (not a bright place after LIGHT_NOT_SEEN).
        "advice": RETAKE_LIGHT_ADVICE if screen_light_advice(s.reasons or []) else RETAKE_ADVICE,
        # Family sessions continue too (recovery.reopen_family); other channels' sessions only show their result;
        # a session already continued (a later one of this account for the person) not again.
        "again": (kind is not None or s.channel == Channel.SELF)
        and recovery.can_continue(s)
        and not ended
        and not recovery.superseded(db, s, openid),
        "card_kept": recovery.card_reusable(s),
        "phone": ctx.settings.bureau_phone,
        "elder": b.name if b is not None and kind in PROXY_KINDS else None,
        # Elder mode by the person's own age: the viewer is the person (not a relative looking at a proxy result).
        "elder_mode": b is not None and kind is None and is_elder(b.birth_date, None, local_today(ctx.settings)),
    }
