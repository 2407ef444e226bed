"""scripts/services.sh when a port it wants is already taken (docs/security.md Part AD, a new operator's first
hour): the documented `eval "$(bash scripts/services.sh start)"` must stop with one line naming the port and the
variable that moves it, and print no exports, instead of `pg_ctl: could not start server / Examine the log
output.` (which log?) or, for Redis, hanging forever on a program that does not answer."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.scripts.test_services_sh import SCRIPT, _exports, _redis, base, pytestmark  # noqa: F401 - fixture, skip mark
from tests.service.servers import free_port


def _services(
    base: Path,  # noqa: F811 - the fixture's value
    command: str,
    pg_port: int,
    redis_port: int,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PENSION_CERT_SERVICES_DIR": str(base),
        "PENSION_CERT_PG_PORT": str(pg_port),
        "PENSION_CERT_REDIS_PORT": str(redis_port),
    }
    for name in ("PGPASSWORD", "REDISCLI_AUTH"):
        env.pop(name, None)
    return subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


@contextmanager
def squatter() -> Iterator[int]:
    """A program holding a loopback port: it accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_a_taken_postgresql_port_is_named_with_the_variable_that_moves_it(base: Path) -> None:  # noqa: F811
    redis_port = free_port()
    with squatter() as pg_port:
        try:
            started = _services(base, "start", pg_port, redis_port)
        finally:
            _services(base, "stop", pg_port, redis_port)
    assert started.returncode != 0
    assert _exports(started.stdout) == {}  # nothing for `eval` to set: the shell keeps its embedded defaults
    assert f"127.0.0.1:{pg_port}" in started.stderr and "PENSION_CERT_PG_PORT" in started.stderr, started.stderr
    assert "Examine the log output" not in started.stderr


def test_a_taken_redis_port_stops_at_once_instead_of_hanging(base: Path) -> None:  # noqa: F811
    pg_port = free_port()
    with squatter() as redis_port:
        began = time.monotonic()
        try:
            started = _services(base, "start", pg_port, redis_port, timeout=90)
        finally:
            _services(base, "stop", pg_port, redis_port)
        took = time.monotonic() - began
    assert started.returncode != 0
    assert _exports(started.stdout) == {}
    assert f"127.0.0.1:{redis_port}" in started.stderr and "PENSION_CERT_REDIS_PORT" in started.stderr, started.stderr
    assert took < 60, took


def test_another_accounts_redis_on_the_port_gets_neither_the_password_nor_the_jobs(base: Path) -> None:  # noqa: F811
    """A password-less Redis already on the port (another local account's, started before the operator's first
    `start`) was taken for one of this script's older ones: it got the new password (`CONFIG SET requirepass`)
    and the exported broker URL pointed at it, so its owner received every job and could feed the workers."""
    pg_port, redis_port = free_port(), free_port()
    other = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=base.parent,
    )
    try:
        deadline = time.monotonic() + 10
        while "PONG" not in _redis(redis_port, "ping") and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            started = _services(base, "start", pg_port, redis_port)
        finally:
            _services(base, "stop", pg_port, redis_port)
        assert started.returncode != 0
        assert _exports(started.stdout) == {}
        assert "PENSION_CERT_REDIS_PORT" in started.stderr, started.stderr
        assert _redis(redis_port, "config", "get", "requirepass").split() == ["requirepass"]  # no password given
        assert "PONG" in _redis(redis_port, "ping")  # and `stop` left the other program's server alone
    finally:
        other.terminate()
        other.wait(10)


def test_an_older_set_ups_redis_without_a_password_still_gets_one(base: Path) -> None:  # noqa: F811
    """The case the taken-port checks must keep: this set-up's own Redis, started password-less by an older
    version of the script (its pidfile in the services folder), is given the password at the next `start`."""
    pg_port, redis_port = free_port(), free_port()
    try:
        first = _services(base, "start", pg_port, redis_port)
        assert first.returncode == 0, first.stderr
        password = (base / "redis.password").read_text()
        subprocess.run(
            ["redis-cli", "--no-auth-warning", "-p", str(redis_port), "shutdown", "nosave"],
            env={**os.environ, "REDISCLI_AUTH": password},
            capture_output=True,
            timeout=30,
            check=False,
        )
        # What the older script ran: no requirepass.
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--dir",
                str(base),
                "--logfile",
                str(base / "redis.log"),
                "--pidfile",
                str(base / "redis.pid"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 10
        while "PONG" not in _redis(redis_port, "ping") and time.monotonic() < deadline:
            time.sleep(0.1)
        again = _services(base, "start", pg_port, redis_port)
        assert again.returncode == 0, again.stderr
        assert "NOAUTH" in _redis(redis_port, "ping")
        assert _exports(again.stdout) == _exports(first.stdout)
    finally:
        _services(base, "stop", pg_port, redis_port)
    assert "Could not connect" in _redis(redis_port, "ping")


@contextmanager
def recorder() -> Iterator[tuple[int, list[bytes]]]:
    """A program on a loopback port that records what it is sent (and answers nothing)."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    while data := conn.recv(4096):
                        received.append(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_moved_redis_port_never_sends_the_password_or_a_shutdown_to_the_new_ports_program(
    base: Path,  # noqa: F811
) -> None:
    """Review: `our_redis` checked the pidfile's process, not that it listens on PENSION_CERT_REDIS_PORT. With the
    port changed after a start (or `stop` run with another environment), `start` sent AUTH <password> to whatever
    listened on the new port and `stop` sent it AUTH + `shutdown nosave` (another account's password-less Redis
    would have stopped), leaving this set-up's Redis running."""
    pg_port, redis_port = free_port(), free_port()
    try:
        first = _services(base, "start", pg_port, redis_port)
        assert first.returncode == 0, first.stderr
        password = (base / "redis.password").read_text()
        pid = int((base / "redis.pid").read_text())
        with recorder() as (other_port, received):
            moved = _services(base, "start", pg_port, other_port, timeout=90)
            stopped = _services(base, "stop", pg_port, other_port, timeout=90)
            time.sleep(0.5)
        sent = b"".join(received)
        assert password.encode() not in sent and b"shutdown" not in sent.lower(), sent
        assert moved.returncode != 0 and _exports(moved.stdout) == {}
        assert f"127.0.0.1:{other_port}" in moved.stderr and "PENSION_CERT_REDIS_PORT" in moved.stderr, moved.stderr
        assert stopped.returncode == 0, stopped.stderr
        assert not Path(f"/proc/{pid}").exists()  # `stop` stopped this set-up's Redis, whatever the port says
        assert "Could not connect" in _redis(redis_port, "ping")
    finally:
        _services(base, "stop", pg_port, redis_port)
