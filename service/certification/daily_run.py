"""The daily run, one home for every way it is started: the operator route (`POST /api/v1/cycle/run`), Celery
beat (`pension_cert.daily_run`), the embedded service's daily thread (service/adapters/workers/daily.py) and
`pension-cert cycle-run`.

It suspends the overdue (service/certification/cycle.py, ``run_cycle``: idempotent, a second run the same day
suspends nobody new; two at once on PostgreSQL lock the same rows, and the second finds them suspended), after
cutting back a certification that still carries a revoked one's date (carried_validity.py), then
expires open sessions past their lifetime and does the store's daily upkeep (service/certification/retention.py).
A run the spike guard refuses suspends nobody, is audited (``cycle.refused``) and counted
(``pension_cert_cycle_refused_total``), and raises CycleSpikeError: no scheduler retries it, an operator looks
and forces it. The expiry and the upkeep still run first: they do not depend on the suspensions, and in the
embedded set-up the daily run is their only schedule (Celery beat runs the upkeep as a task of its own), so a
refused cycle would otherwise stop the retention erasures, every day until someone forced it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select

from service.certification.audit import audit
from service.certification.carried_validity import cut_back_carried
from service.certification.context import ServiceContext
from service.certification.cycle import CycleSpikeError, SuspensionGuard, run_cycle
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, utcnow
from service.certification.retention import expire_sessions, storage_upkeep
from service.infra import clock
from service.infra.clock import local_midnight, local_today
from service.infra.config import Settings
from service.infra.observability import metrics

log = logging.getLogger(__name__)

# Simulated dates far outside the service's life overflow the date arithmetic (retention, validity):
# schemathesis found today=0001-01-01 answering 500.
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2200, 12, 31)
# Where a date may be simulated (tests, demonstrations); never in production.
SIMULATED_DATE_ENVS = ("development", "test")
# The audit actions that close a day: its whole run done (the cycle, the expiry, the upkeep), or refused by the
# spike guard. `cycle.run` alone (the cycle committed, the upkeep then failed) leaves the day open: run again.
DONE_ACTIONS = ("cycle.completed", "cycle.refused")
# The audit actor of the scheduled run (Celery beat, the embedded daily thread).
SCHEDULE_ACTOR = "system:schedule"
# What the schedulers' one gate (schedule_gate) answers: run today's now, today's is done, not (yet) today.
DUE, DONE, NOT_YET = "due", "done", "not_yet"


@dataclass(frozen=True)
class DailyRun:
    date: dt.date
    suspended: int
    sessions_expired: int
    media_purged: int
    media_orphans_removed: int
    forced: bool


def business_day(settings: Settings, today: dt.date | None) -> dt.date:
    """The day a run or a read is for: the bureau's today, or a simulated one (development and test only)."""
    env = settings.env
    if today is None:
        return local_today(settings)  # the bureau's today, not the server's (UTC) date
    if env not in SIMULATED_DATE_ENVS:
        # Reads too: a channel asking "who is overdue next year" learns nothing it should, and one rule for every
        # route is easier to audit than a list of which routes may simulate.
        raise ServiceError("DATE_OVERRIDE_FORBIDDEN", f"today cannot be set in {env}")
    if not FIRST_DAY <= today <= LAST_DAY:
        raise ServiceError("INVALID_DATE", f"today must be between {FIRST_DAY} and {LAST_DAY}")
    return today


