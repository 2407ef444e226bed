"""Worker heartbeats: every worker process records in the database that it is alive (``worker_heartbeats``).

Who writes: a `pension-cert worker` process, each worker thread of the API process (``WORKER_MODE=thread``: a
row per thread, so a dead thread's jobs are not vouched for by the live ones), a Celery worker and each of its pool
children. Each writes its own row every ``WORKER_HEARTBEAT_S`` from a
thread of its own, so a long job never makes its worker look dead; a SIGKILLed process simply stops writing,
a process that stops cleanly (or whose supervisor saw it die) marks its row stopped.

What reads them:

- ``/readyz`` fails (check ``workers``) when no worker has checked in within ``WORKER_STALE_S``
  (service/adapters/http/health.py): uploads would otherwise be acknowledged as ``queued`` forever;
- the claim (service/certification/processing.py): a job held by a process whose row is stale or stopped is claimable at
  once. A job whose process never wrote a row (``worker --once``, an older worker) falls back to its lease,
  and the lease (``JOB_LEASE_S``) stays the hard upper bound for every job.

The row's name is ``host:pid:random``: a restarted container reuses its host name and often its pid, and the
new process must not vouch for the job its predecessor died holding. Times are the writers' clocks (UTC), as
for the job leases: hosts must keep their clocks in sync (NTP), well within ``WORKER_STALE_S``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update

from service.certification.context import ServiceContext
from service.certification.models import CertSession, WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)

# The worker modes in which the service relies on workers it knows of: its own (process, thread) or Celery workers
# on the same database; /readyz checks them and a queued upload says when none is alive. "none" (workers managed
# elsewhere, or none at all: tests, a read-only API) is not checked.
WORKER_MODES_CHECKED = frozenset({"process", "thread", "celery"})

# Rows of processes gone for this long are deleted (their jobs' leases have long expired).
PRUNE_AFTER_S = 7 * 24 * 3600
PRUNE_EVERY_S = 3600.0

_identity: tuple[int, str] | None = None
_identity_lock = threading.Lock()


def host_name() -> str:
    return socket.gethostname()[:200]


# Set by `serve` for each worker process it starts: the random part of the child's name, so that the
# supervisor can mark exactly that row stopped when the child dies (pids alone can repeat across containers
# sharing a host name). Read once, by the first process that asks: a process it forks gets a name of its own.
TOKEN_ENV = "PENSION_CERT_HEARTBEAT_TOKEN"


def name_for(pid: int, token: str) -> str:
    return f"{host_name()}:{pid}:{token}"


def process_name() -> str:
    """This process's heartbeat name. A forked child (Celery prefork pool) gets a name of its own."""
    global _identity
    pid = os.getpid()
    with _identity_lock:
        if _identity is None or _identity[0] != pid:
            token = os.environ.pop(TOKEN_ENV, "")  # env: handed by the parent process (TOKEN_ENV), not a setting
            _identity = (pid, name_for(pid, token or secrets.token_hex(4)))
        return _identity[1]


def beat(ctx: ServiceContext, kind: str, name: str | None = None, revive: bool = False) -> None:
    """Record that this process is alive now. A row marked stopped stays stopped, unless ``revive``: the
    first beat of workers started again in the same process (an app stopped and started again in one process)."""
    name = name or process_name()
    now = utcnow()
    values: dict[str, Any] = {"last_seen": now, **({"stopped_at": None, "kind": kind} if revive else {})}
    with ctx.db() as db:
        res = db.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.name == name).values(**values))
        if getattr(res, "rowcount", 0) == 0:  # only this process writes this row: no insert race
            db.add(
                WorkerHeartbeat(name=name, kind=kind, host=host_name(), pid=os.getpid(), started_at=now, last_seen=now)
            )


def mark_stopped(ctx: ServiceContext, name: str) -> int:
    """Mark a process's row stopped (it stopped cleanly, or its supervisor saw it die): readiness no longer
    counts it, and its jobs are claimable at once."""
    with ctx.db() as db:
        res = db.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.name == name, WorkerHeartbeat.stopped_at.is_(None))
            .values(stopped_at=utcnow())
        )
        return int(getattr(res, "rowcount", 0) or 0)


