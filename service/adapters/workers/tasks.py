"""Celery wiring for scale-out (PostgreSQL + Redis + any number of `celery -A service.adapters.workers.tasks worker`).

Messages carry only the session id (JSON); the task re-reads the session, claims it with the same database
lease as the polling worker, and is idempotent. ``acks_late`` + ``reject_on_worker_lost`` redeliver a task
whose worker died; the database lease covers the rest (a job whose message was lost is found by the sweeper).
Retries only on transient errors; models load lazily once per worker process.

No app at import: the tasks are shared tasks, and the worker's app is built by `worker_app()` when
``celery -A service.adapters.workers.tasks`` looks up the module's ``app`` (module ``__getattr__``, below), from
the settings of that process. The API builds its own publishing app (`make_enqueue`).

Broker outages: the API's ``enqueue`` gives up after a short bounded retry and only logs (the upload is
already committed, the job row stays queued and the sweeper announces it again); workers reconnect forever.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from functools import lru_cache

# Typed by the celery-types stubs (dev requirement): the app, the bound task and the signals are checked.
from celery import Celery, Task, shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.schedules import crontab
from sqlalchemy import select

import service.schema
from service.adapters.workers.worker import hand_back, shared_certifier
from service.certification import daily_run as daily_run_module
from service.certification.context import ServiceContext
from service.certification.cycle import CycleSpikeError
from service.certification.daily_run import SCHEDULE_ACTOR
from service.certification.daily_run import daily_run as run_daily
from service.certification.heartbeat import Heartbeat, silence_is_death
from service.certification.models import CertSession
from service.certification.processing import (
    DATABASE_DOWN,
    OUTAGE_BACKOFF_MAX_S,
    OUTAGE_RETRIES,
    claim,
    claimable,
    give_up_timed_out,
    process,
    worker_name,
)
from service.certification.retention import storage_upkeep as upkeep
from service.features.install import install_features
from service.features.wechat.runtime import WeChatChannel, build_channel
from service.features.wechat.schedule import celery_tick
from service.infra.config import Settings, get_settings
from service.infra.db.migrate import SchemaNotMigratedError, schema_problem
from service.infra.observability import bind_session, metrics
from service.infra.observability.logs import install_log_masking
from service.infra.storage import StorageError

log = logging.getLogger(__name__)

PROCESS_TASK = "pension_cert.process_session"
DAILY_RUN_TASK = "pension_cert.daily_run"
BROKER_CONNECT_TIMEOUT_S = 3.0
BROKER_SOCKET_TIMEOUT_S = 10.0
# Database outages: back off 1, 2, 4 … 30 s, about 4 minutes in all, spending none of the job's attempts; beyond
# that the sweeper takes over once the lease expires (service/certification/processing.py, OUTAGE_RETRIES).
TASK_MAX_RETRIES = OUTAGE_RETRIES
# The daily storage upkeep (retention purge, orphans, audit anchor): at night, the bureau's time (Settings.time_zone).
UPKEEP_HOUR = 3


def make_celery(settings: Settings) -> Celery:
    app = Celery("pension_cert", broker=settings.workers.broker_url)
    app.conf.update(
        # The certification task only (the upkeep may rightly run long): a decoder hung on a pathological video
        # must not hold a worker slot for ever (the prefork pool enforces them; see _hard_time_limit below).
        task_annotations={PROCESS_TASK: time_limits(settings)},
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,  # a worker outlives any broker outage: it reconnects, never exits
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT_S,
        # A publish while the broker is down fails within about a second instead of blocking the request.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        broker_transport_options={
            "visibility_timeout": settings.workers.job_lease_s * 2,
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_S,
            "socket_timeout": BROKER_SOCKET_TIMEOUT_S,  # a half-open connection never blocks a publish forever
        },
        beat_schedule={
            "sweep": {"task": "pension_cert.sweep", "schedule": float(settings.workers.sweep_interval_s)},
            "wechat": {"task": "pension_cert.wechat_tick", "schedule": settings.wechat.schedule_s},
            # At a fixed hour, not every 86,400 s: beat counts an interval from its own start for an entry it has
            # no stored run of (a new container, a schedule file in /tmp), so a beat restarted more often than
            # daily never purged.
            "storage_upkeep": {"task": "pension_cert.storage_upkeep", "schedule": crontab(minute=0, hour=UPKEEP_HOUR)},
            **daily_run_entry(settings),
        },
        timezone=settings.time_zone,  # crontab hours are the bureau's; messages' times stay UTC (enable_utc)
    )
    return app


def daily_run_entry(settings: Settings) -> dict[str, dict[str, object]]:
    """The daily run (suspensions, expiry, upkeep) at CYCLE_RUN_HOUR, the bureau's time; none when it is -1."""
    hour = settings.cycle.cycle_run_hour
    if hour < 0:
        return {}
    # Hourly from the hour to midnight, a no-op once the day is done (the task's gate): a database down at the
    # hour, or beat restarted across it, still gets the day's run the same day.
    return {"daily_run": {"task": DAILY_RUN_TASK, "schedule": crontab(minute=0, hour=f"{hour}-23")}}


