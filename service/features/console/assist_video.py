"""A citizen's request for a manual review (人工审核) settled from the request page: staff watch the video the
machine rejected and accept it (视频审核通过), through the review core (service/certification/review.py `settle`),
so the certification, its certificate, the audit trail and the person's message come out as for any case decided
in the review queue; the request closes as certified.

The H5 form promises "工作人员查看已录制的视频并与您联系,不用再拍". Before, a machine reject could never be accepted:
the case page refused it (该案件已处理), and the request page offered only a counter or home-visit record, so staff
either recorded a visit that never happened or sent a stroke patient who cannot turn her head to the home-visit
backlog. Only a reject a person watching the video may overrule qualifies (review.overrulable: the challenge, the
capture; never the passive liveness, a replay's signature); an accept that takes two people
(review.accept_needs_second: a face the machine doubted, a fraud revocation) is refused here as `settle` refuses it
to any caller that is not the review queue. Nor a request a certification answered since, or a video older than the
person's latest certification (a second certification from superseded evidence).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.certification.catalog import message_zh
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    Certification,
    CertSession,
    SessionDecision,
    newest_first,
)
from service.certification.review import machine_reject, overrulable, settle
from service.features.console import audit_chain
from service.features.console.assist import AssistError, answered_sql, close, open_sql
from service.features.console.assist_hold import hold_cutoff, hold_ended
from service.features.console.auth import Staff
from service.features.console.labels import reason_label
from service.features.console.models import AssistKind, AssistOutcome, AssistRequest, AssistStatus, ReviewDecision
from service.features.console.review_queue import second_needed_zh
from service.features.proxy.models import ProxySession, ProxySessionKind
from service.infra.config import Settings

RECENT_SESSIONS = 10  # the attempts the request page lists (and among which the video to review is found)
MAX_NOTE = 1000  # as a review decision's reason

NO_VIDEO = "该申请没有可查看的视频：本人近期没有被机器拒绝的视频认证记录。请安排上门或柜台认证"
# Deleted past the retention period (service/certification/retention.py): a request filed after the purge, or one
# the purge ran before (an open request's video is kept: `videos_awaited`).
PURGED = "该视频认证的照片和视频已按保存期限删除，无法查看，不能在申请页改判。请安排上门或柜台认证"
NOT_MACHINE_REJECT = "该视频认证不是机器拒绝的（已通过、待审核或已由工作人员处理），不能在申请页改判"
NO_NOTE = "请填写审核意见（视频中看到的情况）"
STALE = "您打开此页面后，该申请对应的视频认证记录已有变化，本次审核未保存。请刷新页面核对后再提交"
DECEASED = "该人员已登记死亡，不能认证"
# After the machine's reasons: only what the person did in front of the camera is a person's to overrule. The screen's
# colours not seen on the face (LIGHT_NOT_SEEN) is named: its citizen message reads like a capture condition, but a
# video made before the session (a replay) shows exactly that, and watching it cannot tell the two apart
# (pipelines.reasons.staff_may_overrule).
NOT_OVERRULABLE = (
    "不能凭查看视频改判（只有未完成动作或拍摄条件的原因可以；疑似非真人、翻拍、脸上未见屏幕颜色（可能是事先录好的视频）"
    "或证件号码未读出须当面核实本人），请安排上门或柜台认证"
)
# The staleness rule (assist.answered_sql, as the request list and the retention purge read it): a certification
# recorded after the request was filed answered it; a video older than the person's latest certification is
# evidence that certification already superseded. Accepted, either gave a second certification re-dated today.
ANSWERED = "该人员在此申请提交后已完成认证，本申请已无需视频审核，不能据此再次认证。请核对认证记录后办结"
BEFORE_CERTIFIED = "该视频早于该人员最近一次认证，不能据此再次认证。请核对认证记录；仍需认证请安排上门或柜台认证"
# After why the accept takes two people (review_queue.second_needed_zh).
TWO_PEOPLE = "不能在申请页由一人通过，请安排上门或柜台认证"


class VideoRefused(Exception):
    """The request page's 视频审核通过 refused; `message`: why, in the staff member's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class VideoCheck:
    """The video a request's manual review is about (`session`; None: none found) and why staff may not accept it
    from the request page (`refusal`; None: they may)."""

    session: CertSession | None
    refusal: str | None


