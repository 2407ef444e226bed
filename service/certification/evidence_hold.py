"""A hold on a session's media (ID-card photo, video): the evidence of a suspected or established 冒领.

The retention purge deletes every final session's media `RETENTION_DAYS` after its decision
(service/certification/retention.py). When a certification is revoked as impersonation or a wrong accept
(service/certification/revocation.py), its session's video and card are what the bureau needs to recover the
overpaid pension or report the fraud; staff who suspect a session before deciding need them kept too. A hold:

- is placed by a supervisor (the console: service/features/console/revoke.py), by the revocation itself, or by the
  registration of a death on each certification dated after it (`hold_if_stored`), with a reason and a note (ID
  numbers masked), and audited (`evidence.hold.placed`);
- lasts `EVIDENCE_HOLD_DAYS` from its placement, its end stored with it (`ends_at`, in its audit entry as `until`:
  PIPL, biometric data are never kept without an end; a supervisor places a new hold to keep them longer), or until
  a supervisor releases it early (`evidence.hold.released`, with why). The setting sizes the holds placed after it
  changes: lowering it ends no hold in force (the evidence of an established fraud is not deleted without a
  release on record), raising it extends none;
- keeps the media from the purge while in force (`models.media_held`); once it ends they go with the next run
  when their own retention period is over too (the later of the two). Held media stay referenced (the orphan sweep
  keeps them) and are re-sealed by a key rotation like any other.

Placing a hold locks the session's row first (service/certification/lock_order.py: cert_sessions come before
beneficiaries) and reads its media state under that lock: a purge holding the row is waited for, and its deletion
then seen (EVIDENCE_PURGED: nothing left to hold); a purge that comes after the hold's commit skips the row.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification import second_person
from service.certification.audit import audit
from service.certification.errors import InvalidInputError, NotFoundError, ServiceError
from service.certification.models import CertSession, EvidenceHold, utcnow
from service.infra.security import mask_text

PLACED = "evidence.hold.placed"
RELEASED = "evidence.hold.released"
RELEASE_ASKED = "evidence.hold.release_asked"  # the first of the two supervisors a release needs
# How long a request to release a hold waits for the second supervisor: past it, the next click is a new request
# (a request forgotten, or given up, is not confirmed months later by whoever comes by).
RELEASE_ASK_DAYS = second_person.ASK_DAYS
RELEASE_REFUSED = "evidence.hold.release_refused"  # the asker confirming their own request (recorded, refused)
MAX_NOTE_CHARS = 500  # a staff member's note: a hold's, its release's, a revocation's (revocation.py)


class HoldReason(enum.StrEnum):
    """Why a session's media are held (the console offers all but REVOKED; docs/console.md)."""

    INVESTIGATION = "investigation"  # 涉嫌冒领，调查核实中
    RECOVERY = "recovery"  # 追回多发待遇
    REFERRAL = "referral"  # 移送公安 / 司法机关
    REVOKED = "revoked"  # placed by a revocation as impersonation or wrong accept (revocation.py)
    OTHER = "other"


class Evidence(enum.StrEnum):
    """What became of a session's media when a hold was asked for (a revocation's result says it)."""

    HELD = "held"
    PURGED = "purged"  # deleted already at the end of their retention period: nothing to hold
    NONE = "none"  # the session never stored any (a counter or home-visit certification)
    NOT_HELD = "not_held"  # not asked for (a revocation for another reason: a supervisor may place one)


@dataclass(frozen=True)
class HoldView:
    """A hold as a page shows it: its row and the day it ends (its stored end)."""

    hold: EvidenceHold
    ends_at: dt.datetime
    release_asked: ReleaseAsk | None = None  # a supervisor asked to release it; another one confirms


# A supervisor's request to release a hold early, waiting for a second supervisor (the rule: second_person.py).
ReleaseAsk = second_person.Ask


def hold_end(hold: EvidenceHold) -> dt.datetime:
    """When `hold` ends unless released earlier: stored at its placement (placed + EVIDENCE_HOLD_DAYS then)."""
    return hold.ends_at


def in_force(hold: EvidenceHold, now: dt.datetime) -> bool:
    """The Python side of `models.media_held`, for one row."""
    return hold.released_at is None and hold_end(hold) > now


def checked_note(note: str, code: str, limit: int = MAX_NOTE_CHARS) -> str:
    """The note stripped; `code` unless it holds 1 to `limit` characters as typed (the one rule for a staff
    member's note: a hold, its release, a revocation, an alert's handling, a WeChat notice's close). Callers that
    store it mask it after: `mask_text` never lengthens a note (a number keeps its length, its separators go)."""
    text = note.strip()
    if not text or len(text) > limit:
        raise InvalidInputError(code, f"a note of 1 to {limit} characters is required")
    return text