def time_limits(settings: Settings) -> dict[str, float | None]:
    """The certification task's limits. Equal limits mean no soft phase (the pool would otherwise send the soft
    signal and kill the process at the same moment)."""
    w = settings.workers
    if w.task_time_limit_s >= w.job_lease_s:
        # Not refused: the lease was the only bound before (and the tests' short leases keep the default limits).
        log.warning(
            "TASK_TIME_LIMIT_S %gs is not below JOB_LEASE_S %ss: a task still running when its lease ends is "
            "announced again by the sweep and may run twice",
            w.task_time_limit_s,
            w.job_lease_s,
        )
    soft = w.task_soft_time_limit_s if w.task_soft_time_limit_s < w.task_time_limit_s else None
    return {"soft_time_limit": soft, "time_limit": w.task_time_limit_s}


def make_enqueue(settings: Settings) -> Callable[[str], None]:
    """The API's job announcement. Called after the upload's commit: a broker failure must neither lose the
    acknowledged upload nor turn into a 5xx; the job stays queued in the database for the sweeper."""
    app = make_celery(settings)

    def enqueue(session_id: str) -> None:
        try:
            app.send_task(PROCESS_TASK, args=[session_id])
        except Exception as exc:  # kombu OperationalError, socket errors, timeouts: all mean "not announced"
            log.warning("session %s: enqueue failed, left queued for the sweeper: %s", session_id, exc)

    return enqueue


@lru_cache(maxsize=1)
def worker_app() -> Celery:
    """This worker process's Celery app, built once from its settings on first use (not at import)."""
    return make_celery(checked_settings())


def checked_settings() -> Settings:
    """The settings, checked as `pension-cert worker` checks them (service/adapters/cli/common.py), the database
    at this version's migrations and, in production, its role (never a superuser): a worker or beat started with a
    mistake ends at once with one line per problem and the settings exit code (4), not a traceback from the broker's
    URL parser or a worker failing each task."""
    from service.adapters.cli.common import EXIT_CONFIG, outage_error, settings_problems  # lazy: the CLI's checks
    from service.infra.db.engine import make_engine  # lazy: as above

    settings, problems = settings_problems(sends=True)  # the worker runs the WeChat tick beat schedules
    if problems:
        sys.stderr.write("pension-cert: CONFIG_INVALID: invalid settings:\n  " + "\n  ".join(problems) + "\n")
        raise SystemExit(EXIT_CONFIG)
    engine = make_engine(settings.effective_database_url)
    try:
        problem = schema_problem(engine, service.schema.metadata)
    except Exception as exc:  # the database down at start: the worker waits it out (tasks retry), as before
        log.warning("the database's migrations could not be checked at start: %s", outage_error(exc) or exc)
        problem = ""
    finally:
        engine.dispose()
    if problem:
        sys.stderr.write(f"pension-cert: {SchemaNotMigratedError.code}: {SchemaNotMigratedError(problem)}\n")
        raise SystemExit(EXIT_CONFIG)
    refuse_superuser(settings)
    return get_settings()