def recent_attempts(db: Session, beneficiary_id: int) -> Sequence[CertSession]:
    """The person's latest sessions, newest first (`newest_first`, as `_recent_attempts_of`): what the request page
    lists."""
    query = select(CertSession).where(CertSession.beneficiary_id == beneficiary_id)
    return db.scalars(query.order_by(*newest_first()).limit(RECENT_SESSIONS)).all()


def _certifies_person(
    db: Session, s: CertSession, beneficiary_id: int, proxies: Mapping[str, ProxySession] | None = None
) -> bool:
    """A session whose accept certifies the request's person: theirs, and not an elder's consent to a relative nor a
    relative's own verification (the proxy feature's accept of those certifies nobody). `proxies`: the proxy rows
    of the sessions looked at, read already (`videos_awaited`: a session absent from it has none)."""
    proxy = db.get(ProxySession, s.id) if proxies is None else proxies.get(s.id)
    return s.beneficiary_id == beneficiary_id and (proxy is None or proxy.kind == ProxySessionKind.CERTIFICATION)


def video_of(
    db: Session,
    req: AssistRequest,
    attempts: Sequence[CertSession],
    proxies: Mapping[str, ProxySession] | None = None,
) -> CertSession | None:
    """The video request `req` is about: the session it names, else the person's latest machine-rejected session
    of their own or a relative's among `attempts` (`recent_attempts`: the request page's list)."""
    return _video(db, req.beneficiary_id, req.session_id, attempts, proxies)


def _video(
    db: Session,
    beneficiary_id: int,
    session_id: str | None,
    attempts: Sequence[CertSession],
    proxies: Mapping[str, ProxySession] | None = None,
) -> CertSession | None:
    """`video_of` for a request of `beneficiary_id` naming `session_id`, filed or about to be (`reviewable`)."""
    if session_id is not None:
        named = db.get(CertSession, session_id)
        return named if named is not None and _certifies_person(db, named, beneficiary_id, proxies) else None
    return next(
        (s for s in attempts if machine_reject(s) and _certifies_person(db, s, beneficiary_id, proxies)),
        None,
    )


def reviewable(db: Session, beneficiary_id: int, session_id: str | None) -> bool:
    """Whether a manual review asked now (of `session_id`, else the person's latest reject: `video_of`) is of a video
    staff may accept (assist.offered_kinds): one was recorded, and it is no machine reject staff may never overrule
    by watching it (review.overrulable: LIGHT_NOT_SEEN, a spoof; `check_video` refuses those on the request page).
    Before, the form offered 人工审核 (不用再拍) on a session with no video (the capture page's help where it cannot
    record under LIGHT_CHALLENGE enforce) and after such a reject: a review that could only end in a refusal. A
    purged video counts: `hold_video` answers it (ASSIST_VIDEO_PURGED)."""
    s = _video(db, beneficiary_id, session_id, recent_attempts(db, beneficiary_id))
    if s is None:
        return False
    if s.media_purged_at is not None:
        return True
    return s.video_key is not None and (not machine_reject(s) or overrulable(s))


