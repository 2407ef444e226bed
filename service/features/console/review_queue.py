"""The review queue: sessions the machine could not settle, oldest first; claims so that two reviewers never
decide the same case; decisions, with a supervisor's second decision for rejections of proxy sessions.

A case is open while its session is `review` (or a job that failed). Accept and reject are settled through
`service.certification.review.settle` (the same cycle effects as an automatic accept); "retry" closes the case asking
the
citizen for a new attempt, which does not count as a failed attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from service.certification.catalog import staff_label
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, CertSession, Channel, SessionDecision, SessionState, utcnow
from service.certification.proxy_face import FACE_REVIEW_BAND, MACHINE_UNCHECKED
from service.certification.review import REVOKED_BEFORE, accept_needs_second, lock_person, notify_decision, settle
from service.features.console import accounts, audit_chain, scope
from service.features.console.auth import Role, Staff
from service.features.console.config import ConsoleConfig
from service.features.console.labels import ACTOR_KIND_ZH, DECISION_ZH, NOTE_ZH
from service.features.console.models import ReviewClaim, ReviewDecision, StaffUser
from service.features.proxy.models import ProxyClaim, subject_of

Ts = TypeVarTuple("Ts")
DECISIONS = (SessionDecision.ACCEPT, SessionDecision.REJECT, SessionDecision.RETRY)
PROXY_REJECT = "proxy_reject"
# decide_case's answer when a supervisor's second decision differs from the first and itself takes two people.
OVERRULED = "overruled"


class CaseError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TakenOver(CaseError):
    """Another reviewer (`holder`, a display name) holds the case since `at` (naive UTC), mostly one who took over
    the deciding reviewer's lapsed claim: the page names them, so the reviewer knows their decision was not saved
    and whom to call."""

    def __init__(self, holder: str, at: dt.datetime | None) -> None:
        super().__init__(f"该案件现由 {holder} 领取，您的决定未保存")
        self.holder, self.at = holder, at


class SettledMeanwhile(CaseError):
    """The case was settled by someone else since the reviewer opened it (a colleague who took the lapsed claim
    over, or the operator API): `by` (a display name, or the API with its reviewer) made it `decision` at `at`
    (naive UTC; None: not known), named on the page so the reviewer knows their own decision was not saved."""

    def __init__(self, by: str, decision: str, at: dt.datetime | None) -> None:
        super().__init__(f"该案件已由 {by} 处理为“{DECISION_ZH.get(decision, decision)}”，您的决定未保存")
        self.by, self.decision, self.at = by, decision, at


class NoCase(CaseError):
    """No such case in the staff member's scope (one answer for both)."""


class AlreadyDecided(CaseError):
    """The decision sent is the reviewer's own, already recorded (a second click on 提交决定): nothing was lost."""


@dataclass(frozen=True)
class Person:
    """Whom a case is about, as the pages show it: the beneficiary, or for a relative's verification session
    (which has none) the identity they claim."""

    name: str
    id_masked: str
    region: str  # "" when unknown (a claim made before migration 0010 whose number the roster lacks)


def person_of(db: Session, s: CertSession, b: Beneficiary | None) -> Person:
    subject = b if b is not None else subject_of(db, s)
    if subject is None:
        return Person("—", "", "")
    return Person(subject.name, subject.id_masked, subject.region)


@dataclass
class QueueItem:
    session: CertSession
    beneficiary: Beneficiary | None  # None: a relative's verification session
    claim: ReviewClaim | None
    claimed_by: str | None
    age_h: float
    person: Person

    @property
    def awaiting_supervisor(self) -> bool:
        return self.claim is not None and self.claim.pending_decision is not None


def open_case_filter() -> ColumnElement[bool]:
    return or_(
        (CertSession.state == SessionState.DECIDED) & (CertSession.decision == SessionDecision.REVIEW),
        CertSession.state == SessionState.FAILED,
    )


def since(s: CertSession) -> dt.datetime:
    return s.decided_at or s.queued_at or s.created_at