def refuse_superuser(settings: Settings) -> None:
    """A production worker or beat on a PostgreSQL superuser connection ends here, as `serve` and `worker` refuse
    it: the one check (cli/common.check_database_role, service/infra/db/roles.py), its refusal on stderr with the
    settings exit code. Development and the tests are let be, and say nothing."""
    from service.adapters.cli.common import CliError, check_database_role  # lazy: the CLI's checks, as above

    try:
        check_database_role(settings)
    except CliError as exc:
        sys.stderr.write(f"pension-cert: {exc}\n")
        raise SystemExit(exc.exit_code) from None


def __getattr__(name: str) -> Celery:
    # `celery -A service.adapters.workers.tasks` reads the module's `app` (celery.app.utils.find_app): that read,
    # not the import, builds the worker's app (PEP 562 module attribute).
    if name == "app":
        return worker_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=1)
def _worker_ctx() -> ServiceContext:
    return install_features(ServiceContext(get_settings(), schema=None))  # scale-out: Alembic made the tables


@shared_task(
    name=PROCESS_TASK,
    bind=True,
    autoretry_for=(*DATABASE_DOWN, StorageError),  # the database unreachable or its pool exhausted; the store
    retry_backoff=True,
    retry_backoff_max=int(OUTAGE_BACKOFF_MAX_S),
    retry_jitter=False,  # jitter would let all retries fire within seconds of a database restart
    max_retries=TASK_MAX_RETRIES,
)
def process_session(self: Task[[str], str], session_id: str) -> str:
    ctx = _worker_ctx()
    name = attempt_name(self.request.id)
    try:
        if claim(ctx, session_id, name, reclaim_own=bool(self.request.retries)) is None:
            return "not-claimable"  # already done, or owned by a live worker
        with bind_session(session_id):
            certifier = shared_certifier(ctx.settings.certification)
            process(ctx, certifier, session_id, name, interrupts=(SoftTimeLimitExceeded,))
    except SoftTimeLimitExceeded:
        limit = ctx.settings.workers.task_soft_time_limit_s
        give_up_timed_out(ctx, session_id, name, f"the job ran past its soft time limit ({limit:g} s)")
        return "time-limit"
    return "done"


def attempt_name(task_id: str | None) -> str:
    """The claim's name: the task id names the attempt, so its own retry (same id) takes the lease back at once, in
    whichever process the broker hands it to (a prefork sibling, another host). The process is recorded by the
    claim (worker_process); naming it here too made a retry landing elsewhere wait out the lease."""
    return f"celery:{task_id}"[:64] if task_id else f"celery:{worker_name()}"[:64]


@signals.task_failure.connect
def _hard_time_limit(sender: object = None, task_id: str | None = None, exception: object = None, **kw: object) -> None:
    """Past the hard limit the pool process running the task is killed (and replaced by the pool); the message was
    acknowledged (acks_late acknowledges a timed-out task). This runs in the worker's main process: the job is
    handed back at once, an attempt spent, instead of waiting for the dead process's heartbeat to go stale."""
    args = kw.get("args")
    if not isinstance(exception, TimeLimitExceeded) or getattr(sender, "name", None) != PROCESS_TASK:
        return
    if not isinstance(args, list | tuple) or not args or not isinstance(args[0], str):
        return
    limit = _worker_ctx().settings.workers.task_time_limit_s
    why = f"JobTimeLimitExceededError: the job ran past its hard time limit ({limit:g} s); its process was replaced"
    hand_back(_worker_ctx(), args[0], attempt_name(task_id), why)