def videos_awaited(db: Session, ctx: ServiceContext, session_ids: Sequence[str], now: dt.datetime) -> set[str]:
    """Which of `session_ids` an open request for a manual review waits on (contract.KeptMediaSource, registered by
    install_features): the video `video_of` finds for it, the one staff are asked to watch. The retention purge
    keeps their media while the request is open (one a certification answered since waits on nothing:
    `answered_sql`), for at most `REVIEW_VIDEO_HOLD_DAYS` after it was filed (assist_hold.hold_cutoff); the first run
    after it is closed or its hold ended takes them. A fixed number of statements for the whole batch (before: the
    recent attempts and the proxy row read again for every request)."""
    persons = select(CertSession.beneficiary_id).where(CertSession.id.in_(session_ids))
    query = select(AssistRequest).where(
        AssistRequest.kind == AssistKind.MANUAL_REVIEW,
        open_sql(),
        ~answered_sql(),
        AssistRequest.created_at >= hold_cutoff(ctx.settings, now),
        AssistRequest.beneficiary_id.in_(persons),
    )
    requests = db.scalars(query).all()
    if not requests:
        return set()
    attempts = _recent_attempts_of(db, {req.beneficiary_id for req in requests})
    named = {req.session_id for req in requests if req.session_id is not None}
    db.scalars(select(CertSession).where(CertSession.id.in_(named))).all()  # into the session: `video_of`'s get
    looked_at = named | {s.id for listed in attempts.values() for s in listed}
    proxies = {p.session_id: p for p in db.scalars(select(ProxySession).where(ProxySession.session_id.in_(looked_at)))}
    asked = set(session_ids)
    found = (video_of(db, req, attempts.get(req.beneficiary_id, []), proxies) for req in requests)
    return {s.id for s in found if s is not None and s.id in asked}


def video_gone(db: Session, settings: Settings, req: AssistRequest, now: dt.datetime) -> bool:
    """assist_hold.hold_ended of `req` and the video the request page shows (`video_of`), read only for a request
    past its hold (the console's list reads every open request)."""
    if not hold_ended(settings, req, None, now):
        return False
    return hold_ended(settings, req, video_of(db, req, recent_attempts(db, req.beneficiary_id)), now)


def _recent_attempts_of(db: Session, beneficiary_ids: set[int]) -> dict[int, list[CertSession]]:
    """`recent_attempts` of each of these people, in one statement, in its order (`newest_first`: two attempts
    opened in the same instant ranked alike on every read, so the purge keeps the video the request page shows)."""
    rank = func.row_number().over(partition_by=CertSession.beneficiary_id, order_by=newest_first())
    ranked = select(CertSession.id, rank.label("rank")).where(CertSession.beneficiary_id.in_(beneficiary_ids))
    recent = ranked.subquery()
    query = (
        select(CertSession)
        .join(recent, recent.c.id == CertSession.id)
        .where(recent.c.rank <= RECENT_SESSIONS)
        .order_by(*newest_first())
    )
    by_person: dict[int, list[CertSession]] = {}
    for s in db.scalars(query).all():
        by_person.setdefault(s.beneficiary_id or 0, []).append(s)
    return by_person


def hold_video(db: Session, req: AssistRequest) -> None:
    """The video a manual-review request just stored (`assist.submit`, in its transaction) waits on, locked (FOR
    SHARE) and read again: refused (ASSIST_VIDEO_PURGED) when its media are gone. A purge run holding that row
    (retention._purge_batch: it read which videos requests wait on before this request existed) is waited for and
    its deletion seen; a row this locks first is skipped by the purge (SKIP LOCKED) until the request is committed,
    and the next run keeps it. Before, a request committed while the purge ran was stored on a deleted video: the
    person told 不用再拍, the request page then saying it was deleted. The lock order holds: the request, then the
    session (lock_order.py)."""
    if req.kind != AssistKind.MANUAL_REVIEW:
        return
    s = video_of(db, req, recent_attempts(db, req.beneficiary_id))
    if s is None:
        return  # nothing to keep: the request page says so (NO_VIDEO)
    locked = select(CertSession).where(CertSession.id == s.id).with_for_update(read=True)
    s = db.scalars(locked.execution_options(populate_existing=True)).one()
    if s.media_purged_at is not None:
        raise AssistError("ASSIST_VIDEO_PURGED")