def waiting_since() -> ColumnElement[dt.datetime]:
    """`since` in SQL: what the queue sorts by and the dashboard ages its backlog from."""
    # Failed jobs have no decided_at: coalesced with the queue time so both kinds sort by waiting time.
    return func.coalesce(CertSession.decided_at, CertSession.queued_at, CertSession.created_at)


def _open_cases(q: Select[*Ts], staff: Staff | None) -> Select[*Ts]:
    """`q` (over CertSession) joined to each case's people and claim row, limited to the open cases in `staff`'s
    region scope, oldest first (then by id: one order for the queue's pages)."""
    return (
        # Verification sessions have no beneficiary, but a claim, with its region.
        scope.join_session_people(q)
        .outerjoin(ReviewClaim, ReviewClaim.session_id == CertSession.id)
        .where(open_case_filter(), scope.region_filter(staff, scope.SESSION_REGION))
        .order_by(waiting_since(), CertSession.id)
    )


@dataclass
class QueuePage:
    """One page of the queue: its cases, how many open cases the filters match in all, the place of the first
    one shown (1-based; 0: none shown), and the cursor of the next page (the last case shown, by its place in the
    queue's order: `page_cursor`; None: no more)."""

    items: list[QueueItem]
    total: int
    first: int
    after: str | None

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0


def list_queue(
    db: Session,
    channel: str = "",
    region: str = "",
    reason: str = "",
    limit: int = 200,
    staff: Staff | None = None,
    after: str = "",
) -> QueuePage:
    """The open cases, oldest first, `limit` of them after the cursor `after` (`page_cursor`: a keyset on the
    queue's order, so a page stays put while cases ahead of it, or the last case of the page before, are
    settled); only those in `staff`'s region scope (None: every case). BadCursor: `after` is no cursor.

    The matching cases' ids are read whole (light columns), so the page can say how many there are and where it
    starts: the reason filter works on a JSON list, filtered here the same on SQLite and PostgreSQL."""
    light = _open_cases(select(CertSession.id, waiting_since(), CertSession.reasons), staff)
    light = _filtered(light, channel, region)
    order = [(sid, at) for sid, at, reasons in db.execute(light) if not reason or reason in (reasons or [])]
    start = _start_after(order, after)
    page = order[start : start + limit]
    more = start + limit < len(order)
    cursor = page_cursor(*page[-1]) if page and more else None
    return QueuePage(_items(db, [sid for sid, _ in page]), len(order), start + 1 if page else 0, cursor)


class BadCursor(CaseError):
    """A next-page link that is no cursor of the queue (altered by hand, or one made before cursors carried the
    waiting time whose case has left the queue since): the reviewer starts again from the first page."""


BAD_CURSOR_ZH = "翻页链接已失效，请回到最早的案件重新翻页"
_CURSOR_SEP = "~"


def _filtered(q: Select[*Ts], channel: str, region: str) -> Select[*Ts]:
    """`q` (over `_open_cases`) limited by the queue page's channel and region filters (the reason filter works on
    a JSON list: the callers apply it to the rows read, the same on SQLite and PostgreSQL)."""
    if channel:
        q = q.where(CertSession.channel == channel)
    if region:
        q = q.where(or_(Beneficiary.region.startswith(region), ProxyClaim.region.startswith(region)))
    return q


def page_cursor(sid: str, at: dt.datetime) -> str:
    """The next page's cursor after case `sid`, waiting since `at`: both, so the page is found again when the case
    has been settled meanwhile (settling rewrites the row's decided_at, which the queue orders by)."""
    return f"{at.isoformat()}{_CURSOR_SEP}{sid}"


def _start_after(order: Sequence[tuple[str, dt.datetime]], after: str) -> int:
    """Where the page after the cursor `after` begins in `order` (the queue's order: waiting time, then id): at
    the first case past the cursor's place, whether or not its own case is still open. A bare case id (a link
    from a page shown before cursors carried the time) is followed while that case is still in the queue."""
    if not after:
        return 0
    at_text, sep, sid = after.rpartition(_CURSOR_SEP)  # no separator: the whole as the id
    try:
        at = dt.datetime.fromisoformat(at_text) if sep else None
        if at is not None and at.tzinfo is not None:  # the queue's times are naive UTC (an edited link)
            at = at.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # not a time; or one whose UTC is outside the calendar (0001-01-01+01:00)
        raise BadCursor(BAD_CURSOR_ZH) from None
    for i, (open_sid, t) in enumerate(order):
        if open_sid == sid:
            return i + 1
        # The ids compared only among cases of the same waiting time, as the database ordered them.
        if at is not None and (t > at or (t == at and open_sid > sid)):
            return i
    if at is None:
        raise BadCursor(BAD_CURSOR_ZH)
    return len(order)


