"""scripts/services.sh (the one-machine PostgreSQL + Redis set-up, docs/service.md "Scale-out") as a local user
without the service's secrets sees it (docs/security.md Part Q): neither server may take a connection that
brings no password, the folder that holds their data and secrets is its owner's alone, a planted symlink is not
followed, and a second `start` (and an older set-up's data) works."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.servers import free_port, postgres_available

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "services.sh"

pytestmark = pytest.mark.skipif(
    not postgres_available() or shutil.which("redis-server") is None or shutil.which("psql") is None,
    reason="needs the postgresql and redis-server binaries (scripts/setup.sh)",
)


@pytest.fixture
def base() -> Iterator[Path]:
    # Outside root's private pytest folders: the postgres system user must reach it when the test runs as root.
    parent = Path(tempfile.mkdtemp(prefix="pension-cert-services-test-", dir="/var/tmp"))
    parent.chmod(0o711)
    yield parent / "services"
    shutil.rmtree(parent, ignore_errors=True)


def _services(base: Path, command: str, pg_port: int, redis_port: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PENSION_CERT_SERVICES_DIR": str(base),
        "PENSION_CERT_PG_PORT": str(pg_port),
        "PENSION_CERT_REDIS_PORT": str(redis_port),
    }
    env.pop("PGPASSWORD", None)
    env.pop("REDISCLI_AUTH", None)
    return subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _exports(stdout: str) -> dict[str, str]:
    """What the documented `exports=$(bash scripts/services.sh start) && eval "$exports"` sets, run in bash."""
    show = 'eval "$1" || exit 1; for v in ${!PENSION_CERT_@}; do printf "%s=%s\\n" "$v" "${!v}"; done'
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENSION_CERT_")}
    done = subprocess.run(
        ["bash", "-c", show, "_", stdout], capture_output=True, text=True, env=env, timeout=30, check=True
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def _anonymous_psql(port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGPASSFILE": "/dev/null", "PGCONNECT_TIMEOUT": "5"}
    env.pop("PGPASSWORD", None)
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-w", "-tAc", "SELECT 1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def _redis(port: int, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, env=env, timeout=30, check=False
    )
    return done.stdout + done.stderr


def test_the_servers_ask_for_a_password_and_the_folder_is_private(base: Path) -> None:
    pg_port, redis_port = free_port(), free_port()
    try:
        started = _services(base, "start", pg_port, redis_port)
        assert started.returncode == 0, started.stderr
        exports = _exports(started.stdout)
        # Before: --auth=trust on 127.0.0.1 and a Redis without requirepass: any local account was the database
        # superuser and could queue tasks on the broker.
        anonymous = _anonymous_psql(pg_port)
        assert anonymous.returncode != 0 and "password" in anonymous.stderr, anonymous.stdout
        assert "NOAUTH" in _redis(redis_port, "ping")
        assert stat.S_IMODE(base.stat().st_mode) == 0o700
        for secret in base.glob("*.password"):
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
        # What the script prints works: the exported URLs carry the passwords.
        import psycopg
        import redis

        url = exports["PENSION_CERT_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        assert redis.Redis.from_url(exports["PENSION_CERT_BROKER_URL"]).ping()
        # A second start (the documented `eval "$(bash scripts/services.sh start)"` in a new shell) reuses it all.
        again = _services(base, "start", pg_port, redis_port)
        assert again.returncode == 0, again.stderr
        assert _exports(again.stdout) == exports
    finally:
        stopped = _services(base, "stop", pg_port, redis_port)
    assert stopped.returncode == 0
    assert _anonymous_psql(pg_port).returncode != 0 and "Could not connect" in _redis(redis_port, "ping")


def test_a_planted_symlink_is_refused_not_followed(base: Path) -> None:
    """The default folder is a fixed name in /var/tmp, which every local account can write: one planted as a
    symlink to another folder made the script (as root) chown that folder to postgres and keep the data there."""
    victim = base.parent / "victim"
    victim.mkdir(mode=0o755)
    base.symlink_to(victim)
    pg_port, redis_port = free_port(), free_port()
    try:
        refused = _services(base, "start", pg_port, redis_port)
    finally:
        _services(base, "stop", pg_port, redis_port)  # the old script started both servers in the victim folder
    assert refused.returncode != 0
    assert "symlink" in refused.stderr
    assert victim.stat().st_uid == os.geteuid() and not (victim / "pgdata").exists()


def test_start_never_shows_the_passwords(base: Path) -> None:
    """`start` printed both URLs with their passwords (for `eval`): run bare, or under CI, a terminal's scroll-back or
    a job log kept them. It prints a line that reads them from a 0600 file in the private folder."""
    pg_port, redis_port = free_port(), free_port()
    try:
        started = _services(base, "start", pg_port, redis_port)
        assert started.returncode == 0, started.stderr
        secrets = [path.read_text().strip() for path in base.glob("*.password")]
        assert len(secrets) == 2 and all(secrets)
        for secret in secrets:
            assert secret not in started.stdout + started.stderr, started.stdout
        exports = _exports(started.stdout)  # the documented eval still sets every URL
        assert exports["PENSION_CERT_WORKER_MODE"] == "celery"
        assert any(secret in exports["PENSION_CERT_DATABASE_URL"] for secret in secrets)
        assert any(secret in exports["PENSION_CERT_BROKER_URL"] for secret in secrets)
        kept = [path for path in base.iterdir() if path.is_file() and str(path) in started.stdout]
        assert len(kept) == 1 and stat.S_IMODE(kept[0].stat().st_mode) == 0o600, started.stdout
    finally:
        _services(base, "stop", pg_port, redis_port)
