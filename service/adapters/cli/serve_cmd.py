"""`pension-cert serve` (API + in-process worker on the embedded defaults) and `pension-cert worker`
(a standalone polling worker for the same database: scale-out without Celery, and crash-recovery tests)."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
import errno
import functools
import ipaddress
import logging
import os
import shlex
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from service.adapters.cli.common import (
    EXIT_CONFIG,
    EXIT_UNAVAILABLE,
    CliError,
    check_database_role,
    load_settings,
    setting_line,
)

# service.infra.config (pydantic-settings) and service.certification.context (SQLAlchemy, the stores) are imported
# inside the
# handlers, not here: this module is imported to build `serve --help` / `worker --help`, which must answer at
# once (tests/service/adapters/cli/test_cli_imports.py). service.infra.security is imported with them.
if TYPE_CHECKING:
    import uvicorn

    from service.adapters.cli.demo import DemoKit
    from service.infra.config import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # The CLI builds the full parser only for the command it runs (service/adapters/cli/__init__.py); the sibling
    # name of
    # this module may already stand there as a placeholder, which is kept.
    if "serve" not in sub.choices:
        _register_serve(sub)
    if "worker" not in sub.choices:
        w = sub.add_parser("worker", help="process queued certification sessions (polls the database)")
        w.add_argument("--once", action="store_true", help="process what is queued, then exit")
        w.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it ends")
        w.set_defaults(func=_worker)


def _register_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the HTTP API (OpenAPI docs at /docs) with its worker",
        description="Run the HTTP API with its workers until Ctrl-C (or SIGTERM). "
        "Listens on 127.0.0.1:8000 unless --host/--port say otherwise (0.0.0.0: every interface).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on, 0-65535 (default 8000; 0: any free)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="development: write the demo kit (matching ID card + selfie video) to VAR_DIR/demo, import its "
        "beneficiary and fix the challenge to the actions the video performs (docs/service.md walk-through)",
    )
    p.set_defaults(func=_serve)


def _port(text: str) -> int:
    """A TCP port: the socket layer would take 70000 as 70000 - 65536 and listen on another port than asked."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.infra.locations import api_location_problems
    from service.infra.observability.logs import install_log_masking

    install_log_masking()
    sock = bind_port(args.host, args.port)  # first: a port in use is said at once, not after loading the models
    settings: Settings = load_settings(sends=True)  # every settings problem, one line each, exit 4
    exposed = dev_secrets_off_loopback(settings, sock.getsockname()[0])
    if exposed:
        sock.close()
        fixes = "\n  ".join(setting_line(variable, "a public development default") for variable in exposed)
        raise CliError(
            f"--host {args.host} reaches beyond this machine: set your own keys, or listen on 127.0.0.1:\n  {fixes}",
            EXIT_CONFIG,
            code="DEV_SECRETS_OFF_LOOPBACK",
        )
    serve_only = api_location_problems(settings)  # the folders only the API reads: no other command's concern
    if serve_only:
        sock.close()
        raise CliError(
            "invalid settings:\n  " + "\n  ".join(setting_line(variable, why) for variable, why in serve_only),
            EXIT_CONFIG,
            code="CONFIG_INVALID",
        )
    check_models(settings.certification.model_pack)
    check_database_role(settings)
    base = f"http://{args.host}:{sock.getsockname()[1]}"  # the real port, also for --port 0
    unset = "PENSION_CERT_PUBLIC_BASE_URL" not in os.environ  # env: set explicitly, not the default
    # Never filled in production: certificates print it, and the start-up check (Settings.production_weaknesses)
    # refuses one not set there rather than a listening address.
    if unset and settings.env != "production":
        settings = settings.model_copy(update={"public_base_url": base})
    kit = None
    if args.demo:
        kit = _demo_kit(settings)
        if not settings.certification.challenge_actions:
            # The kit's video performs these actions; a real deployment issues random ones.
            fixed = settings.certification.model_copy(update={"challenge_actions": list(kit.actions)})
            settings = settings.model_copy(update={"certification": fixed})
    # After the settings and the port are checked: the app brings the model runtime (seconds of imports), and a
    # bad setting is answered without waiting for it.
    from service.adapters.http.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings, args.host, args.port, verbose=args.verbose))
    threading.Thread(target=_say_when_listening, args=(server, base), daemon=True).start()
    if kit is not None:
        from service.adapters.cli.demo import prepare_when_up

        say = functools.partial(_say_demo_ready, base=base, kit_dir=settings.var_dir / "demo")
        threading.Thread(target=prepare_when_up, args=(base, settings, kit, say), daemon=True).start()
    server.run(sockets=[sock])
    return 0 if server.started else 1


def dev_secrets_off_loopback(settings: Settings, address: str) -> list[str]:
    """The variables holding a key printed in this repository (settings.dev_default_secrets, and the development
    admin key where it is in force) when the service reaches beyond this machine: a listening address that is
    not loopback, or a reverse proxy in front (trusted proxies, a public base URL elsewhere) forwarding the
    network to loopback. Development defaults are for this machine only."""
    from service.adapters.http.deps import admin_keys
    from service.infra.config import DEV_ADMIN_API_KEY

    base_host = (urlsplit(settings.public_base_url).hostname or "").strip("[]")
    only_here = (
        _is_loopback(address)
        and not settings.security.trusted_proxies
        and (base_host == "localhost" or _is_loopback(base_host))
    )
    if only_here:
        return []
    public = settings.dev_default_secrets()
    if DEV_ADMIN_API_KEY in admin_keys(settings):  # one home: the key is in force in development only
        public.append("PENSION_CERT_ADMIN_API_KEYS")
    return public


