"""Staff review: a person settles a `review` decision (or a job that failed) as accept or reject; asked from a
citizen's request for a manual review, a machine reject a person may overrule is accepted the same way
(`overrulable`, `settle`'s `overrule`).

The reviewer's decision is recorded next to the machine's (which is kept), and an accept applies the cycle
exactly as an automatic one does. Every staff decision (accept, reject, or the console's retake request) tells
the person through ``notify_decision``: one message, queued in the same transaction as the decision, by the
notifiers the features registered (ctx.hooks; the WeChat feature's for sessions started from its H5 pages).
"""

from __future__ import annotations

from typing import Any, TypedDict

from sqlalchemy.orm import Session

from pipelines.reasons import ReasonCode, staff_may_overrule
from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.errors import InvalidInputError, ServiceError
from service.certification.models import (
    Beneficiary,
    CertSession,
    Channel,
    SessionDecision,
    SessionState,
    beneficiary_of,
    utcnow,
)
from service.certification.processing import accept_session
from service.certification.proxy_face import (
    MACHINE_UNCHECKED,
    PROXY_DOUBT_CODES,
    PROXY_DOUBT_NOTES,
    face_checked,
    proxy_face_doubt,
)
from service.certification.request_replay import digest, first_request
from service.certification.revocation import revoked_as_fraud
from service.infra.clock import local_date

# The machine's codes that say the face may be another person's (a relative filming themselves or holding up a
# photo): an accept overrules that doubt. FACE_CHANGED_IN_VIDEO and VIDEO_DUPLICATE are hard findings today (a
# reject, never a case): listed so that a rule change sending them to staff cannot make them one person's.
OTHER_PERSON_CODES = frozenset(
    {
        ReasonCode.FACE_MISMATCH,
        ReasonCode.FACE_CHANGED_IN_VIDEO,
        ReasonCode.FACE_CLOSER_TO_RELATIVE,
        ReasonCode.PROXY_OPERATOR_FACE,
        ReasonCode.SPOOF_RIGID_MOTION,
        ReasonCode.VIDEO_DUPLICATE,
        ReasonCode.PROXY_BINDING_HELD,
    }
)
REVOKED_BEFORE = "revoked"


def accept_needs_second(db: Session, s: CertSession) -> list[str]:
    """Why accepting case `s` takes two people (empty: one decides it): each code of the machine's that doubted the
    face as another person's (`OTHER_PERSON_CODES`; on a proxy session also `PROXY_DOUBT_CODES` and the notes
    `PROXY_DOUBT_NOTES`, `proxy_face_doubt`'s: a face under the accept or the proxy line, or no machine face check),
    `machine_unchecked` on the person's own session whose job failed (no machine check at all: the reviewer has
    only the card and a few frames cut from the video), and `revoked` when a certification of the person was revoked
    as 冒领 or a wrong accept. One reviewer's accept would otherwise certify, alone, the pension a relative keeps
    collecting (docs/security.md, Parts BC, BG). The console asks a second supervisor (review_queue.second_needed);
    the operator API, which has no second person, leaves such an accept to the console (CASE_HELD)."""
    codes = set(s.reasons or [])
    why: list[str] = sorted(codes & OTHER_PERSON_CODES)
    if s.channel == Channel.PROXY:
        notes = (s.result or {}).get("notes") or []
        why += sorted(codes & PROXY_DOUBT_CODES) + sorted(PROXY_DOUBT_NOTES.intersection(notes))
        face = proxy_face_doubt(s)
        if face is not None and face not in why:
            why.append(face)
    elif s.state == SessionState.FAILED or not face_checked(s.result or {}):
        # No machine face match: a failed job (no liveness, no best frame either: the card alone, Part BG), or a
        # decision that recorded no face score (a row stored before every decision recorded one, or written by hand).
        why.append(MACHINE_UNCHECKED)
    if s.beneficiary_id is not None and revoked_as_fraud(db, s.beneficiary_id):
        why.append(REVOKED_BEFORE)
    return why