@signals.worker_init.connect
def _check_models(**_kw: object) -> None:
    """A worker (not beat: `worker_init` is the worker's alone) without its model files refuses to start, with the
    line `serve` gives: the models still load lazily at the first task, but a missing or damaged file (its size and
    sha256, as `models list` checks them) ends the worker before it consumes any task, instead of every task it
    takes failing. Before the broker is reached and before the heartbeat: readiness never counts it."""
    from models.errors import ModelError  # lazy: as checked_settings, the CLI's rule
    from service.adapters.cli.common import EXIT_MODEL, CliError  # lazy: as above
    from service.adapters.cli.models_cmd import check_models  # lazy: as above (models_cmd.pack_problems)

    try:
        check_models(get_settings().certification.model_pack)
    except CliError as exc:
        sys.stderr.write(f"pension-cert: {exc}\n")
        raise SystemExit(exc.exit_code) from None
    except ModelError as exc:  # the manifest itself unreadable
        sys.stderr.write(f"pension-cert: {exc}\n")
        raise SystemExit(EXIT_MODEL) from None
    except Exception as exc:  # any other: Celery's Signal.send swallows it (no log set up yet), the worker ran on
        why = getattr(exc, "strerror", None) or exc  # an OSError in words, without its errno
        sys.stderr.write(f"pension-cert: MODEL_UNAVAILABLE: the model files could not be checked: {why}\n")
        raise SystemExit(EXIT_MODEL) from None


# The one pool whose time limits hold: its parent kills a child past the hard limit (other pools' tasks run in the
# worker's own process or threads, where nothing can stop a decoder stuck in C code).
PREFORK_POOL = "celery.concurrency.prefork:TaskPool"
# Celery's `--pool` names and their classes (not in the celery-types stubs).
POOL_ALIASES: dict[str, str] = dict(importlib.import_module("celery.concurrency").ALIASES)


def pool_path(pool_cls: object) -> str:
    """`module:Class` of the worker's pool, from a `--pool` name (an alias) or the class itself."""
    if isinstance(pool_cls, str):
        return POOL_ALIASES.get(pool_cls, pool_cls)
    return f"{getattr(pool_cls, '__module__', '')}:{getattr(pool_cls, '__qualname__', pool_cls)}"


# The pool warning, kept from the worker's init until its logging is set up (Celery sets it up just after).
_pool_warning: list[str] = []


@signals.worker_init.connect
def _warn_pool_without_limits(sender: object = None, **_kw: object) -> None:
    """After the models' check: a worker on another pool than prefork starts (the benchmarks run `--pool=solo`),
    but says that its tasks' time limits do not hold, so a video that hangs the decoder holds it: a WARNING record
    once its logging is set up (its log file under --detach or celery multi; JSON with LOG_FORMAT=json) and, in the
    plain text format, one line on standard error now."""
    pool = getattr(sender, "pool_cls", None)
    if pool is None or pool_path(pool) == PREFORK_POOL:
        return
    name = next((alias for alias, path in POOL_ALIASES.items() if path == pool_path(pool)), pool_path(pool))
    settings = get_settings()
    w = settings.workers
    text = (
        f"TASK_TIME_LIMITS_NOT_ENFORCED: --pool={name} does not enforce "
        f"PENSION_CERT_TASK_TIME_LIMIT_S ({w.task_time_limit_s:g} s) nor PENSION_CERT_TASK_SOFT_TIME_LIMIT_S "
        f"({w.task_soft_time_limit_s:g} s): a task that hangs holds this worker until it is restarted; run the "
        "prefork pool (Celery's default: no --pool) in production"
    )
    _pool_warning[:] = [text]
    if settings.observability.log_format != "json":  # a plain line among JSON ones is not read as a record
        sys.stderr.write(f"pension-cert: warning: {text}\n")


@signals.worker_ready.connect
def _serve_metrics(**_kw: object) -> None:
    # Celery workers run elsewhere: they serve their own stage and decision metrics (metrics_port, 0: off).
    observability = get_settings().observability
    production = get_settings().env == "production"
    metrics.serve_port(observability.metrics_port, observability.metrics_token, production)


