"""The annual eligibility cycle: how long a certification is valid, the state it is in on a date, and the
daily run that puts overdue beneficiaries on the suspension list.

The rules are pure functions of dates (tested across simulated dates); ``run_cycle`` and
``record_certification`` apply them to the database. A beneficiary without a validity date (a row from before
roster imports gave every new person one, see service/certification/roster.py) is ``undated``: never overdue, never
reminded, and never suspended unless certifications of theirs exist, all lapsed (``run_cycle``); nobody loses a
payment without a lapsed date that a person can see and check.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from service.certification.current_person import made_for_current_person, made_for_current_person_sql
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    Certification,
    CertSession,
    CycleEvent,
    SessionState,
    awaiting_staff,
    in_force,
)
from service.infra.clock import local_date

if TYPE_CHECKING:
    from service.certification.contract import OpenCaseSource

log = logging.getLogger(__name__)
# Ids per IN (...) of the run's queries: well under SQLite's and PostgreSQL's parameter limits.
IN_CHUNK = 1000


class CycleState(enum.StrEnum):
    CERTIFIED = "certified"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    DECEASED = "deceased"
    UNDATED = "undated"  # no validity date known: staff give one (roster import), the cycle never acts on it
    # Dated by the first-import grace only (`awaiting_first`), more than `due_soon_days` before that date: not
    # certified (nothing certified or vouched for the person), not yet due either. Due soon and overdue as anyone.
    AWAITING_FIRST = "awaiting_first"
    # Overdue by the date, but a certification made in time waits for the office (`being_decided`): the run does not
    # suspend them. Only `states_of` gives it (it reads the sessions); `cycle_state` says OVERDUE.
    AWAITING_DECISION = "awaiting_decision"
    # Held active here, but the roster says the benefit system stopped paying them (`stopped_by_roster`): whatever
    # the date, the cycle does not chase them (no list, reminder or suspension), so no view says 即将到期 or 已逾期.
    # `state_of` gives it (it reads the record's roster word); `cycle_state`, by status and date, does not.
    STOPPED_BY_ROSTER = "stopped_by_roster"


@dataclass(frozen=True)
class CycleRules:
    validity_months: int = 12
    due_soon_days: int = 30
    birthday_month_regions: frozenset[str] = frozenset()
    # The bureau's calendar (Settings.time_zone): which day a video queued at an instant was recorded on.
    time_zone: str = "Asia/Shanghai"

    def uses_birthday_month(self, region: str) -> bool:
        # A prefix matches: "3701" covers every district of Jinan.
        return any(region.startswith(r) for r in self.birthday_month_regions)


def add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_month(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def valid_until(
    certified_on: dt.date, rules: CycleRules, region: str = "", birth_date: dt.date | None = None
) -> dt.date:
    """Last day the certification made on `certified_on` is valid.

    Birthday-month rule: everyone re-certifies in their birth month, so a certification holds until the end of
    the next birth month that is still ahead (certifying in the birth month itself carries to next year's), and
    to the one after it when that end is already due soon (fewer than `due_soon_days` away, as `cycle_state`
    counts): a pensioner born in February is reminded from 30 January, and a certification made then must not
    end on the same 28 February it was made for.
    """
    if birth_date is not None and rules.uses_birthday_month(region):
        year = certified_on.year if birth_date.month > certified_on.month else certified_on.year + 1
        end = end_of_month(year, birth_date.month)
        if (end - certified_on).days < rules.due_soon_days:
            end = end_of_month(year + 1, birth_date.month)
        return end
    return add_months(certified_on, rules.validity_months) - dt.timedelta(days=1)


def first_valid_until(cycle_start: dt.date, grace_days: int) -> dt.date:
    """Last valid day of a person imported without any certification date: the roster's cycle start plus the
    grace for new imports (the benefit system vouched for them when it put them on the roster)."""
    return cycle_start + dt.timedelta(days=grace_days)


def cycle_bounds(today: dt.date, rules: CycleRules) -> tuple[dt.date, dt.date]:
    """The dates that divide validity dates into states on `today` (`cycle_state`'s rule, for a query by date such
    as the WeChat reminders'): a date before the first has lapsed (OVERDUE), one before the second is due soon
    (fewer than `due_soon_days` away), a later one is CERTIFIED."""
    return today, today + dt.timedelta(days=rules.due_soon_days)


def in_cycle_state(state: CycleState, today: dt.date, rules: CycleRules) -> ColumnElement[bool]:
    """`cycle_state` of a living person's date is `state` (OVERDUE or DUE_SOON), as a condition on
    `beneficiaries.valid_until` from the same `cycle_bounds` (the status is the caller's to add)."""
    lapsed_before, due_before = cycle_bounds(today, rules)
    if state is CycleState.OVERDUE:
        return Beneficiary.valid_until < lapsed_before
    if state is CycleState.DUE_SOON:
        return (Beneficiary.valid_until >= lapsed_before) & (Beneficiary.valid_until < due_before)
    raise ValueError(f"no date range for {state}")


def cycle_state(
    status: str, valid_to: dt.date | None, today: dt.date, rules: CycleRules, *, first_pending: bool = False
) -> CycleState:
    """The state on `today` of a record with `status` valid to `valid_to`. `first_pending`: its date is the
    first-import grace's and it never certified (`awaiting_first`; `state_of` passes it): then never `certified`,
    which counted a whole roster as certified on the day it was loaded."""
    if status == BeneficiaryStatus.DECEASED:
        return CycleState.DECEASED
    if valid_to is None:
        return CycleState.UNDATED
    lapsed_before, due_before = cycle_bounds(today, rules)
    if valid_to < lapsed_before:
        return CycleState.OVERDUE
    if valid_to < due_before:
        return CycleState.DUE_SOON
    return CycleState.AWAITING_FIRST if first_pending else CycleState.CERTIFIED


def awaiting_first(b: Beneficiary) -> bool:
    """Whether `b`'s validity is the first-import grace date and nothing certified them since: the roster marked
    the date as the grace's (`grace_dated`, cleared when a row of the benefit system dates the record) and no
    certification is on record (a revoked one with none left clears `last_certified_on` again)."""
    return b.grace_dated and b.last_certified_on is None


def awaiting_first_sql() -> ColumnElement[bool]:
    """`awaiting_first` as an SQL condition on beneficiaries (the dashboard counts by it)."""
    return Beneficiary.grace_dated & Beneficiary.last_certified_on.is_(None)


def stopped_by_roster(b: Beneficiary) -> bool:
    """Whether the benefit system's roster last said `suspended` for `b` while this service holds `b` active
    (`roster_status`: it stopped paying them here, e.g. transferred out, 转出). The cycle does not chase such a
    record: no reminders (WeChat notice_queue), not on the due-soon or overdue lists (registry.status_list), not
    suspended by the cycle run (no payment row from a bureau that no longer pays them: `run_cycle`). Its status
    stays this service's (Part R: a certification or a person decides a payment here); the import names it
    (`suspension_not_applied`), and a later `active` row puts it back in the cycle.

    For a record suspended here the roster's `suspended` is, as a rule, this service's own suspension echoed (the
    benefit system stopped paying on our exports/suspensions.csv row): it stops nothing, and the person keeps their
    `suspended` notice (how payment resumes). The resume that answers it clears it (`resume`): before, the stale
    word kept a person certified and resumed here out of every later reminder, list and suspension until a file
    said `active`. After that resume, the roster's `suspended` is still our echo until it says another word once
    (`RESUMED_HERE`, `roster_word`): the benefit system takes time to act on our `resumed` row, and its next file
    may say `suspended` with another column changed (e.g. our certification's date)."""
    return b.status == BeneficiaryStatus.ACTIVE and b.roster_status == BeneficiaryStatus.SUSPENDED


def stopped_by_roster_sql() -> ColumnElement[bool]:
    """`stopped_by_roster` as an SQL condition on beneficiaries (NULL, not known, is not stopped)."""
    said = func.coalesce(Beneficiary.roster_status, "") == BeneficiaryStatus.SUSPENDED.value
    return (Beneficiary.status == BeneficiaryStatus.ACTIVE) & said


# `roster_status` after a resume here answered the roster's echo of our suspension (never a roster word): the
# roster's `suspended` is that echo until the roster says another word (`roster_word`).
RESUMED_HERE = "resumed"


def roster_word(stored: str | None, said: str) -> str:
    """What a roster row saying `said` leaves in `roster_status` (`stored`: what it holds). A `suspended` after our
    resume answered the echo (`RESUMED_HERE`) is still that echo and keeps the mark; any other word replaces it.
    Before, the resume cleared the word, and the next file still saying `suspended` with another column changed
    took the resumed person out of the cycle again and named them as transferred out (`suspension_not_applied`)."""
    return RESUMED_HERE if stored == RESUMED_HERE and said == BeneficiaryStatus.SUSPENDED else said


def resume(db: Session, b: Beneficiary, on_date: dt.date) -> None:
    """Lift this service's suspension of `b` (a `resumed` row for the payment system, paying back from
    `suspended_on`). A roster `suspended` stored meanwhile was our suspension echoed (`stopped_by_roster`): the
    resume answers it and marks it `RESUMED_HERE`, so the person is back in the cycle and the roster's `suspended`
    stays our echo, in an unchanged file or a changed one, until it says another word (`roster_word`)."""
    db.add(CycleEvent(beneficiary_id=b.id, kind="resumed", on_date=on_date, suspended_since=b.suspended_on))
    b.status = BeneficiaryStatus.ACTIVE
    b.suspended_on = None
    if b.roster_status == BeneficiaryStatus.SUSPENDED:
        b.roster_status = RESUMED_HERE


def state_of(b: Beneficiary, today: dt.date, rules: CycleRules) -> CycleState:
    """`cycle_state` of a stored record: the way a page, a list or a view reads a person's state. One the roster
    stopped is STOPPED_BY_ROSTER whatever their date (`stopped_by_roster`, the rule the lists, the reminders, the run
    and the dashboard's column follow): before, the person page, the API's view and the family page still said due
    soon or overdue while the dashboard counted them 名册已停发 and no list or reminder had them."""
    if stopped_by_roster(b):
        return CycleState.STOPPED_BY_ROSTER
    return cycle_state(b.status, b.valid_until, today, rules, first_pending=awaiting_first(b))


@dataclass(frozen=True)
class SuspensionGuard:
    """A run that would suspend more than `max_share` of the active beneficiaries, and more than
    `min_suspensions` of them, is refused before anything changes (a wrong clock or date, a roster that
    lost its validity dates): an operator looks, then forces the run if it is right."""

    max_share: float = 0.2
    min_suspensions: int = 10

    def allows(self, suspending: int, active: int) -> bool:
        return suspending <= self.min_suspensions or suspending <= self.max_share * active


class CycleSpikeError(ServiceError):
    def __init__(self, today: dt.date, suspending: int, active: int, guard: SuspensionGuard) -> None:
        super().__init__(
            "CYCLE_SUSPENSION_SPIKE",
            f"the run of {today} would suspend {suspending} of {active} active beneficiaries (more than "
            f"{guard.max_share:.0%}); nothing was changed; check, then run again with force=true",
            extra={"would_suspend": suspending, "active": active, "max_share": guard.max_share},
        )
        self.suspending, self.active = suspending, active


def run_cycle(
    db: Session,
    today: dt.date,
    rules: CycleRules,
    guard: SuspensionGuard | None = None,
    force: bool = False,
    *,
    cases: Sequence[OpenCaseSource],
) -> list[int]:
    """Suspend every active beneficiary whose certification lapsed before `today`. Idempotent.

    Never one with a certification valid on `today` (of the record's present person: made since its last change
    of ID number), whatever the beneficiary row says, nor one whose certification is still being decided
    (`being_decided`: queued, running, in staff review or failed awaiting staff, or an open request for a home
    visit or a manual review filed in time: `cases`, ctx.hooks.case_sources()), nor one without any
    date: a row whose validity is NULL is suspended only when certifications of theirs exist (all lapsed, each
    with its date on the beneficiary page); one that never had a date (``CycleState.UNDATED``) never is; nor one
    the benefit system stopped paying here (`stopped_by_roster`). The
    rows are locked (PostgreSQL): a certification committed meanwhile is seen, and one applied later waits and
    resumes.
    Raises CycleSpikeError, changing nothing, when `guard` refuses the count (unless `force`).
    """
    certified_today = exists().where(
        Certification.beneficiary_id == Beneficiary.id,
        Certification.valid_until >= today,
        # Not one of the record's previous person's: its session was opened since a roster import last gave the
        # record another ID number (a certification made later of a video made before is not the new person's).
        CertSession.id == Certification.session_id,
        made_for_current_person_sql(CertSession.created_at),
        in_force(),  # not revoked by a supervisor (service/certification/revocation.py)
    )
    ever_certified = exists().where(Certification.beneficiary_id == Beneficiary.id)
    lapsed = db.scalars(
        select(Beneficiary)
        .where(
            Beneficiary.status == BeneficiaryStatus.ACTIVE,
            (Beneficiary.valid_until < today) | (Beneficiary.valid_until.is_(None) & ever_certified),
            ~certified_today,
            ~stopped_by_roster_sql(),  # the benefit system stopped paying them here: not ours to stop
        )
        .order_by(Beneficiary.id)  # many rows of one table: in a fixed order (service/certification/lock_order.py)
        .with_for_update()
    ).all()
    waiting = being_decided(db, lapsed, rules, today, cases)
    lapsed = [b for b in lapsed if b.id not in waiting]
    if guard is not None and lapsed:
        active = db.scalar(
            select(func.count()).select_from(Beneficiary).where(Beneficiary.status == BeneficiaryStatus.ACTIVE)
        )
        if not guard.allows(len(lapsed), int(active or 0)):
            if not force:
                log.error(
                    "ALERT cycle %s refused: would suspend %d of %d active beneficiaries (over %.0f%%); "
                    "nothing changed",
                    today,
                    len(lapsed),
                    active,
                    guard.max_share * 100,
                )
                raise CycleSpikeError(today, len(lapsed), int(active or 0), guard)
            log.warning("cycle %s forced: suspending %d of %d active beneficiaries", today, len(lapsed), active)
    for b in lapsed:
        b.status = BeneficiaryStatus.SUSPENDED
        b.suspended_on = today
        db.add(CycleEvent(beneficiary_id=b.id, kind="suspended", on_date=today))
    if lapsed:
        log.info("cycle %s: suspended %d beneficiaries", today, len(lapsed))
    return [b.id for b in lapsed]


def being_decided(
    db: Session, lapsed: Sequence[Beneficiary], rules: CycleRules, today: dt.date, cases: Sequence[OpenCaseSource]
) -> set[int]:
    """Those of `lapsed` with a certification made in time that the service has not decided yet: its video queued
    in the lapsed validity (after the last certification, on or before the last valid day in the bureau's
    calendar: 00:10 in Beijing is the next day; queued: when the upload that queued it began, sessions.upload),
    its session opened since the record's last change of ID number (service/certification/current_person.py), and
    the job queued, running, in staff review or failed awaiting staff; or a request of theirs for a home visit or a
    manual review (`cases`: the features' open requests, ctx.hooks.case_sources()) filed in that validity, for
    the present person, and still open: the office's backlog as much. They wait for the office, not the reverse:
    no suspension for the backlog, and the run after a rejection (a request answered without a certification)
    suspends them. A session started or a request filed after the lapse shelters nobody, nor an earlier cycle's
    case left unsettled, nor one undecided for more than `due_soon_days` past the last valid day (the office's
    backlog is bounded; a session that certifies nobody, such as an elder's consent to a relative, which the core
    cannot tell apart, shelters no longer than that either, nor does a request anyone knowing a name and number
    can file). The one rule: the run leaves them unsuspended, and the lists and the dashboard show them apart from
    the overdue (`states_of`)."""
    window = {
        b.id: b for b in lapsed if b.valid_until is not None and (today - b.valid_until).days <= rules.due_soon_days
    }
    undecided = undecided_sql()
    queued_at = func.coalesce(CertSession.queued_at, CertSession.created_at)
    ids, waiting = sorted(window), set[int]()
    for at in range(0, len(ids), IN_CHUNK):
        chunk = ids[at : at + IN_CHUNK]
        query = select(CertSession.beneficiary_id, queued_at, CertSession.created_at).where(
            CertSession.beneficiary_id.in_(chunk), undecided
        )
        found: list[tuple[int | None, dt.datetime | None, dt.datetime]] = [(*row,) for row in db.execute(query)]
        found += [(bid, filed, filed) for source in cases for bid, filed in source(db, chunk)]
        for bid, made, opened in found:
            if bid is None or made is None or not made_for_current_person(window[bid], opened):
                continue  # the record's previous person's (opened before its last change of ID number)
            if _in_lapsed_validity(window[bid], made, rules):
                waiting.add(bid)
    return waiting


def undecided_sql() -> ColumnElement[bool]:
    """A session the service has not decided yet: queued, running, in staff review or failed awaiting staff (the
    sessions `being_decided` reads; the dashboard reads only the people who have one)."""
    return CertSession.state.in_((SessionState.QUEUED, SessionState.PROCESSING)) | awaiting_staff()


def _in_lapsed_validity(b: Beneficiary, made: dt.datetime, rules: CycleRules) -> bool:
    """Whether a video queued (or a request filed) at `made` (naive UTC) was made for `b`'s validity that just
    lapsed."""
    day = local_date(rules, made)
    if b.valid_until is None or day > b.valid_until:
        return False
    # Not made for an earlier cycle (that one was certified since).
    return b.last_certified_on is None or day > b.last_certified_on


def states_of(
    db: Session, people: Sequence[Beneficiary], today: dt.date, rules: CycleRules, *, cases: Sequence[OpenCaseSource]
) -> dict[int, CycleState]:
    """`state_of` each of `people` (by id), where an active person overdue whose certification made in time is
    still being decided (`being_decided`: the run does not suspend them; `cases`: ctx.hooks.case_sources(), the
    open requests for a home visit or a manual review) is AWAITING_DECISION, not OVERDUE: the office's own backlog,
    not a person who failed to certify."""
    states = {b.id: state_of(b, today, rules) for b in people}
    overdue = [b for b in people if states[b.id] is CycleState.OVERDUE and b.status == BeneficiaryStatus.ACTIVE]
    for bid in being_decided(db, overdue, rules, today, cases) if overdue else set():
        states[bid] = CycleState.AWAITING_DECISION
    return states


def record_certification(
    db: Session, b: Beneficiary, certified_on: dt.date, rules: CycleRules, today: dt.date | None = None
) -> dt.date:
    """Apply an accepted certification: new validity, and resumption if the benefit was suspended and the validity
    now reaches `today` (the bureau's date it is recorded on; `certified_on` when not given).

    A certification entered late (a counter or home visit dated in the past) whose validity ran out before
    `today` is recorded, but resumes nothing: the next run would suspend the person again, and the `resumed` event
    in between has the payment system pay back a suspension that still holds. Neither date ever moves back."""
    new_until = valid_until(certified_on, rules, b.region, b.birth_date)
    b.last_certified_on = max(certified_on, b.last_certified_on) if b.last_certified_on else certified_on
    b.valid_until = max(new_until, b.valid_until) if b.valid_until else new_until
    if b.status == BeneficiaryStatus.SUSPENDED and b.valid_until >= (today or certified_on):
        resume(db, b, certified_on)
    return b.valid_until
