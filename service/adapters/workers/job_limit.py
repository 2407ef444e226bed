"""The embedded workers' per-job time limit (WORKER_MODE process / thread).

A polling worker's job had no time limit: one still running when its lease (JOB_LEASE_S) ended was claimed again
by another worker while its first holder kept decoding, the same video processed twice at once. The limit is
TASK_SOFT_TIME_LIMIT_S, the one Celery's tasks are interrupted at (one home: service/infra/config.py), below the
lease. It is cooperative: the job runs in a ``pipelines.stop`` scope whose check is this ``Deadline``; the pipeline
stops at its next safe point past it (each packet and frame of the video, between its stages) with
``pipelines.stop.Stopped``, and the caller gives the job up (processing.give_up_timed_out: an attempt spent, the
reason in ``last_error``, FAILED for staff after JOB_MAX_ATTEMPTS), before anyone else can claim it.

Nothing is raised into the thread from outside: an exception injected at an arbitrary instruction could land
between a lock's acquire and its ``try`` (logging's handler lock), leaving the lock held and every thread that logs
hung. The price: a job stuck inside one C call (a decoder on one pathological packet, one model inference) stops
only at the safe point after it; such a job can still outlive its lease, and its result is then refused at commit
(processing._apply: the claim is another worker's), as before.
"""

from __future__ import annotations

import logging
import time

from service.infra.config import Settings

log = logging.getLogger(__name__)


def time_limit_s(settings: Settings) -> float:
    """The embedded workers' per-job limit: TASK_SOFT_TIME_LIMIT_S, as for Celery's tasks."""
    return settings.workers.task_soft_time_limit_s


def warn_if_past_lease(settings: Settings) -> None:
    """As tasks.time_limits does for Celery: a limit not below the lease lets a second worker take the job first."""
    w = settings.workers
    if time_limit_s(settings) >= w.job_lease_s:
        log.warning(
            "TASK_SOFT_TIME_LIMIT_S %gs is not below JOB_LEASE_S %ss: an embedded worker's job still running when "
            "its lease ends is claimed again by another worker; keep the limit below the lease",
            time_limit_s(settings),
            w.job_lease_s,
        )


class Deadline:
    """A job's time limit from now, on the monotonic clock; ``passed`` is the check the pipelines' scope asks."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self._at