def _items(db: Session, ids: Sequence[str]) -> list[QueueItem]:
    """The queue rows of the cases `ids`, in that order, with their people, claim and its holder's name."""
    holder = aliased(StaffUser)
    q = (
        scope.join_session_people(select(CertSession, Beneficiary, ReviewClaim, holder.display_name))
        .outerjoin(ReviewClaim, ReviewClaim.session_id == CertSession.id)
        .outerjoin(holder, holder.id == ReviewClaim.claimed_by)
        .where(CertSession.id.in_(ids))
    )
    now = utcnow()
    rows = {s.id: (s, b, claim, name) for s, b, claim, name in db.execute(q)} if ids else {}
    return [
        QueueItem(s, b, claim, name, (now - since(s)).total_seconds() / 3600, person_of(db, s, b))
        for s, b, claim, name in (rows[sid] for sid in ids if sid in rows)
    ]


def open_session(db: Session, session_id: str, staff: Staff) -> CertSession:
    """The case `session_id`; one answer for an unknown case and one outside `staff`'s region scope."""
    s = scope.case(db, staff, session_id)
    if s is None:
        raise NoCase("案件不存在")
    return s


def is_open(s: CertSession) -> bool:
    return (s.state == SessionState.DECIDED and s.decision == SessionDecision.REVIEW) or s.state == SessionState.FAILED


def lapsed(c: ReviewClaim, ttl_s: int, now: dt.datetime | None = None) -> bool:
    """Whether `c`'s holder has kept the case past the claim's lifetime (`claim_ttl_s`): another reviewer may take
    it over, and the operator API may settle it."""
    return c.claimed_at is None or ((now or utcnow()) - c.claimed_at).total_seconds() > ttl_s


class SecondRefused(CaseError):
    """`staff` would be the second person of a first decision they may not settle: its first decider, or either
    account unconfirmed (accounts.check_second_person). `code`: why (recorded)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_second(staff: Staff, c: ReviewClaim, db: Session | None = None) -> None:
    """A first decision awaiting a second (`c.pending_decision`) is for a supervisor other than its first decider
    to settle: anyone else may neither claim the case (and hold it off the supervisors) nor decide it. `db` None:
    only `staff`'s own account is read (a page's buttons), not the first decider's (Part BK)."""
    if c.pending_decision is None:
        return
    if not staff.has(Role.SUPERVISOR):
        raise CaseError("该案件等待主管复核")
    if c.pending_by == staff.id:
        raise SecondRefused("复核必须由另一位主管完成", "CASE_SECOND_SELF")
    try:
        accounts.check_second_person(db, staff, c.pending_by)  # either account unconfirmed (Part BK)
    except ServiceError as exc:
        raise SecondRefused(exc.message_zh, exc.code) from None


def _second_or_refuse(db: Session, staff: Staff, c: ReviewClaim) -> None:
    """`check_second`, its refusal of a second person recorded (`case.second.refused`) and committed before the
    error rolls the unit back, so repeated tries to act alone show; not inside 下一件's savepoint (that skips the
    case, as `may_claim` does)."""
    try:
        check_second(staff, c, db)
    except SecondRefused as exc:
        if not db.in_nested_transaction():
            audit_chain.record(db, staff.actor, "case.second.refused", c.session_id, {"reason": exc.code})
            db.commit()
        raise


