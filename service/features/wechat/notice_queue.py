"""WeChat notifications, (1) the queue: which notices are due, each recorded once (a unique row per kind +
reference + openid), so a notice goes out at most once however often the schedule runs or however many
schedulers there are (notify.py: the whole; notice_send.py delivers them, notice_message.py composes them).

Reminders are correct by construction (issue 21): only to the openid that certified the person themselves
through the H5 pages (an accepted self session, not one merely opened), only for a real, lapsing or lapsed
validity date, a suspension notice only when the status is really ``suspended``, never while a session of that
person is in flight or awaits review, nor one telling them to certify (`due_soon`, `overdue`) while the cycle's
rule shelters them (`sheltered`).
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Sequence

from sqlalchemy import ColumnElement, String, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import (
    CycleRules,
    CycleState,
    add_months,
    being_decided,
    cycle_bounds,
    cycle_state,
    in_cycle_state,
    stopped_by_roster,
    stopped_by_roster_sql,
)
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionDecision,
    SessionState,
    utcnow,
)
from service.features.console.assist import closing_number
from service.features.console.models import AssistRequest
from service.features.wechat.accounts import made_a_revoked_session, own_accounts
from service.features.wechat.models import WeChatNotice, WeChatSessionLink
from service.features.wechat.revoked import REVOKED, revocations_to_tell, told_today
from service.infra import clock

# Only recent decisions are scanned for result messages: the scan stays small as sessions accumulate.
RESULT_WINDOW = dt.timedelta(days=7)
STAFF_DECISION = "review"  # notice kind of a staff decision on a review case (ref: the session id)
ASSIST = "assist"  # a citizen's manual-review / home-visit request closed (ref: `assist_ref`, the request id)
# The video an open manual-review request waited on deleted after its hold (ref: `video_purged_ref`, the person's id
# first, as a reminder's: held at night and while a session of theirs is under way, notice_send.DAYTIME).
ASSIST_VIDEO = "assist_video"
# Reminders per transaction of the run (`queue_notices`), and persons per look-up.
BATCH = 500


def _record(db: Session, kind: str, ref: str, openid: str) -> bool:
    """Insert the notice row unless it exists. True when this call created it."""
    exists = db.scalar(
        select(WeChatNotice.id).where(WeChatNotice.kind == kind, WeChatNotice.ref == ref, WeChatNotice.openid == openid)
    )
    if exists is not None:
        return False
    try:
        with db.begin_nested():  # a concurrent scheduler may insert the same row: the constraint decides
            db.add(WeChatNotice(kind=kind, ref=ref, openid=openid))
    except IntegrityError:
        return False
    return True


# The reminders, each owed in one status and one cycle state (cycle.cycle_state; a suspension's only once the cycle
# run recorded it, `suspended_on`): the one definition `reminder_kind` (a person loaded) and `reminder_sql` (the
# notice run's query) both read.
SUSPENDED = "suspended"
OVERDUE = "overdue"
DUE_SOON = "due_soon"
REMINDERS = (
    (DUE_SOON, BeneficiaryStatus.ACTIVE, CycleState.DUE_SOON),
    (OVERDUE, BeneficiaryStatus.ACTIVE, CycleState.OVERDUE),
    (SUSPENDED, BeneficiaryStatus.SUSPENDED, CycleState.OVERDUE),
)


# The reminders that tell the person to certify (by their date: 请在…前完成认证; at once: 请尽快完成认证), held while
# `sheltered` says the office is deciding what they filed in time. A suspension's says only how payment resumes.
TO_CERTIFY = frozenset({DUE_SOON, OVERDUE})


def reminder_floor(today: dt.date, rules: CycleRules) -> dt.date:
    """The earliest validity date the run every minute reads (`reminder_sql`), a validity period back: without a
    floor it walked the index entries of everyone ever suspended, more each year (docs/security.md, Part CP). An
    earlier date is still reminded of, once per cycle (`reminder_date`), by a walk once a day (`lapsed_long_ago`)."""
    return add_months(today, -rules.validity_months)


def reminder_date(until: dt.date, today: dt.date, rules: CycleRules) -> dt.date:
    """The date a reminder of validity date `until` is about on `today`: the period its notice is recorded once for
    (`reminder_ref`). `until` itself; for a date that lapsed more than a validity period ago (a schedule stopped that
    long, a revocation that put back such a date), its latest anniversary by whole validity periods, not before
    `reminder_floor`: such a person is told once a cycle. Before (Part CT's floor), never: a person suspended over a
    year ago and never told was never reminded."""
    floor, months = reminder_floor(today, rules), rules.validity_months
    if until >= floor:
        return until
    periods = ((floor.year - until.year) * 12 + floor.month - until.month) // months  # exact, or one short
    while add_months(until, periods * months) < floor:
        periods += 1
    return add_months(until, periods * months)


def reminder_kind(b: Beneficiary, today: dt.date, rules: CycleRules) -> str | None:
    """The reminder `b` is due on `today`, if any (`REMINDERS`): due_soon / overdue (still paid) / suspended."""
    if b.valid_until is None:
        return None  # undated: nothing true to remind of (service/certification/cycle.py)
    if stopped_by_roster(b):
        return None  # the benefit system stopped paying them here (transferred out): nothing of ours to remind of
    state = cycle_state(b.status, b.valid_until, today, rules)
    for kind, status, when in REMINDERS:
        if b.status == status and state is when and (kind != SUSPENDED or b.suspended_on is not None):
            return kind
    return None


def reminder_sql(
    today: dt.date, rules: CycleRules, *, long_ago: bool = False
) -> tuple[ColumnElement[bool], ColumnElement[str]]:
    """`reminder_kind` as SQL on `beneficiaries`, from the same `REMINDERS` and dates: (the person is owed a
    reminder, which). The first condition bounds the (status, valid_until) index's range: from `reminder_floor` to
    the reminder horizon, so the run every minute reads that window only, not everyone ever past their date; or
    (`long_ago`: the walk once a day) the dates before the floor. The two ranges together are `reminder_kind`'s."""
    whens = []
    for kind, status, when in REMINDERS:
        owed = (Beneficiary.status == status) & in_cycle_state(when, today, rules)
        whens.append((owed & Beneficiary.suspended_on.is_not(None) if kind == SUSPENDED else owed, literal(kind)))
    floor = reminder_floor(today, rules)
    dates = (
        Beneficiary.valid_until < floor
        if long_ago
        else (Beneficiary.valid_until >= floor) & (Beneficiary.valid_until < cycle_bounds(today, rules)[1])
    )
    statuses = Beneficiary.status.in_(sorted({status for _, status, _ in REMINDERS}))
    window = and_(statuses, dates, ~stopped_by_roster_sql())  # `reminder_kind`'s cycle.stopped_by_roster
    return and_(window, or_(*(owed for owed, _ in whens))), case(*whens)


def in_flight(now: dt.datetime) -> ColumnElement[bool]:
    """A session that is not final: uploads awaited, queued, being processed, or an open review case (the
    same cases as service.features.console.review_queue.open_case_filter: review decision or failed job)."""
    return or_(
        (CertSession.state == SessionState.OPEN) & (CertSession.expires_at > now),
        CertSession.state.in_((SessionState.QUEUED, SessionState.PROCESSING, SessionState.FAILED)),
        (CertSession.state == SessionState.DECIDED) & (CertSession.decision == SessionDecision.REVIEW),
    )


def busy(db: Session, beneficiary_id: int, now: dt.datetime) -> bool:
    return beneficiary_id in _busy(db, [beneficiary_id], now)


def reminder_ref(beneficiary_id: int, until: dt.date) -> str:
    # One reminder per kind and validity period: a new certification moves valid_until and re-arms them.
    return f"{beneficiary_id}:{until.isoformat()}"


def person_reminder_ref(b: Beneficiary, today: dt.date, rules: CycleRules) -> str | None:
    """The ref of `b`'s reminder on `today` (None: undated): its period's, `reminder_date`, so a date that lapsed long
    ago re-arms each cycle. Recorded by the run, checked again when the notice is sent (notice_message.compose)."""
    return None if b.valid_until is None else reminder_ref(b.id, reminder_date(b.valid_until, today, rules))


def maybe_due(db: Session, today: dt.date, rules: CycleRules) -> ColumnElement[bool]:
    """A condition on `beneficiaries`: the person may be owed a reminder today. Their date is within the reminder
    window (`reminder_sql`: an index on (status, valid_until) bounds it), they were certified from the H5 pages at
    least once, and no reminder of today's kind for their validity period is recorded yet (to an account of theirs
    that made no revoked certification of them). The exact rule (`reminder_kind`, the own account, `busy`) is then
    applied to these few only: the run every minute no longer reads the whole roster (docs/wechat.md)."""
    owed, kind = reminder_sql(today, rules)
    day = (
        func.to_char(Beneficiary.valid_until, "YYYY-MM-DD")
        if db.get_bind().dialect.name == "postgresql"
        else cast(Beneficiary.valid_until, String)  # SQLite keeps a date as its ISO text
    )
    ref = cast(Beneficiary.id, String) + literal(":") + day  # reminder_ref in SQL
    return and_(
        owed,
        # Told already, at an account of the person's: one that made a revoked certification of them is not theirs
        # (accounts.py), and the account that is theirs now is reminded, as before.
        ~exists().where(
            WeChatNotice.kind == kind, WeChatNotice.ref == ref, ~made_a_revoked_session(WeChatNotice.openid)
        ),
        _certified_from_h5(),
    )


def lapsed_long_ago(today: dt.date, rules: CycleRules) -> ColumnElement[bool]:
    """A condition on `beneficiaries`: the person's date lapsed before `reminder_floor`, they are owed a reminder of
    it (`reminder_sql`) and were certified from the H5 pages. Whether this cycle's is told already is read per batch
    (`_queue_reminders`: its ref is the date's anniversary, `reminder_date`); walked once a day (`queue_notices`)."""
    return and_(reminder_sql(today, rules, long_ago=True)[0], _certified_from_h5())


def _certified_from_h5() -> ColumnElement[bool]:
    linked = select(CertSession.id).join(WeChatSessionLink, WeChatSessionLink.session_id == CertSession.id)
    return exists(
        linked.where(
            CertSession.beneficiary_id == Beneficiary.id,
            CertSession.channel == Channel.SELF,
            CertSession.decision == SessionDecision.ACCEPT,
        )
    )


def _own_openids(db: Session, ids: list[int]) -> dict[int, tuple[str, Beneficiary]]:
    """Persons `ids` with the openid of their latest accepted self-certification through the H5 pages (a relative's
    proxy or verification session does not count, nor one whose certification a supervisor revoked: that account
    was not the person's; certification/revocation.py; nor one opened before the roster gave the record another ID
    number: that was the previous number's person; certification/current_person.py)."""
    rows = db.execute(own_accounts().where(Beneficiary.id.in_(ids)))  # the rule: accounts.py
    return {b.id: (openid, b) for openid, b in rows}  # the latest accept wins


def _busy(db: Session, ids: list[int], now: dt.datetime) -> set[int]:
    """Which of persons `ids` are `busy`, in one statement."""
    q = select(CertSession.beneficiary_id).where(CertSession.beneficiary_id.in_(ids), in_flight(now)).distinct()
    return {bid for bid in db.scalars(q) if bid is not None}


def sheltered(db: Session, ctx: ServiceContext, people: Sequence[Beneficiary], today: dt.date) -> set[int]:
    """Which of `people`, owed a reminder to certify (TO_CERTIFY), the cycle's one rule shelters (cycle.being_decided:
    a video made or a home-visit / manual-review request filed in the validity, since the last certification, not
    decided yet; for a date still ahead, the validity now running): not told to certify while the office decides
    what they filed (before, a request filed in time still brought 认证已到期…请尽快完成认证 the next day, and one filed
    before the date 请在…前完成认证 while staff arranged the visit). Not now: once it is answered without a
    certification, the reminder is due again."""
    return being_decided(db, people, ctx.rules, today, ctx.hooks.case_sources())


def queue_notices(db: Session, ctx: ServiceContext, today: dt.date) -> int:
    """Record every notice that is due and not yet recorded. Committed in batches of `BATCH` reminders: on the
    embedded database every transaction holds the write lock (BEGIN IMMEDIATE), and a campaign day's first run
    records tens of thousands; uploads and workers' commits get their turn between batches."""
    n = 0
    decided = db.execute(
        select(WeChatSessionLink.session_id, WeChatSessionLink.openid, CertSession.result)
        .join(CertSession, CertSession.id == WeChatSessionLink.session_id)
        .where(CertSession.state == SessionState.DECIDED, CertSession.decided_at >= utcnow() - RESULT_WINDOW)
        .order_by(CertSession.decided_at, CertSession.id)  # recorded, so sent, in the order they were decided
    )
    # Settled by staff: their decision has its own notice (queue_staff_decision).
    results = [("result", sid, openid) for sid, openid, result in decided if not (result or {}).get("review")]
    known = _recorded(db, results)
    n += sum(_record(db, *notice) for notice in results if notice not in known)
    now = utcnow()
    for ref, openid in revocations_to_tell(db, now - RESULT_WINDOW):  # before the reminders: they wait a day
        n += _record(db, REVOKED, ref, openid)
    day = clock.local_midnight(ctx.settings, today), clock.local_midnight(ctx.settings, today + dt.timedelta(days=1))
    told = told_today(db, day)
    db.commit()
    # The earliest date first: recorded, so sent, in that order (a capped day picks the most urgent: quota.urgency).
    candidates = db.scalars(
        select(Beneficiary.id).where(maybe_due(db, today, ctx.rules)).order_by(Beneficiary.valid_until, Beneficiary.id)
    ).all()
    if _long_ago_walked.get(ctx) != today:  # once a day: every minute it read everyone ever suspended (Part CP)
        candidates = [*candidates, *_lapsed_long_ago(db, ctx, today)]
    for i in range(0, len(candidates), BATCH):
        n += _queue_reminders(db, ctx, today, [b for b in candidates[i : i + BATCH] if b not in told], now)
        db.commit()
    _long_ago_walked[ctx] = today
    return n


# The bureau's day of this process's last walk of the dates lapsed long ago, per context: a reminder of such a date is
# due once a cycle, and its anniversary moves by days, so one walk a day finds each in time.
_long_ago_walked: weakref.WeakKeyDictionary[ServiceContext, dt.date] = weakref.WeakKeyDictionary()


def _lapsed_long_ago(db: Session, ctx: ServiceContext, today: dt.date) -> Sequence[int]:
    query = select(Beneficiary.id).where(lapsed_long_ago(today, ctx.rules))
    return db.scalars(query.order_by(Beneficiary.valid_until, Beneficiary.id)).all()


def _queue_reminders(db: Session, ctx: ServiceContext, today: dt.date, ids: list[int], now: dt.datetime) -> int:
    """Record the reminders due to persons `ids` (in this order); told_today's are left out by the caller: the
    notice of a revocation says the new date already (revoked.py)."""
    owners = _own_openids(db, ids)
    due: list[tuple[tuple[str, str, str], int]] = []
    for b_id in ids:
        if b_id not in owners:
            continue
        openid, b = owners[b_id]
        kind, ref = reminder_kind(b, today, ctx.rules), person_reminder_ref(b, today, ctx.rules)
        if kind is None or ref is None:
            continue
        due.append(((kind, ref, openid), b.id))
    known = _recorded(db, [notice for notice, _ in due])
    occupied = _busy(db, [b_id for notice, b_id in due if notice not in known], now)
    to_certify = [owners[b_id][1] for notice, b_id in due if notice[0] in TO_CERTIFY and notice not in known]
    occupied |= sheltered(db, ctx, to_certify, today)
    return sum(_record(db, *notice) for notice, b_id in due if notice not in known and b_id not in occupied)


def _recorded(db: Session, notices: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which of these (kind, ref, openid) are recorded already, in a few statements: each run (every minute) looks
    at everyone due, a whole campaign's worth on its busiest days, and a look-up each was hundreds of thousands
    of statements a minute."""
    found: set[tuple[str, str, str]] = set()
    kinds, refs = sorted({k for k, _, _ in notices}), sorted({r for _, r, _ in notices})
    for i in range(0, len(refs), 500):
        rows = db.execute(
            select(WeChatNotice.kind, WeChatNotice.ref, WeChatNotice.openid).where(
                WeChatNotice.kind.in_(kinds), WeChatNotice.ref.in_(refs[i : i + 500])
            )
        )
        found.update((str(k), str(r), str(o)) for k, r, o in rows)
    return found


def queue_staff_decision(db: Session, s: CertSession) -> int:
    """One message for a staff decision on a review case, to the openid that opened (or linked) the session
    from the H5 pages; sessions from other channels have nobody to message. Idempotent; in the caller's
    transaction, so the message exists exactly when the decision does."""
    link = db.get(WeChatSessionLink, s.id)
    if link is None:
        return 0
    return int(_record(db, STAFF_DECISION, s.id, link.openid))


def queue_assist_closed(db: Session, request_id: int, openid: str, certified_by: str | None = None) -> int:
    """One message to the openid that asked, when staff close a manual-review / home-visit request; in the
    caller's transaction (the message exists exactly when the closing does). None when `certified_by`, the session
    whose certification closed the request, was sent from this same openid: its own message (the staff decision,
    `queue_staff_decision`, or the machine's result, `queue_notices`) already says 已通过 with the new date, and an
    accept is always told (notice_message.superseded). Before, a video accepted from the request page (视频审核通过)
    sent the requester two messages for one event, 人工审核结果 已通过 and 人工审核申请已办结 已完成认证, both with
    the same date. A requester on another account (a relative's request for the person's own video, or the
    person's for a relative's) is still told by the closing."""
    if certified_by is not None:
        link = db.get(WeChatSessionLink, certified_by)
        if link is not None and link.openid == openid:
            return 0
    return int(_record(db, ASSIST, assist_ref(request_id, closing_number(db, request_id)), openid))


def assist_ref(request_id: int, closing: int) -> str:
    """The ref of the notice of request `request_id`'s `closing`-th closing (assist.closing_number): the request's
    id, as it always was, for its first; `<id>:<n>` for a request a revocation reopened, closed again. Before, the
    ref was the id alone, recorded already by the first closing: the reply to a reopened request, or the news of
    the second home visit, reached nobody."""
    return str(request_id) if closing <= 1 else f"{request_id}:{closing}"


def assist_closing(ref: str) -> tuple[int, int] | None:
    """(request id, closing) of an `assist_ref`; None for a ref of no such form."""
    rid, colon, n = ref.partition(":")
    if not rid.isdigit() or (colon and not n.isdigit()):
        return None
    return int(rid), int(n) if colon else 1


def queue_video_purged(db: Session, request_id: int, openid: str) -> int:
    """One message to the openid that filed manual-review request `request_id`, once the retention purge deleted the
    video it waited on, its hold over and the request still open (console/assist_hold_end.py): the review it was
    promised cannot happen, a home visit or the counter can. Idempotent (one notice per request and account)."""
    req = db.get(AssistRequest, request_id)
    if req is None:
        return 0
    return int(_record(db, ASSIST_VIDEO, video_purged_ref(req.beneficiary_id, req.id), openid))


def video_purged_ref(beneficiary_id: int, request_id: int) -> str:
    return f"{beneficiary_id}:req{request_id}"


def video_purged_request(ref: str) -> int | None:
    """The request id of a `video_purged_ref`; None for a ref of no such form."""
    rid = ref.partition(":")[2].removeprefix("req")
    return int(rid) if rid.isdigit() else None
