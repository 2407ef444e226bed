"""WeChat notifications, (2) the message of a recorded notice, composed just before it is sent (notice_send.py),
or None when it is no longer true: a reminder queued a second before an accept (which moves the date), a result
superseded by a later one, a reminder whose account is no longer the person's own, a closed request whose person
is gone (the wording: messages.py, revoked.py).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import (
    Beneficiary,
    CertSession,
    SessionDecision,
    SessionState,
    beneficiary_of,
    utcnow,
)
from service.features.console.assist import closing_number
from service.features.console.assist_hold import hold_ended
from service.features.console.assist_video import recent_attempts, video_of
from service.features.console.models import AssistRequest, AssistStatus
from service.features.wechat.accounts import own_account
from service.features.wechat.messages import (
    Message,
    assist_message,
    decision_message,
    reminder_message,
    session_kind,
    video_purged_message,
)
from service.features.wechat.models import WeChatNotice, WeChatSessionLink
from service.features.wechat.notice_queue import (
    ASSIST,
    ASSIST_VIDEO,
    STAFF_DECISION,
    TO_CERTIFY,
    assist_closing,
    busy,
    person_reminder_ref,
    reminder_kind,
    sheltered,
    video_purged_request,
)
from service.features.wechat.revoked import REVOKED, revoked_message


def superseded(db: Session, s: CertSession, openid: str) -> bool:
    """A later session of the same person and kind (messages.session_kind: a certification, by the person or a
    relative, or the elder's consent), opened from the same WeChat user, has been decided: its own result message
    tells where they stand, and this older one (a reject before the accept of the retry a minute later) would
    only contradict it. An accept is always told: whatever came after, the person is certified."""
    if s.beneficiary_id is None or s.decided_at is None or s.decision == SessionDecision.ACCEPT:
        return False  # no beneficiary: a relative's own verification, not a person's certification
    later = db.scalars(
        select(CertSession)
        .join(WeChatSessionLink, WeChatSessionLink.session_id == CertSession.id)
        .where(
            WeChatSessionLink.openid == openid,
            CertSession.beneficiary_id == s.beneficiary_id,
            CertSession.state == SessionState.DECIDED,
            CertSession.decided_at > s.decided_at,
        )
    )
    kind = session_kind(db, s)[0]
    return any(session_kind(db, other)[0] == kind for other in later)


def busy_for(db: Session, ctx: ServiceContext, notice: WeChatNotice, today: dt.date) -> bool:
    """Not now: a session of the notice's person is under way, or (a reminder to certify: due_soon, overdue) the
    cycle's rule shelters them (notice_queue.sheltered: a request filed in time after the notice was recorded,
    before it is sent)."""
    b_id = notice.ref.partition(":")[0]
    if not b_id.isdigit():
        return False
    if busy(db, int(b_id), utcnow()):
        return True
    b = db.get(Beneficiary, int(b_id)) if notice.kind in TO_CERTIFY else None
    return b is not None and b.id in sheltered(db, ctx, [b], today)


def compose(db: Session, ctx: ServiceContext, notice: WeChatNotice, today: dt.date) -> Message | None:
    """The message of a notice, or None when it is no longer true (then it is cancelled, not sent)."""
    base = ctx.settings.public_base_url.rstrip("/")
    if notice.kind in ("result", STAFF_DECISION):
        s = db.get(CertSession, notice.ref)
        b = beneficiary_of(db, s) if s else None
        if s is None or (b is None and s.beneficiary_id is not None):
            return None  # the beneficiary row is gone (None with no beneficiary: a relative's verification)
        if notice.kind == "result" and superseded(db, s, notice.openid):
            return None
        return decision_message(db, s, b, notice.kind == STAFF_DECISION, base, ctx.settings)
    if notice.kind == REVOKED:
        return revoked_message(db, notice.ref, notice.openid, today, base)
    if notice.kind == ASSIST:
        closing = assist_closing(notice.ref)
        req = db.get(AssistRequest, closing[0]) if closing is not None else None
        b = db.get(Beneficiary, req.beneficiary_id) if req is not None else None
        if closing is None or req is None or b is None or req.closed_at is None:
            return None
        if closing_number(db, req.id) != closing[1]:
            return None  # an earlier closing's, the request reopened since: the present closing has its own notice
        return assist_message(req, b, base, ctx.settings)
    if notice.kind == ASSIST_VIDEO:
        return _video_purged(db, ctx, notice, base)
    b_id = notice.ref.partition(":")[0]
    b = db.get(Beneficiary, int(b_id)) if b_id.isdigit() else None
    if b is None or person_reminder_ref(b, today, ctx.rules) != notice.ref:
        return None  # certified since (a new period) or the date was corrected
    if reminder_kind(b, today, ctx.rules) != notice.kind:
        return None  # no longer due, or due as another kind now (that one has its own notice)
    if own_account(db, b.id) != notice.openid:
        # The account stopped being the person's while the notice waited (the night before 08:00, a busy person):
        # the roster gave the record another ID number, a certification made from it was revoked. It is not told
        # the person's name and dates (accounts.py, the one rule).
        return None
    return reminder_message(notice.kind, b, base)


def _video_purged(db: Session, ctx: ServiceContext, notice: WeChatNotice, base: str) -> Message | None:
    """The message of an ASSIST_VIDEO notice while it is true: the request still open (closed since, its closing's
    own message tells the outcome), and the video its page shows deleted after the hold (none newer to watch)."""
    rid = video_purged_request(notice.ref)
    req = db.get(AssistRequest, rid) if rid is not None else None
    b = db.get(Beneficiary, req.beneficiary_id) if req is not None else None
    if req is None or b is None or req.status != AssistStatus.OPEN:
        return None
    video = video_of(db, req, recent_attempts(db, req.beneficiary_id))
    if video is None or video.media_purged_at is None or not hold_ended(ctx.settings, req, video, utcnow()):
        return None
    hold = ctx.settings.storage.review_video_hold_days
    return video_purged_message(req, b, video.media_purged_at, hold, base, ctx.settings)