def _is_loopback(host: str) -> bool:
    try:
        return bool(ipaddress.ip_address(host.split("%", 1)[0]).is_loopback)  # an IPv6 zone (fe80::1%eth0) dropped
    except ValueError:  # a name: only "localhost" is known to stay here
        return False


def bind_port(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything slow; a port already taken is a one-line error with its own
    exit code (EXIT_UNAVAILABLE), not uvicorn's log line and exit 1."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CliError(f"--host {host}: unknown address ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart over TIME_WAIT
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is already in use (another pension-cert serve?): stop that process "
                "or choose another port with --port",
                EXIT_UNAVAILABLE,
                code="PORT_IN_USE",
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise CliError(f"--host {host}: not an address of this machine") from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_UNAVAILABLE) from None
    # Listening now (uvicorn accepts later): with SO_REUSEADDR a port merely bound could be bound again by a
    # second `serve` started meanwhile; a listening one cannot.
    sock.listen()
    return sock


def _say_when_listening(server: uvicorn.Server, base: str) -> None:
    """One line on stderr once the server accepts connections: where, and how to stop it."""
    while not server.started and not server.should_exit:
        time.sleep(0.1)
    if server.started:
        sys.stderr.write(
            f"pension-cert: listening on {base} (API docs {base}/docs, staff console {base}/console/, "
            f"mobile pages {base}/h5/); stop with Ctrl-C\n"
        )
        sys.stderr.flush()


def _demo_kit(settings: Settings) -> DemoKit:
    from service.adapters.cli.demo import data_dir_or_none, write_kit

    if settings.env != "development":
        # The kit imports a made-up pensioner and fixes the challenge: never on a real roster.
        raise CliError(
            f"--demo is for development only (PENSION_CERT_ENV is {settings.env})", EXIT_CONFIG, code="DEMO_NOT_DEV"
        )
    data_dir = data_dir_or_none()
    if data_dir is None:
        raise CliError(
            "--demo needs the development data (../shared/data): set PENSION_CERT_DATA_DIR to it", code="NO_DEMO_DATA"
        )
    return write_kit(data_dir, settings.var_dir / "demo")


# The walk-through's own defaults (scripts/demo_walkthrough.sh): BASE, and KIT relative to the checkout.
WALKTHROUGH_BASE = "http://127.0.0.1:8000"
WALKTHROUGH_KIT = "var/demo"


def _say_demo_ready(kit: DemoKit, base: str = WALKTHROUGH_BASE, kit_dir: Path = Path(WALKTHROUGH_KIT)) -> None:
    # The command to try, with BASE and KIT where this server and its kit are not the walk-through's defaults
    # (`PORT=8080 bash scripts/start.sh`, PENSION_CERT_VAR_DIR): without them it went to port 8000 and ./var/demo.
    # The default var/demo is the checkout's when the server runs there, as scripts/start.sh does.
    where = [f"BASE={shlex.quote(base)}"] if base != WALKTHROUGH_BASE else []
    if kit_dir != Path(WALKTHROUGH_KIT):
        where.append(f"KIT={shlex.quote(str(kit_dir.resolve()))}")
    command = " ".join([*where, "bash scripts/demo_walkthrough.sh"])
    sys.stderr.write(
        f"pension-cert: demo ready: beneficiary {kit.external_id} ({kit.name}) imported; card {kit.card}, "
        f"video {kit.video}, challenge {','.join(kit.actions)}. Try: {command} "
        "(docs/service.md, 'Walk-through with curl')\n"
    )
    sys.stderr.flush()


def uvicorn_config(app: Any, settings: Settings, host: str, port: int, verbose: bool = False) -> uvicorn.Config:
    """uvicorn believes X-Forwarded-For / X-Forwarded-Proto only from PENSION_CERT_TRUSTED_PROXIES, as the rate
    limits do (service/adapters/http/limits.py). Left to itself it trusts 127.0.0.1 (or $FORWARDED_ALLOW_IPS): anything
    that reaches the port through loopback could then choose its client address and dodge every per-IP rule.
    No trusted proxy: proxy headers off altogether."""
    import uvicorn

    trusted = list(settings.security.trusted_proxies)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if verbose else "warning",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
    )


def check_models(pack_name: str | None) -> None:
    """Fail at start, with the fetch hint, rather than leave every session queued behind dead workers: the rule of
    `models list` and of the Celery worker's start (models_cmd.check_models)."""
    from service.adapters.cli.models_cmd import check_models as check_pack

    check_pack(pack_name)


def _worker(args: argparse.Namespace) -> int:
    from service.infra.observability.logs import install_log_masking

    install_log_masking()
    settings: Settings = load_settings(sends=True)  # every settings problem, one line each, exit 4
    # Every model file present and sound, as `serve` and the Celery worker check it: `--once` with nothing queued
    # loaded no model, and failed each job it found (docs/security.md, Part AS).
    check_models(settings.certification.model_pack)
    check_database_role(settings)
    # After the settings: the worker brings the model runtime (seconds of imports), a bad setting need not wait.
    import service.schema
    from service.adapters.workers.worker import PollingWorker, shared_certifier
    from service.certification.context import ServiceContext
    from service.infra import wakeup

    ctx = ServiceContext(settings, schema=service.schema.metadata)
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
        shared_certifier(settings.certification)  # load the models before the first job, once for this process
        log.info("worker %s ready", worker.name)
        worker.run_forever()
    finally:
        heartbeat.stop()  # after the job in flight: from now on its row says stopped (SIGKILL: it goes stale)
    return 0