def overrulable(s: CertSession) -> bool:
    """Whether staff may accept `s` although the machine rejected it (`settle`'s `overrule`: a citizen's request for
    a manual review of that video, service/features/console/assist_video.py): the machine's own reject (no staff
    decision on it), of a video the person or a relative sent (not a staff record), every reason of which a person
    watching the video may overrule (pipelines.reasons.staff_may_overrule: the challenge, the capture; a soft card
    note only beside a number the machine read and matched, `card_number_matched`). Whose face it is stays the
    machine's and the second person's rule: `settle` asks `accept_needs_second` as for any accept."""
    reasons = s.reasons or []
    matched = card_number_matched(s.result or {})
    return machine_reject(s) and bool(reasons) and all(staff_may_overrule(r, number_matched=matched) for r in reasons)


def machine_reject(s: CertSession) -> bool:
    """Whether `s` is the machine's own reject: decided `reject`, with no staff decision on it (`review` in its
    result), of a video the person or a relative sent (not a staff record)."""
    return (
        s.state == SessionState.DECIDED
        and s.decision == SessionDecision.REJECT
        and s.channel != Channel.STAFF
        and "review" not in (s.result or {})
    )


def card_number_matched(result: dict[str, Any]) -> bool:
    """Whether the stored decision shows the card's number read and compared with the person's: the reader's
    result (`id_card`, kept through the retention purge, the number masked) holds a number that validates. The
    decision then compared it with the person's (processing._subject always names it) and a mismatch is a reason
    of its own (ID_NUMBER_MISMATCH, never overrulable). A glare or blur that hid the number is reported instead of
    ID_NUMBER_UNREADABLE with no number stored; a result without the reader's (a media error, a row written by
    hand or before results kept it) shows nothing and reads as not matched."""
    card = result.get("id_card")
    return isinstance(card, dict) and bool(card.get("id_number")) and card.get("id_number_valid") is True


def lock_person(db: Session, s: CertSession) -> None:
    """Lock `s`'s beneficiary before a staff accept asks `accept_needs_second` (after the session and its review
    claim: lock_order.py; `accept_session` then finds it held). A revocation as 冒领 holds that row until it commits
    (revocation.revoke_certification): waited for, it is then seen (`revoked`). Asked before the lock, the rule read
    "no revocation" and one reviewer alone certified a person whose revocation committed meanwhile."""
    if s.beneficiary_id is not None:
        db.get(Beneficiary, s.beneficiary_id, with_for_update=True, populate_existing=True)


class ReviewRecord(TypedDict):
    """What a staff decision adds to a session's ``result`` under ``review`` (the machine's decision kept)."""

    machine_decision: str | None
    decision: str
    reviewer: str
    note: str


class Settled(TypedDict):
    """What `settle` answers; POST /api/v1/sessions/{id}/review sends it as is (schemas.ReviewOutcome). `replayed`:
    a retried request (its Idempotency-Key), answered as the first, nothing done again."""

    session_id: str
    decision: str
    review: ReviewRecord
    replayed: bool


REVIEW_ACTION = "session.review"