def daily_run(
    ctx: ServiceContext,
    actor: str,
    today: dt.date | None = None,
    force: bool = False,
    who: dict[str, str] | None = None,
) -> DailyRun:
    """Run the day's cycle as `actor` (audited, with `who`: the command line's account). `today`: a simulated date
    (development and test only; expiry and retention then run as of its midnight; audited `"simulated": "true"`,
    never counted as that day's run). Audits `cycle.run` with the suspensions, then `cycle.completed` once the
    expiry and the upkeep are done too: a failure between leaves the day to run again (ran_on). Raises
    CycleSpikeError (audited, nobody suspended; the expiry and the upkeep done all the same) when the guard refuses
    and `force` is not given."""
    day = business_day(ctx.settings, today)
    # A simulated run (development, test) is marked: it never counts as that real day's run (ran_on).
    who = {**(who or {}), **({"simulated": "true"} if today is not None else {})}
    cycle = ctx.settings.cycle
    guard = SuspensionGuard(cycle.cycle_max_suspend_share, cycle.cycle_guard_min_suspensions)
    # Expiry and retention by the real instant (a local date's midnight may be hours ahead of UTC's now); a
    # simulated date runs them as of its midnight.
    at = utcnow() if today is None else local_midnight(ctx.settings, day)  # the bureau's midnight, not UTC's
    spike: CycleSpikeError | None = None
    with ctx.db() as db:  # before the cycle reads them: rows a revocation before Part BZ left with its date
        cut_back_carried(db, ctx.rules)
    with ctx.db() as db:
        try:
            ids = run_cycle(db, day, ctx.rules, guard, force=force, cases=ctx.hooks.case_sources())
        except CycleSpikeError as exc:
            db.rollback()
            metrics.CYCLE_REFUSED.inc()
            refused = {"would_suspend": exc.suspending, "active": exc.active, **who}
            audit(db, actor, "cycle.refused", day.isoformat(), refused)
            db.commit()
            spike = exc
        else:
            audit(db, actor, "cycle.run", day.isoformat(), {"suspended": len(ids), "forced": force, **who})
    if spike is not None:
        _upkeep_of_a_refused_day(ctx, at)
        raise spike
    expired = expire_sessions(ctx, at)
    upkeep = storage_upkeep(ctx, at)  # media past retention, orphaned media, the audit chain's anchor
    with ctx.db() as db:  # only now is the day done: a failure above leaves it to be run again (the cycle: no-op)
        audit(db, actor, "cycle.completed", day.isoformat(), {"sessions_expired": expired, **who})
    return DailyRun(day, len(ids), expired, upkeep["media_purged"], upkeep["media_orphans_removed"], force)


def _upkeep_of_a_refused_day(ctx: ServiceContext, at: dt.datetime) -> None:
    """The expiry and the store's upkeep of a day whose cycle the guard refused. Its failure is logged, not raised:
    the refusal is what the operator must see (the day is closed by `cycle.refused`; the next day's run, or a forced
    one, does the upkeep again: each step is idempotent)."""
    try:
        expire_sessions(ctx, at)
        storage_upkeep(ctx, at)
    except Exception:
        log.exception("daily run: the cycle was refused and the upkeep then failed; it runs again with the next run")


def ran_on(ctx: ServiceContext, day: dt.date) -> bool:
    """Whether `day`'s whole run, for the real date, completed (or was refused): a scheduler that finds it does
    not run it again. A run whose upkeep failed, or a simulated one, does not count."""
    with ctx.db() as db:
        query = select(AuditEntry.detail).where(
            AuditEntry.action.in_(DONE_ACTIONS), AuditEntry.target == day.isoformat()
        )
        return any(not (detail or {}).get("simulated") for detail in db.scalars(query))


def schedule_gate(
    ctx: ServiceContext, now: dt.datetime | None = None, done: dt.date | None = None
) -> tuple[dt.date, str]:
    """The one gate of the scheduled run, for Celery beat's task and the embedded daily thread alike: the bureau's
    today and whether its run is DUE (CYCLE_RUN_HOUR reached in the bureau's time zone, no run of the day done:
    ran_on), DONE, or NOT_YET (before the hour, or CYCLE_RUN_HOUR=-1). `done`: a day the caller already knows is
    done (the thread's memory: no query each minute)."""
    local = (now or clock.now_utc()).astimezone(ZoneInfo(ctx.settings.time_zone))
    hour = ctx.settings.cycle.cycle_run_hour
    if hour < 0 or local.hour < hour:
        return local.date(), NOT_YET
    if local.date() == done or ran_on(ctx, local.date()):
        return local.date(), DONE
    return local.date(), DUE