def media_state(s: CertSession) -> Evidence:
    """Whether the session's media can still be held."""
    if s.media_purged_at is not None:
        return Evidence.PURGED
    return Evidence.HELD if s.id_card_key or s.video_key else Evidence.NONE


def place_hold(
    db: Session, session_id: str, reason: str, note: str, actor: str, target: str, hold_days: int
) -> EvidenceHold:
    """Hold session `session_id`'s media for `hold_days` (EVIDENCE_HOLD_DAYS now: the end is stored with the hold)
    in the caller's transaction; `target`: the audit entry's (the person's external id, or the session id).
    Refused: EVIDENCE_HOLD_REASON (a reason the form does not offer, or no note), NOT_FOUND, EVIDENCE_PURGED
    (already deleted), EVIDENCE_NONE (the session stored none)."""
    try:
        why = HoldReason(reason)
    except ValueError:
        raise InvalidInputError("EVIDENCE_HOLD_REASON", "reason must be one of " + ", ".join(HoldReason)) from None
    text = checked_note(note, "EVIDENCE_HOLD_REASON")
    s = db.get(CertSession, session_id, with_for_update=True, populate_existing=True)
    if s is None:
        raise NotFoundError("session")
    state = media_state(s)
    if state is Evidence.PURGED:
        raise ServiceError("EVIDENCE_PURGED", f"the media of session {s.id} were deleted already")
    if state is Evidence.NONE:
        raise ServiceError("EVIDENCE_NONE", f"session {s.id} stored no media")
    at = utcnow()
    hold = EvidenceHold(
        session_id=s.id,
        reason=why.value,
        note=mask_text(text),
        placed_by=mask_text(actor)[:64],
        placed_at=at,
        ends_at=at + dt.timedelta(days=hold_days),
    )
    db.add(hold)
    db.flush()
    until = hold.ends_at.isoformat(timespec="seconds")
    detail = {"hold": hold.id, "session": s.id, "reason": why.value, "note": text[:200], "until": until}
    audit(db, actor, PLACED, target, detail)
    return hold


def release_hold(
    db: Session,
    hold_id: int,
    note: str,
    actor: str,
    target: str,
    session_ids: Collection[str] | None = None,
    check_second: Callable[[str], None] | None = None,
) -> EvidenceHold:
    """Release hold `hold_id` early (on one of `session_ids` when given: a console form names the person) in the
    caller's transaction, on the word of two supervisors: the first call asks (`evidence.hold.release_asked`, the
    hold stays in force), a call by another actor releases it: the next purge deletes the media once no other hold
    keeps them and their retention period is over. One person alone could otherwise let the purge destroy the
    evidence of a relative's 冒领 (docs/security.md, Part BC). The hold answered; `released_at` says which it was.
    Refused: EVIDENCE_RELEASE_NOTE, NOT_FOUND, EVIDENCE_HOLD_ENDED (released or run out), EVIDENCE_RELEASE_SELF
    (the one who asked asks again), and `check_second`'s refusal (the caller's check that `actor` may confirm the
    asker's request, given the asker's actor): those two recorded, `evidence.hold.release_refused`, committed
    before the refusal."""
    text = checked_note(note, "EVIDENCE_RELEASE_NOTE")
    hold = db.get(EvidenceHold, hold_id)
    if hold is None or (session_ids is not None and hold.session_id not in session_ids):
        raise NotFoundError("evidence hold")
    # The session's row first (lock order), then the hold's: two releases at once are one and one refusal.
    db.get(CertSession, hold.session_id, with_for_update=True)
    db.refresh(hold, with_for_update=True)
    if not in_force(hold, utcnow()):
        raise ServiceError("EVIDENCE_HOLD_ENDED", f"evidence hold {hold.id} has ended already")
    asked, who = release_ask(db, hold), mask_text(actor)[:64]
    detail = _release_detail(hold, text)
    if asked is None:
        audit(db, actor, RELEASE_ASKED, target, detail)
        return hold
    if second_person.is_asker(asked, actor):  # refused, and recorded (committed before the refusal rolls back)
        message = f"evidence hold {hold.id}: a second supervisor must confirm"
        second_person.refuse_alone(db, actor, RELEASE_REFUSED, target, detail, "EVIDENCE_RELEASE_SELF", message)
    second_person.check_or_refuse(db, check_second, asked, actor, RELEASE_REFUSED, target, detail)
    hold.released_at, hold.released_by, hold.release_note = utcnow(), who, mask_text(text)
    audit(db, actor, RELEASED, target, detail | {"asked_by": asked.actor})
    return hold