def check_video(db: Session, req: AssistRequest, attempts: Sequence[CertSession]) -> VideoCheck:
    """Whether staff may accept the request's video (`video_of`) from the request page, and why not: a request no
    certification answered since it was filed (`answered_sql`), a video made after the person's latest certification
    (`_before_certified`), its media not purged, a reject the machine made for a reason a person may overrule
    (review.overrulable), whose accept one person may make (review.accept_needs_second, asked as the review queue
    asks it: second_needed_zh)."""
    s = video_of(db, req, attempts)
    if db.scalar(select(answered_sql()).where(AssistRequest.id == req.id)):
        return VideoCheck(s, ANSWERED)
    if s is None:
        return VideoCheck(None, NO_VIDEO)
    if _before_certified(db, s, req.beneficiary_id):
        return VideoCheck(s, BEFORE_CERTIFIED)
    if s.media_purged_at is not None:  # nothing left to watch: an accept would rest on no video
        return VideoCheck(s, PURGED)
    if not machine_reject(s):
        return VideoCheck(s, NOT_MACHINE_REJECT)
    if not overrulable(s):
        labels = "、".join(reason_label(r) for r in s.reasons or [])
        return VideoCheck(s, f"机器拒绝的原因（{labels}）{NOT_OVERRULABLE}")
    why = second_needed_zh(db, s, None)
    if why:
        return VideoCheck(s, f"通过该视频须两人复核（{'；'.join(why)}），{TWO_PEOPLE}")
    return VideoCheck(s, None)


def _before_certified(db: Session, s: CertSession, beneficiary_id: int) -> bool:
    """Whether `s` was made before the person's latest certification (revoked ones too: a refusal sends staff to
    the record, never a second certification)."""
    latest = select(func.max(Certification.created_at)).where(Certification.beneficiary_id == beneficiary_id)
    last = db.scalar(latest)
    return last is not None and s.created_at < last


def accept_video(
    db: Session, ctx: ServiceContext, staff: Staff, req: AssistRequest, session_id: str, note: str
) -> CertSession:
    """Staff accept the request's video (`check_video`), the request closed as certified by them. `session_id`: the
    video the page showed (another one now, or none: STALE). Settled through `review.settle` with the features'
    guards and the second-person rule (`overrule`, not `case_checked`); a refusal of the core or a feature (a death
    or a change of ID number recorded meanwhile, a relative's binding ended) rolls everything back."""
    if req.status != AssistStatus.OPEN:
        raise AssistError("ASSIST_CLOSED")
    note = note.strip()[:MAX_NOTE]
    if not note:
        raise VideoRefused(NO_NOTE)
    b = db.get(Beneficiary, req.beneficiary_id)
    if b is None or b.status == BeneficiaryStatus.DECEASED:
        raise VideoRefused(DECEASED)
    found = check_video(db, req, recent_attempts(db, b.id))
    if found.session is None:
        raise VideoRefused(NO_VIDEO)
    if found.session.id != session_id:  # a newer attempt since the page was opened: not the video staff watched
        raise VideoRefused(STALE)
    if found.refusal is not None:
        raise VideoRefused(found.refusal)
    s = found.session
    # The request first (the lock order: the request page holds it), then the session and the person (`settle`);
    # closed first, so the certification's own rule closes only the person's other requests.
    close(db, ctx, staff, req, AssistOutcome.CERTIFIED, "", certified_by=s.id)  # one message: the decision's
    db.add(ReviewDecision(session_id=s.id, user_id=staff.id, stage="final", decision="accept", reason=note))
    try:
        settle(db, ctx, s, SessionDecision.ACCEPT, staff.username, note, staff.actor, overrule=True)
    except ServiceError as exc:
        raise VideoRefused(message_zh(exc.code)) from exc
    detail = {"decision": SessionDecision.ACCEPT.value, "reason": note, "request": req.id}
    audit_chain.record(db, staff.actor, "case.decide.final", s.id, detail)
    return s