def _alive(ctx: ServiceContext) -> Any:
    """SQL condition on a heartbeat row: checked in within WORKER_STALE_S and not stopped (the one home of it)."""
    cutoff = utcnow() - dt.timedelta(seconds=ctx.settings.workers.worker_stale_s)
    return and_(WorkerHeartbeat.stopped_at.is_(None), WorkerHeartbeat.last_seen >= cutoff)


def live_workers(ctx: ServiceContext) -> int:
    """Worker processes that checked in within WORKER_STALE_S and have not stopped."""
    with ctx.db() as db:
        n = db.scalar(select(func.count()).select_from(WorkerHeartbeat).where(_alive(ctx)))
    return int(n or 0)


def live_worker_names(ctx: ServiceContext) -> list[str]:
    """The names (``host:pid:random``) of the workers ``live_workers`` counts."""
    with ctx.db() as db:
        return list(db.scalars(select(WorkerHeartbeat.name).where(_alive(ctx)).order_by(WorkerHeartbeat.name)))


# When a heartbeat of this process last failed to be written, per context (monotonic seconds).
_beat_failed: weakref.WeakKeyDictionary[ServiceContext, float] = weakref.WeakKeyDictionary()


def silence_is_death(ctx: ServiceContext) -> bool:
    """Whether another worker's silent heartbeat may be read as its death. Not within WORKER_STALE_S of this
    process's own failed beat: a database outage longer than that silences every worker, and once it is over the
    holders of the jobs in flight beat again within WORKER_HEARTBEAT_S; taken for dead meanwhile, their jobs were
    taken over (an attempt spent) and a job on its last attempt given up."""
    failed = _beat_failed.get(ctx)
    return failed is None or time.monotonic() - failed > ctx.settings.workers.worker_stale_s


def holder_gone(now: dt.datetime, stale_s: float, silence_is_death: bool = True) -> Any:
    """SQL condition on a claimed session: the process that claimed it stopped or (``silence_is_death``) stopped
    heartbeating."""
    cutoff = now - dt.timedelta(seconds=stale_s)
    gone = or_(WorkerHeartbeat.stopped_at.is_not(None), WorkerHeartbeat.last_seen < cutoff)
    return exists().where(
        WorkerHeartbeat.name == CertSession.worker_process,
        gone if silence_is_death else WorkerHeartbeat.stopped_at.is_not(None),
    )


def prune(ctx: ServiceContext) -> int:
    cutoff = utcnow() - dt.timedelta(seconds=max(PRUNE_AFTER_S, 2 * ctx.settings.workers.job_lease_s))
    with ctx.db() as db:
        res = db.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen < cutoff))
        return int(getattr(res, "rowcount", 0) or 0)


class Heartbeat:
    """A daemon thread writing this process's row every WORKER_HEARTBEAT_S while ``alive()`` holds.

    ``start`` writes the first beat before it returns (best effort: a database that is down now is only
    logged, the thread keeps trying), so a worker that claims a job right after has a row vouching for it.
    """

    def __init__(
        self, ctx: ServiceContext, kind: str, alive: Callable[[], bool] | None = None, name: str | None = None
    ) -> None:
        self.ctx = ctx
        self.kind = kind
        self.name = name or process_name()  # a worker thread's own row: its name (service/adapters/workers/worker.py)
        self._alive = alive or (lambda: True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = 0.0
        self._failing = False

    def beat_once(self, revive: bool = False) -> bool:
        try:
            beat(self.ctx, self.kind, self.name, revive)
            if time.monotonic() - self._pruned > PRUNE_EVERY_S or not self._pruned:
                self._pruned = time.monotonic()
                prune(self.ctx)
        except Exception as exc:  # the database is down: readiness says so; keep trying
            _beat_failed[self.ctx] = time.monotonic()
            if not self._failing:
                log.warning("worker heartbeat %s failed: %s", self.name, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("worker heartbeat %s written again", self.name)
        self._failing = False
        return True

    def start(self) -> None:
        if self._thread is not None:
            return
        self.beat_once(revive=True)
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ctx.settings.workers.worker_heartbeat_s):
            if self._alive():
                self.beat_once()

    def stop(self, mark: bool = True) -> None:
        """Stop beating; ``mark``: record the stop, so readiness and the claim see it at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if mark:
            try:
                mark_stopped(self.ctx, self.name)
            except Exception as exc:
                log.warning("worker heartbeat %s: could not record the stop: %s", self.name, exc)