# Heartbeats (service/certification/heartbeat.py): the worker's main process (which runs the tasks with --pool=solo) and
# every prefork pool child (which run them otherwise) write their own row, so the API's /readyz sees live
# workers and a job whose process died is re-announced by the sweep as soon as its heartbeat is stale.
_heartbeat: Heartbeat | None = None


def _start_heartbeat() -> None:
    global _heartbeat
    if _heartbeat is None:
        _heartbeat = Heartbeat(_worker_ctx(), "celery")
        _heartbeat.start()


def _stop_heartbeat() -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None


@signals.worker_ready.connect
def _main_heartbeat(**_kw: object) -> None:
    _start_heartbeat()


@signals.worker_process_init.connect
def _child_heartbeat(**_kw: object) -> None:
    global _heartbeat
    # A pool child forked after the main process opened its database pool: drop the inherited connections
    # without closing them (they are the parent's), and the parent's heartbeat object (its thread is not here).
    if _worker_ctx.cache_info().currsize:
        _worker_ctx().engine.dispose(close=False)
    _heartbeat = None
    _start_heartbeat()


@signals.worker_shutdown.connect
@signals.worker_process_shutdown.connect
def _end_heartbeat(**_kw: object) -> None:
    _stop_heartbeat()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_setup(**_kw: object) -> None:
    install_log_masking()  # masking, and JSON lines with the session id when PENSION_CERT_LOG_FORMAT=json
    while _pool_warning:
        log.warning("%s", _pool_warning.pop())


@shared_task(name="pension_cert.sweep")
def sweep() -> int:
    """Re-enqueue sessions whose message was lost or whose worker died (stale heartbeat or expired lease)."""
    ctx = _worker_ctx()
    with ctx.db() as db:
        free = claimable(ctx.settings.workers.worker_stale_s, silence_is_death(ctx))  # not right after an outage
        ids = list(db.scalars(select(CertSession.id).where(free).limit(500)))
    for sid in ids:
        process_session.delay(sid)
    return len(ids)


@shared_task(name="pension_cert.storage_upkeep")
def storage_upkeep() -> dict[str, int]:
    """Daily: media past retention purged, orphaned media removed, the audit chain anchored outside the database
    (service/certification/retention.py)."""
    return upkeep(_worker_ctx())


@shared_task(name="pension_cert.wechat_tick")
def wechat_tick() -> dict[str, int]:
    """The one WeChat refresher of a scale-out deployment: token refresh and notifications (service.features.wechat)."""
    return celery_tick(_worker_ctx(), _worker_channel())


@lru_cache(maxsize=1)
def _worker_channel() -> WeChatChannel | None:
    # One channel (and Redis token store) per worker process, beside its context; None when WeChat is off.
    return build_channel(_worker_ctx().settings)


@shared_task(name=DAILY_RUN_TASK)
def daily_run() -> dict[str, object]:
    """Daily at CYCLE_RUN_HOUR: the cycle run (service/certification/daily_run.py). A run the spike guard refuses
    is audited and counted there and answered here, never retried (an operator forces it); a second run the same
    day, or two at once from two beats, suspends nobody new. Beat sends it hourly from that hour on; the gate is the
    embedded thread's (daily_run.schedule_gate): not before the hour (a message queued late, run past midnight),
    and a day whose whole run is done (or refused) is not run again."""
    ctx = _worker_ctx()
    today, state = daily_run_module.schedule_gate(ctx)  # the embedded thread's gate too: before the hour, nothing
    if state == daily_run_module.DONE:
        return {"done": True, "date": today.isoformat()}
    if state == daily_run_module.NOT_YET:
        return {"due": False, "date": today.isoformat()}
    try:
        run = run_daily(ctx, SCHEDULE_ACTOR)
    except CycleSpikeError as exc:
        return {"refused": True, "would_suspend": exc.suspending, "active": exc.active}
    return {"refused": False, "date": run.date.isoformat(), "suspended": run.suspended}