class ReclaimTooSoon(CaseError):
    """`staff` gave the case back once their claim's lifetime had run out (or it ran out since), less than
    `reclaim_wait_s` ago: colleagues have it first, or 放弃 and 领取 would renew a lapsed claim for ever. `at`: when
    the giver may claim it again (naive UTC)."""

    def __init__(self, at: dt.datetime, left_s: float, wait_s: int) -> None:
        minutes = max(1, -(-int(left_s) // 60))  # rounded up: "0 分钟" would read as "now"
        super().__init__(
            f"您已将该案件放回队列，且您原来的领取已超过时限：放回后 {wait_s // 60} 分钟内您不能重新领取，"
            f"其他审核员现在即可领取。请约 {minutes} 分钟后再试"
        )
        self.at = at


def reclaim_at(c: ReviewClaim | None, staff_id: int, cfg: ConsoleConfig, now: dt.datetime) -> dt.datetime | None:
    """When `staff_id` may claim again the case whose claim row is `c`, which they gave back (放弃) with nobody's
    claim since; None: now. While the given-back claim's lifetime runs, claiming it again continues it (claim_case);
    once it has run out, the giver waits `reclaim_wait_s` from the giving back (`released_at`) while colleagues may
    claim it, so a lapsed claim is not renewed by 放弃 and 领取 (a release before migration 0023 has no time)."""
    if c is None or c.claimed_by is not None or c.released_by != staff_id or c.released_at is None:
        return None
    if not lapsed(c, cfg.claim_ttl_s, now):
        return None
    at = c.released_at + dt.timedelta(seconds=cfg.reclaim_wait_s)
    return at if at > now else None


def may_claim(staff: Staff, c: ReviewClaim | None, cfg: ConsoleConfig, db: Session | None = None) -> bool:
    """Whether `staff` may claim an open case whose claim row is `c` and does not hold it yet: nobody holds it, or
    its holder's claim has lapsed, and it awaits no second decision `staff` cannot give, and `staff` did not just
    give it back past its lifetime (`reclaim_at`) (the 领取 / 接手 buttons; `db`: the first decider's account read
    too)."""
    if c is None:
        return True
    try:
        check_second(staff, c, db)
    except CaseError:
        return False
    if reclaim_at(c, staff.id, cfg, utcnow()) is not None:
        return False
    return c.claimed_by is None or (c.claimed_by != staff.id and lapsed(c, cfg.claim_ttl_s))


def claim_case(db: Session, cfg: ConsoleConfig, staff: Staff, session_id: str) -> None:
    """`staff` holds the case from now on. A claim's lifetime runs from its holder's first claim: claiming again
    continues it (the holder keeps the case, and may decide it, but past the lifetime a colleague may take it over
    and the operator API settle it), so nobody holds a case off the others for longer than `claim_ttl_s` by
    claiming it over and over. Giving the case back and claiming it again with nobody's claim in between continues
    it too while it is still running; once it has run out, the new claim has a lifetime of its own (a case given
    back yesterday and handed out again by 下一件 is not lapsed at once, open to a colleague's 接手). Its giver may
    not claim a case given back past the lifetime again for `reclaim_wait_s` (ReclaimTooSoon, `reclaim_at`)."""
    s = open_session(db, session_id, staff)
    if not is_open(s):
        raise CaseError("该案件已处理")
    now = utcnow()
    # populate_existing: a claim row the caller already loaded (下一件's queue) is re-read under the lock, so a
    # claim another reviewer made since then is seen, not overwritten.
    c = db.get(ReviewClaim, session_id, with_for_update=True, populate_existing=True)
    if c is None:
        db.add(ReviewClaim(session_id=session_id, claimed_by=staff.id, claimed_at=now))
    else:
        _second_or_refuse(db, staff, c)
        if c.claimed_by not in (None, staff.id) and not lapsed(c, cfg.claim_ttl_s, now):
            raise CaseError("该案件已被其他审核员领取")
        wait_until = reclaim_at(c, staff.id, cfg, now)
        if wait_until is not None:
            raise ReclaimTooSoon(wait_until, (wait_until - now).total_seconds(), cfg.reclaim_wait_s)
        given_back = c.claimed_by is None and c.released_by == staff.id
        resumed = c.claimed_by == staff.id or (given_back and not lapsed(c, cfg.claim_ttl_s, now))
        c.claimed_by, c.released_by, c.released_at = staff.id, None, None
        if not (resumed and c.claimed_at is not None):
            c.claimed_at = now
    # The primary key makes two simultaneous first claims collide at flush: one of them fails.
    db.flush()
    audit_chain.record(db, staff.actor, "case.claim", session_id)


def claim_next(
    db: Session, cfg: ConsoleConfig, staff: Staff, channel: str = "", region: str = "", reason: str = ""
) -> str | None:
    """ "下一件": the reviewer's own open claim first, else the oldest case this reviewer may decide (not held by
    another, not a second decision a reviewer or its first decider cannot give, in the reviewer's region scope,
    among those the queue page's filters show), one nobody holds before one whose claim lapsed, claimed. None:
    nothing left."""
    # The whole queue, not the page's first 200: one's own claim, or a case one may take, can lie further on.
    own = db.scalar(_open_cases(select(CertSession.id), staff).where(ReviewClaim.claimed_by == staff.id).limit(1))
    if own is not None:  # whatever the filters: the case the reviewer holds is theirs to finish
        return str(own)
    q = _filtered(_open_cases(select(CertSession.id, ReviewClaim, CertSession.reasons), staff), channel, region)
    cases = [(sid, c) for sid, c, reasons in db.execute(q) if not reason or reason in (reasons or [])]
    # Cases nobody holds before lapsed claims (each in queue order): a colleague's lapsed claim is taken over only
    # when nothing else is left, as its holder may still be deciding it (a call to the family).
    for sid, c in sorted(cases, key=lambda case: case[1] is not None and case[1].claimed_by is not None):
        if c is not None and not may_claim(staff, c, cfg, db):
            continue
        try:
            with db.begin_nested():  # a lost race for one case only skips that case
                claim_case(db, cfg, staff, sid)
        except (CaseError, IntegrityError):
            continue
        return str(sid)
    return None


def release_claims_outside(db: Session, user_id: int, prefixes: Sequence[str]) -> list[str]:
    """A member of staff's claims on cases their new scope (`prefixes`) no longer covers, released at once (the
    holder can no longer open them; others would otherwise wait for the claim's lifetime); their session ids. A
    first decision awaiting a second stays with the claim row (only the holder goes)."""
    released: list[str] = []
    for c in db.scalars(select(ReviewClaim).where(ReviewClaim.claimed_by == user_id).order_by(ReviewClaim.session_id)):
        s = db.get(CertSession, c.session_id)
        if s is not None and not scope.within(prefixes, scope.session_region(db, s)):
            c.claimed_by, c.claimed_at = None, None
            released.append(c.session_id)
    return released


def release_case(db: Session, staff: Staff, session_id: str) -> None:
    # Locked and re-read (claim_case's rule): a colleague taking the lapsed claim over at this moment is waited for,
    # then seen; read unlocked, the release cleared the colleague's claim.
    c = db.get(ReviewClaim, session_id, with_for_update=True, populate_existing=True)
    if c is None or c.claimed_by != staff.id:
        raise CaseError("您没有领取该案件")
    # The time of the claim stays with who gave it back: claiming it again continues that claim (claim_case); the
    # time of giving it back decides when its giver may claim it again once that claim has run out (reclaim_at).
    c.claimed_by, c.released_by, c.released_at = None, staff.id, utcnow()
    audit_chain.record(db, staff.actor, "case.release", session_id)


def decide_case(db: Session, ctx: ServiceContext, staff: Staff, session_id: str, decision: str, reason: str) -> str:
    """Apply one staff decision. Returns "settled", "awaiting_supervisor" or `OVERRULED` (`_second_decision`)."""
    if decision not in DECISIONS:
        raise CaseError("无效的决定")
    reason = reason.strip()
    if not reason:
        raise CaseError("请填写理由")
    s = open_session(db, session_id, staff)
    # Locked and re-read: the operator API may settle the same case at this moment (a claim past its lifetime
    # does not hold it off); a "retry" written over its accept would leave a certification behind.
    db.refresh(s, with_for_update=True)
    c = _check_deciding(db, staff, s, db.get(ReviewClaim, session_id, with_for_update=True))
    if decision == SessionDecision.ACCEPT:
        lock_person(db, s)  # after the claim, before `second_needed` reads the person's revocations
    if c.pending_decision is not None:
        return _second_decision(db, ctx, staff, s, c, decision, reason)
    why = second_needed(db, s, decision)
    if why:  # a first decision: a supervisor other than its first decider settles the case (check_second)
        _first_decision(db, staff, s, c, decision, reason, {"second_needed": why})
        return "awaiting_supervisor"
    _settle(db, ctx, staff, s, decision, reason, "final")
    db.delete(c)
    return "settled"


def _check_deciding(db: Session, staff: Staff, s: CertSession, c: ReviewClaim | None) -> ReviewClaim:
    """`staff`'s claim `c` on `s`; a decision is refused unless they hold it, saying why in the reviewer's terms:
    their own decision already recorded (a double submit), a colleague who took the lapsed claim over (named), or
    no claim at all."""
    last = db.scalar(select(ReviewDecision).where(ReviewDecision.session_id == s.id).order_by(ReviewDecision.id.desc()))
    if not is_open(s):
        if last is not None and last.user_id == staff.id:
            raise AlreadyDecided("您已提交过决定，该案件已处理")
        raise _settled_by(db, s, last)
    if c is not None and c.claimed_by == staff.id:
        return c
    if c is not None and c.claimed_by is None and c.pending_by == staff.id:
        raise AlreadyDecided("您已提交过决定，等待另一位主管复核")
    if c is not None and c.claimed_by is not None:
        holder = db.get(StaffUser, c.claimed_by)
        raise TakenOver(holder.display_name if holder else "其他审核员", c.claimed_at)
    raise CaseError("请先领取该案件")


def _settled_by(db: Session, s: CertSession, last: ReviewDecision | None) -> CaseError:
    """Why a decision on the closed case `s` is refused, naming who settled it and how: the last staff decision
    (`last`) when it settled the case, else the operator API's review record (by its reviewer), else plain words
    (the case left the queue another way)."""
    if last is not None and last.stage != "first":
        who = db.get(StaffUser, last.user_id)
        return SettledMeanwhile(who.display_name if who else "其他审核员", last.decision, last.created_at)
    record = (s.result or {}).get("review")
    if isinstance(record, dict) and record.get("decision"):
        by = f"{dict(ACTOR_KIND_ZH)['api:']}（审核人 {record.get('reviewer') or '—'}）"
        return SettledMeanwhile(by, str(record["decision"]), s.decided_at)
    return CaseError("该案件已处理，您的决定未保存")


def second_needed(db: Session, s: CertSession, decision: str) -> list[str]:
    """Why `decision` on case `s` is only a first decision, a supervisor other than its first decider giving the
    second (the one rule of four eyes on a case; empty: one reviewer settles it):

    - `proxy_reject`: rejecting a relative's certification may cut off a pensioner who cannot come in;
    - an accept the machine doubted as another person's face (on a relative's session also as a live elder's), or
      of a person a certification of whom was revoked as 冒领 or a wrong accept (the core's rule,
      `review.accept_needs_second`: docs/security.md, Part BC).

    A supervisor's second decision other than the first that is itself in this list becomes the new first decision
    (`_second_decision`): the decision that settles such a case is always two people's."""
    if decision == SessionDecision.REJECT and s.channel == Channel.PROXY:
        return [PROXY_REJECT]
    return accept_needs_second(db, s) if decision == SessionDecision.ACCEPT else []


def second_needed_zh(db: Session, s: CertSession, c: ReviewClaim | None) -> list[str]:
    """What the case page says of an accept that needs a second person (`second_needed`), in Chinese. Nothing
    when the first decision waiting on the case (`c`) is an accept: a supervisor's accept then settles it."""
    if c is not None and c.pending_decision == SessionDecision.ACCEPT:
        return []
    return [_second_zh(w, s) for w in second_needed(db, s, SessionDecision.ACCEPT)]


def _second_zh(why: str, s: CertSession) -> str:
    if why == REVOKED_BEFORE:
        return "该人员曾有认证因冒领或错误受理被撤销"
    if why == FACE_REVIEW_BAND:
        return "机器提示可能非本人：代办认证的人脸相似度处于复核区，未达通过线"
    if why == MACHINE_UNCHECKED:
        who = "代办认证" if s.channel == Channel.PROXY else "本人认证"
        return f"{who}未经机器人脸比对（处理失败或没有人脸相似度），无法排除他人出镜"
    return f"机器提示可能非本人：{NOTE_ZH.get(why) or staff_label(why)}"


def _first_decision(
    db: Session, staff: Staff, s: CertSession, c: ReviewClaim, decision: str, reason: str, detail: dict[str, object]
) -> None:
    """`staff`'s `decision` waits for a supervisor other than `staff` (check_second); the case goes back to the
    queue."""
    c.pending_decision, c.pending_reason, c.pending_by, c.pending_at = decision, reason, staff.id, utcnow()
    c.claimed_by, c.claimed_at = None, None
    db.add(ReviewDecision(session_id=s.id, user_id=staff.id, stage="first", decision=decision, reason=reason))
    audit_chain.record(db, staff.actor, "case.decide.first", s.id, {"decision": decision, "reason": reason} | detail)


def _second_decision(
    db: Session, ctx: ServiceContext, staff: Staff, s: CertSession, c: ReviewClaim, decision: str, reason: str
) -> str:
    """The supervisor's decision on a case whose first decision waits. It settles the case when it agrees with the
    first, or when it takes one person anyway (a retry; a reject of a self session). A different decision that
    takes two (an accept of a doubted case after a first reject, a reject of a proxy case after a first accept)
    was said by this supervisor alone: it becomes the new first decision, and another supervisor settles it."""
    _second_or_refuse(db, staff, c)
    why = second_needed(db, s, decision)
    if why and decision != c.pending_decision:
        _first_decision(db, staff, s, c, decision, reason, {"second_needed": why, "overrules": c.pending_decision})
        return OVERRULED
    _settle(db, ctx, staff, s, decision, reason, "second")
    db.delete(c)
    return "settled"


def _settle(
    db: Session, ctx: ServiceContext, staff: Staff, s: CertSession, decision: str, reason: str, stage: str
) -> None:
    db.add(ReviewDecision(session_id=s.id, user_id=staff.id, stage=stage, decision=decision, reason=reason))
    if decision == SessionDecision.RETRY:
        result = dict(s.result or {})
        result["review"] = {
            "machine_decision": s.decision,
            "decision": SessionDecision.RETRY.value,
            "reviewer": staff.username,
            "note": reason,
        }
        s.result, s.decision, s.state, s.decided_at = result, SessionDecision.RETRY, SessionState.DECIDED, utcnow()
        notify_decision(db, ctx, s)
    else:
        settle(db, ctx, s, decision, staff.username, reason, staff.actor, case_checked=True)
    audit_chain.record(db, staff.actor, f"case.decide.{stage}", s.id, {"decision": decision, "reason": reason})


def held_in_console(db: Session, s: CertSession) -> None:
    """The console's settle guard (service.certification.contract.SettleGuard): a decision from elsewhere (the
    operator API) may not settle a case a reviewer holds now, nor one whose rejection awaits a supervisor's
    second decision (that would skip the second person the rule asks for)."""
    c = db.get(ReviewClaim, s.id)
    if c is None:
        return
    if c.pending_decision is not None:
        raise ServiceError("CASE_HELD", "the case awaits a supervisor's second decision in the console")
    if c.claimed_by is not None and not lapsed(c, ConsoleConfig().claim_ttl_s):
        raise ServiceError("CASE_HELD", "a reviewer holds the case in the console")


def decisions_of(db: Session, session_id: str) -> list[tuple[ReviewDecision, str]]:
    rows = db.execute(
        select(ReviewDecision, StaffUser.display_name)
        .join(StaffUser, StaffUser.id == ReviewDecision.user_id)
        .where(ReviewDecision.session_id == session_id)
        .order_by(ReviewDecision.id)
    ).all()
    return [(d, name) for d, name in rows]
