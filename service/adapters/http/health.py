"""Readiness: can this API process serve certifications right now?

Each check runs in its own thread with a deadline, so /readyz answers within ~2 s even when a dependency
hangs; a check still running from an earlier probe is reported as timing out instead of piling up threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from sqlalchemy import text

from models.ocr_pins import OcrModelError, ocr_problems
from models.packs import load_pack
from service.certification.context import ServiceContext
from service.certification.heartbeat import WORKER_MODES_CHECKED, live_workers

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 1.0
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")
_running: dict[tuple[int, str], Future[None]] = {}
_running_lock = threading.Lock()


class CheckResult(TypedDict):
    """One check's answer in /readyz (schemas.ReadinessCheck): `error` only when it failed."""

    ok: bool
    error: NotRequired[str]


class ReadinessBody(TypedDict):
    """The /readyz body (schemas.ReadinessBody), sent as is with 200 or 503."""

    status: str
    failing: list[str]
    checks: dict[str, CheckResult]


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, CheckResult] = field(default_factory=dict)

    @property
    def failing(self) -> list[str]:
        return [name for name, c in self.checks.items() if not c["ok"]]

    def to_dict(self) -> ReadinessBody:
        return {"status": "ready" if self.ready else "unready", "failing": self.failing, "checks": self.checks}

    def public(self) -> ReadinessBody:
        """The body for a caller without the operator's token: which checks fail, not why (an exception's class
        names the driver or a Python internal; the log and a keyed probe have it)."""
        checks: dict[str, CheckResult] = {name: {"ok": c["ok"]} for name, c in self.checks.items()}
        return {"status": "ready" if self.ready else "unready", "failing": self.failing, "checks": checks}


def check_database(ctx: ServiceContext) -> None:
    with ctx.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_storage(ctx: ServiceContext) -> None:
    ctx.storage.check()


def check_broker(ctx: ServiceContext) -> None:
    import redis  # lazy: redis only in celery mode

    client = redis.Redis.from_url(ctx.settings.workers.broker_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
    finally:
        client.close()


def check_models(ctx: ServiceContext) -> None:
    pack = load_pack(ctx.settings.certification.model_pack)
    for role in ("detector", "recognizer", "landmarks", "antispoof"):
        for name in pack.resolve(role):
            pack.store.path(name)  # raises ModelMissingError naming the missing file
    ocr = ocr_problems()  # the ID-card OCR models inside their package, pinned by sha256
    if ocr:
        raise OcrModelError("; ".join(ocr))


class NoLiveWorkerError(RuntimeError):
    """No worker process has written its heartbeat within WORKER_STALE_S (or every one stopped)."""


def check_workers(ctx: ServiceContext) -> None:
    if live_workers(ctx) == 0:
        raise NoLiveWorkerError(f"no worker heartbeat within {ctx.settings.workers.worker_stale_s:g}s")


def checks_for(ctx: ServiceContext) -> dict[str, Callable[[ServiceContext], None]]:
    checks: dict[str, Callable[[ServiceContext], None]] = {
        "database": check_database,
        "storage": check_storage,
        "models": check_models,
    }
    if ctx.settings.workers.worker_mode == "celery":
        checks["broker"] = check_broker
    if ctx.settings.workers.worker_mode in WORKER_MODES_CHECKED:
        checks["workers"] = check_workers
    return checks


def readiness(ctx: ServiceContext, timeout_s: float = CHECK_TIMEOUT_S) -> Readiness:
    started: dict[str, Future[None]] = {}
    stuck: list[str] = []
    for name, fn in checks_for(ctx).items():
        key = (id(ctx), name)
        with _running_lock:
            previous = _running.get(key)
            if previous is not None and not previous.done():
                stuck.append(name)
                continue
            _running[key] = started[name] = _pool.submit(fn, ctx)
    t0 = time.monotonic()
    wait(list(started.values()), timeout=timeout_s)
    result: dict[str, CheckResult] = {n: {"ok": False, "error": "still running from an earlier probe"} for n in stuck}
    for name, fut in started.items():
        if not fut.done():
            result[name] = {"ok": False, "error": f"no answer within {timeout_s:.1f}s"}
            continue
        exc = fut.exception()
        if exc is None:
            result[name] = {"ok": True}
        else:
            log.warning("readiness %s: %s", name, exc)
            # Only the exception's class goes out, and only to a keyed probe (`Readiness.public`); the log has the
            # message.
            result[name] = {"ok": False, "error": type(exc).__name__}
    log.debug("readiness in %.3fs", time.monotonic() - t0)
    ok = all(c["ok"] for c in result.values())
    return Readiness(ok, dict(sorted(result.items())))