def ask_release(db: Session, hold: EvidenceHold, note: str, actor: str, target: str) -> bool:
    """The service's own first word on releasing `hold` early, for a hold whose cause it has seen end (a death
    withdrawn as recorded by mistake, service/features/console/alt_cert.py): `release_hold`'s request, recorded as
    `actor`'s, so that a second supervisor's confirmation releases it; the hold stays in force meanwhile (one
    person alone never lets the purge delete held evidence, Part BC). Whether a request was recorded: none for a
    hold no longer in force or one with a request waiting already (whoever made it, the second supervisor answers
    it). No lock: a request is one trail entry, and one recorded beside a release at the same moment asks nothing
    (a request counts only for a hold in force)."""
    if not in_force(hold, utcnow()) or release_ask(db, hold) is not None:
        return False
    audit(db, actor, RELEASE_ASKED, target, _release_detail(hold, checked_note(note, "EVIDENCE_RELEASE_NOTE")))
    return True


def _release_detail(hold: EvidenceHold, text: str) -> dict[str, object]:
    return {"hold": hold.id, "session": hold.session_id, "note": text[:200]}


def release_ask(db: Session, hold: EvidenceHold, now: dt.datetime | None = None) -> ReleaseAsk | None:
    """The first request to release `hold` early still waiting, if any: made after the hold was placed (its only
    change until its release) and within RELEASE_ASK_DAYS (an older one has lapsed)."""
    return release_asks(db, [hold], now).get(hold.id)


def release_asks(db: Session, holds: Collection[EvidenceHold], now: dt.datetime | None = None) -> dict[int, ReleaseAsk]:
    """`release_ask` for each of `holds` (those with none waiting left out), in one read: only the entries of the
    last RELEASE_ASK_DAYS are read (`at` is indexed), not the whole trail's requests."""
    return second_person.waiting_asks(db, RELEASE_ASKED, "hold", {h.id: h.placed_at for h in holds}, now)


def hold_for_revocation(
    db: Session, session_id: str, actor: str, target: str, note: str, hold_days: int
) -> tuple[Evidence, EvidenceHold | None]:
    """The hold a revocation as impersonation or wrong accept places on the revoked session (its row locked by the
    revocation already) for `hold_days`; what became of the media (held, or nothing to hold: purged, or none
    stored), and the hold placed."""
    return hold_if_stored(db, session_id, HoldReason.REVOKED, actor, target, note, hold_days)


def hold_if_stored(
    db: Session, session_id: str, reason: HoldReason, actor: str, target: str, note: str, hold_days: int
) -> tuple[Evidence, EvidenceHold | None]:
    """The hold the service places itself on a session under suspicion (a revocation; a certification dated after
    a death registered later, service/features/console/alt_cert.py), the session's row locked before any later
    table's (lock_order.py): what became of the media (held, or nothing to hold: purged, or none stored), and the
    hold placed."""
    s = db.get(CertSession, session_id, with_for_update=True, populate_existing=True)
    if s is None:
        return Evidence.NONE, None
    state = media_state(s)
    if state is not Evidence.HELD:
        return state, None
    return state, place_hold(db, session_id, reason, note[:MAX_NOTE_CHARS], actor, target, hold_days)


def holds_in_force(db: Session, session_ids: Iterable[str], now: dt.datetime) -> dict[str, list[HoldView]]:
    """The holds in force on each of `session_ids` (those with none are left out), the latest first."""
    ids = list(session_ids)
    if not ids:
        return {}
    rows = db.scalars(
        select(EvidenceHold)
        .where(EvidenceHold.session_id.in_(ids), EvidenceHold.released_at.is_(None))
        .order_by(EvidenceHold.placed_at.desc(), EvidenceHold.id.desc())
    ).all()
    live = [hold for hold in rows if in_force(hold, now)]
    asks = release_asks(db, live, now)  # one read for all of them
    out: dict[str, list[HoldView]] = {}
    for hold in live:
        out.setdefault(hold.session_id, []).append(HoldView(hold, hold_end(hold), asks.get(hold.id)))
    return out


@dataclass(frozen=True)
class EvidenceOnPage:
    """What the person's page shows of its sessions' media: each one's state, and the holds in force."""

    states: dict[str, Evidence]
    holds: dict[str, list[HoldView]]
    hold_days: int  # how long a hold placed now lasts (EVIDENCE_HOLD_DAYS as it stands)


def evidence_of(db: Session, session_ids: Iterable[str], now: dt.datetime, hold_days: int) -> EvidenceOnPage:
    """The media state and holds in force of each of `session_ids`."""
    ids = set(session_ids)
    rows = db.scalars(select(CertSession).where(CertSession.id.in_(ids))).all() if ids else []
    return EvidenceOnPage({s.id: media_state(s) for s in rows}, holds_in_force(db, ids, now), hold_days)
