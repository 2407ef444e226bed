"""The embedded service's daily run: a thread of the API process (worker modes ``process`` and ``thread``; Celery
beat runs it in scale-out, ``pension_cert.daily_run``) that runs the day's cycle once the bureau's clock reaches
CYCLE_RUN_HOUR (service/certification/daily_run.py).

Once a day: a day whose whole run is audited as done (``cycle.completed``, or ``cycle.refused`` by the spike guard)
is not run again, whoever ran it (the operator's route, `pension-cert cycle-run`, this thread before a restart);
a simulated-date run does not count. A service down at that hour runs the day's cycle when it is back, the same
day; a run that failed part-way (the database, or the store's upkeep: a bucket down) is tried again, RETRY_S
later, the cycle part a no-op. A refusal is not retried: an operator looks, then forces the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from service.certification import daily_run as daily_run_module
from service.certification.context import ServiceContext
from service.certification.cycle import CycleSpikeError
from service.certification.daily_run import SCHEDULE_ACTOR, DailyRun, daily_run
from service.infra import clock

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 60.0  # how often the thread looks at the clock
RETRY_S = 600.0  # after a failed run: each try audits a `cycle.run`, so not every minute while a bucket is down
EMBEDDED_MODES = ("process", "thread")


class DailyRunThread:
    def __init__(
        self,
        ctx: ServiceContext,
        interval_s: float = CHECK_INTERVAL_S,
        now: Callable[[], dt.datetime] | None = None,
        retry_s: float = RETRY_S,
    ) -> None:
        self.ctx, self.interval_s, self.retry_s = ctx, interval_s, max(retry_s, interval_s)
        self._now = now or (lambda: clock.now_utc())  # read at each call: tests fix clock.now_utc
        self._done: dt.date | None = None  # the last day run (or refused) here: no query each minute after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daily-run", daemon=True)

    def due(self) -> dt.date | None:
        """The bureau's today when its run is due (the schedulers' one gate: daily_run.schedule_gate)."""
        day, state = daily_run_module.schedule_gate(self.ctx, self._now(), done=self._done)
        if state == daily_run_module.DONE:
            self._done = day
        return day if state == daily_run_module.DUE else None

    def tick(self) -> DailyRun | None:
        """Run today's cycle if it is due; the run, or None."""
        day = self.due()
        if day is None:
            return None
        try:
            run = daily_run(self.ctx, SCHEDULE_ACTOR)
        except CycleSpikeError:
            self._done = day  # audited and counted by daily_run; an operator forces it, never this thread
            return None
        self._done = run.date
        return run

    def _run(self) -> None:
        wait = self.interval_s
        while not self._stop.wait(wait):
            wait = self.interval_s
            try:
                self.tick()
            except Exception:
                wait = self.retry_s
                log.exception("daily run failed; tried again in %g s", wait)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def install_daily_run(app: FastAPI) -> None:
    """Start the daily thread with the app in the embedded modes (not with Celery, whose beat runs it, nor with
    WORKER_MODE=none, where whoever runs the workers schedules it), unless CYCLE_RUN_HOUR is -1."""
    ctx: ServiceContext = app.state.ctx
    if ctx.settings.workers.worker_mode not in EMBEDDED_MODES or ctx.settings.cycle.cycle_run_hour < 0:
        return
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:  # Any: Starlette's lifespan state (free-form)
        thread = DailyRunThread(ctx)
        thread.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            thread.stop()

    app.router.lifespan_context = lifespan
