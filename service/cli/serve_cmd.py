"""`pension-cert serve` (API + in-process worker on the embedded defaults) and `pension-cert worker`
(a standalone polling worker for the same database: scale-out without Celery, and crash-recovery tests)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from service.config import Settings, get_settings
from service.context import ServiceContext
from service.security import install_log_masking

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the HTTP API (OpenAPI docs at /docs) with its worker")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--demo", action="store_true", help="once up, run a sample certification against it")
    p.set_defaults(func=_serve)
    w = sub.add_parser("worker", help="process queued certification sessions (polls the database)")
    w.add_argument("--once", action="store_true", help="process what is queued, then exit")
    w.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it ends")
    w.set_defaults(func=_worker)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.api import create_app

    install_log_masking()
    settings = get_settings()
    check_models(settings.model_pack)
    if "PENSION_CERT_PUBLIC_BASE_URL" not in os.environ:
        settings = settings.model_copy(update={"public_base_url": f"http://{args.host}:{args.port}"})
    if args.demo and not settings.challenge_actions:
        from service.demo import DEMO_ACTIONS

        # The sample video performs these actions; a real deployment issues random ones.
        settings = settings.model_copy(update={"challenge_actions": DEMO_ACTIONS})
    app = create_app(settings)
    if args.demo:
        from service.demo import run_demo_when_up

        base = f"http://{args.host}:{args.port}"
        threading.Thread(target=run_demo_when_up, args=(base, settings), daemon=True).start()
    server = uvicorn.Server(uvicorn_config(app, settings, args.host, args.port, verbose=args.verbose))
    server.run()
    return 0 if server.started else 1


def uvicorn_config(app: Any, settings: Settings, host: str, port: int, verbose: bool = False) -> uvicorn.Config:
    """uvicorn believes X-Forwarded-For / X-Forwarded-Proto only from PENSION_CERT_TRUSTED_PROXIES, as the rate
    limits do (service/api/limits.py). Left to itself it trusts 127.0.0.1 (or $FORWARDED_ALLOW_IPS): anything
    that reaches the port through loopback could then choose its client address and dodge every per-IP rule.
    No trusted proxy: proxy headers off altogether."""
    import uvicorn

    trusted = list(settings.trusted_proxies)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if verbose else "warning",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
    )


def check_models(pack_name: str | None) -> None:
    """Fail at start, with the fetch hint, rather than leave every session queued behind dead workers."""
    from models.packs import load_pack

    pack = load_pack(pack_name)
    for role in ("detector", "recognizer", "landmarks", "antispoof"):
        for name in pack.resolve(role):
            pack.store.path(name)  # raises ModelMissingError naming the file and how to get it


def _worker(args: argparse.Namespace) -> int:
    from service import wakeup
    from service.worker import PollingWorker, shared_certifier

    install_log_masking()
    settings = get_settings()
    ctx = ServiceContext(settings)
    worker = PollingWorker(ctx)
    heartbeat = worker.start_heartbeat("process")  # before loading the models: readiness sees a worker coming up
    if args.once:
        try:
            while worker.run_once():
                pass
        finally:
            heartbeat.stop()
        return 0

    def stop(_sig: int, _frame: FrameType | None) -> None:
        worker.stop(timeout=0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # `serve` nudges its workers right after an upload is committed, so a job starts now, not at the next poll.
    wakeup.listen(wakeup.socket_dir(settings), worker.wake)
    if args.exit_with_parent:
        parent = os.getppid()

        def watch() -> None:
            # Started by `serve`: if serve dies (even SIGKILL), do not live on as an orphan.
            while os.getppid() == parent:
                time.sleep(2)
            worker.stop(timeout=0)

        threading.Thread(target=watch, daemon=True).start()
    try:
        shared_certifier(settings.model_pack)  # load the models before the first job, once for this process
        log.info("worker %s ready", worker.name)
        worker.run_forever()
    finally:
        heartbeat.stop()  # after the job in flight: from now on its row says stopped (SIGKILL: it goes stale)
    return 0
