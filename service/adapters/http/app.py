"""The FastAPI application: one ServiceContext, the routers, the error mapping, and (embedded modes) the
workers started, supervised (a dead one is replaced) and stopped with the app."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

import service.schema
from service.adapters.http.body_limit import BodyLimitMiddleware
from service.adapters.http.docs import install_docs
from service.adapters.http.edges import install_edges
from service.adapters.http.errors import install_error_handlers
from service.adapters.http.observability import install_observability
from service.adapters.http.routes_certificates import router as certificates_router
from service.adapters.http.routes_registry import router as registry_router
from service.adapters.http.routes_revocations import router as revocations_router
from service.adapters.http.routes_sessions import router as sessions_router
from service.adapters.http.schemas import EXACT, Health
from service.adapters.http.upload import ArrivalMiddleware
from service.adapters.workers.daily import install_daily_run
from service.adapters.workers.supervisor import Supervisor
from service.adapters.workers.worker import PollingWorker
from service.certification import heartbeat
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.features.console.install import install_console
from service.features.install import install_features
from service.features.proxy import routes as proxy_routes
from service.features.wechat.routes import install_wechat
from service.infra import wakeup
from service.infra.config import Settings, get_settings
from service.infra.observability import metrics
from service.infra.observability.logs import install_log_masking

log = logging.getLogger(__name__)


def start_worker_processes(
    n: int, metrics_dir: str | None = None, extra_env: dict[str, str] | None = None
) -> list[subprocess.Popen[bytes]]:
    """`pension-cert worker` processes with this process's environment (hence the same settings)."""
    cmd = [sys.executable, "-m", "service.adapters.cli", "worker", "--exit-with-parent"]
    env = {**os.environ, **(extra_env or {})}  # env: handed down whole, the children load the same settings
    if metrics_dir is not None:
        # Set before the worker imports prometheus_client: its metrics go to files the API's /metrics reads
        # (and it opens no metrics port of its own).
        env[metrics.MULTIPROC_ENV] = metrics_dir
        env.pop("PENSION_CERT_METRICS_PORT", None)
    procs = [subprocess.Popen(cmd, env=env) for _ in range(max(1, n))]
    log.info("started %d worker processes: %s", len(procs), [p.pid for p in procs])
    return procs


def stop_worker_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()  # the worker finishes its job in flight, then marks its heartbeat stopped
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()  # its heartbeat goes stale: another worker redoes the job


def supervise_worker_processes(ctx: ServiceContext, metrics_dir: str | None) -> Supervisor[subprocess.Popen[bytes]]:
    """``WORKER_PROCESSES`` `pension-cert worker` processes, each replaced when it dies
    (service/adapters/workers/supervisor.py).
    A dead one's heartbeat row is marked stopped at once, so the job it held is claimable now."""

    tokens: dict[int, str] = {}  # pid → the random part of that child's heartbeat name

    def spawn(_i: int) -> subprocess.Popen[bytes]:
        token = secrets.token_hex(4)
        p = start_worker_processes(1, metrics_dir, {heartbeat.TOKEN_ENV: token})[0]
        tokens[p.pid] = token
        return p

    def died(p: subprocess.Popen[bytes]) -> None:
        heartbeat.mark_stopped(ctx, heartbeat.name_for(p.pid, tokens.pop(p.pid, "")))

    supervisor = Supervisor(
        ctx.settings, "process", ctx.settings.workers.worker_processes, spawn, _process_alive, _process_describe, died
    )
    supervisor.start()
    return supervisor


def _process_alive(p: subprocess.Popen[bytes]) -> bool:
    return p.poll() is None


def _process_describe(p: subprocess.Popen[bytes]) -> str:
    code = p.returncode
    if code is None:
        return f"pid {p.pid}"
    if code < 0:
        try:
            return f"pid {p.pid}, killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"pid {p.pid}, killed by signal {-code}"
    return f"pid {p.pid}, exit code {code}"


def create_app(
    settings: Settings | None = None,
    ctx: ServiceContext | None = None,
    certifier_factory: Callable[[], Certifier] | None = None,
) -> FastAPI:
    settings = settings or (ctx.settings if ctx else get_settings())
    # The core's decision hooks and notifiers; a context of our own creates every table (service/schema.py).
    ctx = install_features(ctx or ServiceContext(settings, schema=service.schema.metadata))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_masking(settings.observability.log_format)
        worker = None
        supervisor: Supervisor[subprocess.Popen[bytes]] | None = None
        if settings.workers.worker_mode == "process":
            supervisor = supervise_worker_processes(ctx, str(metrics.reset_multiproc_dir(settings)))
            ctx.enqueue = wakeup.notifier(wakeup.socket_dir(settings))
        elif settings.workers.worker_mode == "thread":
            worker = PollingWorker(ctx, certifier_factory)
            ctx.enqueue = worker.wake
            worker.start(settings.workers.worker_threads)
        elif settings.workers.worker_mode == "celery":
            from service.adapters.workers.tasks import make_enqueue  # lazy: celery only in celery mode

            ctx.enqueue = make_enqueue(settings)  # a broker outage is logged; the sweeper re-announces the job
        app.state.worker, app.state.worker_supervisor = worker, supervisor  # operations and tests
        yield
        if worker is not None:
            worker.stop()
        if supervisor is not None:
            supervisor.stop()  # no restarts while stopping
            stop_worker_processes(supervisor.handles)

    app = FastAPI(
        title="pension-cert",
        description="养老待遇资格认证服务: roster, certification sessions, decisions, certificates",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from local files: FastAPI's own pages load a public CDN
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_docs(app)  # /docs, /redoc and their assets, all from this process (works with no outside network)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max(settings.uploads.max_video_bytes, 64 * 1024 * 1024))
    for r in (registry_router, revocations_router, sessions_router, certificates_router):
        app.include_router(r)
    install_console(app)  # staff pages under /console
    install_wechat(app)  # WeChat server URL, JS-SDK config, H5 pages under /h5, notification schedule
    install_daily_run(app)  # embedded modes: the daily cycle run at CYCLE_RUN_HOUR (Celery: beat)
    app.include_router(proxy_routes.router)  # /api/v1/proxy: relatives certifying for elders
    install_observability(app, ctx)  # request ids, latency, security headers, rate limits, /metrics, /readyz
    # Outermost, after every other: when the request arrived, before anything reads its body (upload.py).
    app.add_middleware(ArrivalMiddleware)

    @app.get("/healthz", tags=["ops"], response_model=Health, **EXACT)
    def healthz() -> Health:
        return Health(status="ok")

    install_edges(app)  # no trailing-slash redirect to the Host asked; HEAD as GET (outermost of all)
    return app