def settle(
    db: Session,
    ctx: ServiceContext,
    s: CertSession,
    decision: str,
    reviewer: str,
    note: str,
    actor: str,
    *,
    case_checked: bool = False,
    request_key: str | None = None,
    aliases: tuple[str, ...] = (),
    overrule: bool = False,
) -> Settled:
    """Apply a staff decision. ``case_checked``: the caller is the flow that holds the case (the console, which has
    checked the claim and the second decision itself); any other caller (the operator API) passes the features'
    guards first, so it cannot settle a case a reviewer holds or skip a supervisor's second decision.
    ``request_key``: the operator API's Idempotency-Key; a retry of its request (the same decision, reviewer, note
    and caller: `aliases`, the caller's names under previous signing keys) is answered as the first, before the
    state is looked at (request_replay.py: the revocation's rule); the same key asking otherwise is
    IDEMPOTENCY_MISMATCH.

    An accept is refused (`processing.accept_session`: IDENTITY_CHANGED, nothing written) when the roster gave the
    record another ID number after the session was opened: the video is the previous number's person's. A reject
    stays open, and a supervisor's same-person finding (identity_review.py) makes the accept possible again.

    ``overrule``: an accept of a machine reject a person may overrule (`overrulable`), asked from a citizen's
    request for a manual review; its caller does not hold the case (``case_checked`` False): the features' guards
    and the second-person rule apply as to any accept."""
    # Lock and re-read the row first (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers): two
    # settles at once (the operator API and the console, two API calls) both saw the open case and the later
    # one overwrote the earlier decision, e.g. a reject written over an accept whose certification stayed.
    # The session first, then the beneficiary or the features' rows: service/certification/lock_order.py.
    db.refresh(s, with_for_update=True)
    asked = digest(f"{decision}\n{reviewer}\n{note}")
    key = digest(request_key) if request_key is not None else None
    if key is not None and first_request(db, REVIEW_ACTION, s.id, key, asked, (actor, *aliases)) is not None:
        return _settled(s, replayed=True)
    reviewable = (
        (s.state == SessionState.DECIDED and s.decision == SessionDecision.REVIEW)
        or s.state == SessionState.FAILED
        or (overrule and decision == SessionDecision.ACCEPT and overrulable(s))
    )
    if not reviewable:
        raise ServiceError("SESSION_STATE", f"session is {s.state}/{s.decision}: nothing to review")
    if decision not in (SessionDecision.ACCEPT, SessionDecision.REJECT):
        raise InvalidInputError("REVIEW_DECISION", "decision must be accept or reject")
    if decision == SessionDecision.ACCEPT:
        lock_person(db, s)  # before the rule reads the person's revocations (`accept_needs_second`)
    if not case_checked:
        ctx.hooks.check_settle(db, s)
        if decision == SessionDecision.ACCEPT and accept_needs_second(db, s):
            raise ServiceError("CASE_HELD", "accepting this case takes two people: the console's second decision")
    b = beneficiary_of(db, s)  # None: a session without one (a relative's verification), its feature's to accept
    if b is None and s.beneficiary_id is not None:
        raise ServiceError("BENEFICIARY_UNKNOWN", "beneficiary gone")
    record = ReviewRecord(machine_decision=s.decision, decision=decision, reviewer=reviewer, note=note)
    result = dict(s.result or {})
    result["review"] = record
    s.result, s.decision, s.state, s.decided_at = result, decision, SessionState.DECIDED, utcnow()
    if decision == SessionDecision.ACCEPT:
        accept_session(db, ctx, s, b, local_date(ctx.settings, s.decided_at), None)  # the bureau's date
    detail = {"decision": decision, "reviewer": reviewer}
    if record["machine_decision"] == SessionDecision.REJECT:
        detail["overrules"] = SessionDecision.REJECT.value  # the machine's reject, overruled (`overrulable`)
    audit(db, actor, REVIEW_ACTION, s.id, detail if key is None else {**detail, "request": key, "asked": asked})
    notify_decision(db, ctx, s)
    return _settled(s, replayed=False)


def _settled(s: CertSession, replayed: bool) -> Settled:
    """The answer of a settled case, from the session (a retry's: the first request's decision and record)."""
    record: ReviewRecord = (s.result or {})["review"]
    return Settled(session_id=s.id, decision=str(s.decision), review=record, replayed=replayed)


def notify_decision(db: Session, ctx: ServiceContext, s: CertSession) -> int:
    """Queue the message of a staff decision just applied to `s` (self, consent, verification or proxy case):
    exactly one, to whoever started the session from WeChat (service/features/wechat/messages.py says what it says)."""
    return ctx.hooks.staff_decision(db, s)
