"""`pension-cert serve` starts uvicorn believing proxy headers only from PENSION_CERT_TRUSTED_PROXIES (issue #22):
uvicorn's own default trusts X-Forwarded-For from 127.0.0.1, whatever the service's setting says. And its start-up
failures are one line each with their own exit code (issue #21 item 6): a port in use, a bad host, --demo without
the development data."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from service.adapters.cli.common import EXIT_CONFIG, EXIT_INPUT, EXIT_UNAVAILABLE, CliError
from service.adapters.cli.serve_cmd import bind_port, uvicorn_config
from service.infra.config import Settings, settings_from_flat

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn.Config applies its logging config to the process: not in the middle of a test session."""
    monkeypatch.setattr(uvicorn.Config, "configure_logging", lambda self: None)


def client_seen(settings: Settings, peer: str, forwarded_for: str) -> tuple[str, str]:
    """(client address, scheme) the app sees behind the uvicorn config `serve` builds."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["client"], seen["scheme"] = scope["client"][0], scope["scheme"]

    config = uvicorn_config(app, settings, "127.0.0.1", 8000)
    config.load()
    scope = {
        "type": "http",
        "scheme": "http",
        "client": (peer, 50000),
        "headers": [(b"x-forwarded-for", forwarded_for.encode()), (b"x-forwarded-proto", b"https")],
    }

    async def call() -> None:
        await config.loaded_app(scope, None, None)

    asyncio.run(call())
    return seen["client"], seen["scheme"]


def test_no_trusted_proxy_no_proxy_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # uvicorn's own knob must not reopen it
    config = uvicorn_config(object(), Settings(), "127.0.0.1", 8000)
    assert config.proxy_headers is False
    # A local client (or anything relayed through loopback) cannot pick its address or scheme.
    assert client_seen(Settings(), "127.0.0.1", "203.0.113.7") == ("127.0.0.1", "http")


def test_forwarded_for_believed_only_from_the_trusted_proxies() -> None:
    settings = settings_from_flat(trusted_proxies=["10.0.0.0/8"])
    config = uvicorn_config(object(), settings, "0.0.0.0", 8000)
    assert config.proxy_headers is True and config.forwarded_allow_ips == ["10.0.0.0/8"]
    assert client_seen(settings, "10.1.2.3", "203.0.113.7, 10.9.9.9") == ("203.0.113.7", "https")
    # Loopback is not one of ours here: its X-Forwarded-For is ignored, as any stranger's.
    assert client_seen(settings, "127.0.0.1", "203.0.113.7") == ("127.0.0.1", "http")
    assert client_seen(settings, "198.51.100.9", "203.0.113.7") == ("198.51.100.9", "http")


def serve(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`pension-cert serve …` as a user runs it (a fresh process, its own var folder and working directory)."""
    full_env = {**os.environ, "PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(REPO), **env}
    cmd = [sys.executable, "-m", "service.adapters.cli", "serve", *args]
    return subprocess.run(cmd, env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)


def test_port_in_use_is_one_line_and_its_own_exit_code(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = serve(["--port", str(port)], tmp_path)
    assert run.returncode == EXIT_UNAVAILABLE == 5  # not 3 ("model files"), not uvicorn's 1
    lines = run.stderr.strip().splitlines()
    assert lines == [
        f"pension-cert: PORT_IN_USE: port {port} on 127.0.0.1 is already in use (another pension-cert serve?): "
        "stop that process or choose another port with --port"
    ]


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("no-such-host.invalid", "--host no-such-host.invalid: unknown address ("),
        ("192.0.2.1", "--host 192.0.2.1: not an address of this machine"),  # TEST-NET-1: never ours
    ],
)
def test_bad_host_is_one_line(tmp_path: Path, host: str, says: str) -> None:
    run = serve(["--host", host, "--port", "0"], tmp_path)
    assert run.returncode == EXIT_INPUT
    assert run.stderr.startswith("pension-cert: " + says)
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_demo_without_the_development_data_says_what_to_set(tmp_path: Path) -> None:
    # Working directory with no ../shared/data, and PENSION_CERT_DATA_DIR pointing at an empty folder.
    (tmp_path / "empty").mkdir()
    run = serve(["--demo", "--port", "0"], tmp_path, PENSION_CERT_DATA_DIR=str(tmp_path / "empty"))
    assert run.returncode == EXIT_INPUT
    assert run.stderr.strip().splitlines() == [
        "pension-cert: NO_DEMO_DATA: --demo needs the development data (../shared/data): "
        "set PENSION_CERT_DATA_DIR to it"
    ]


def test_demo_is_refused_outside_development(tmp_path: Path) -> None:
    """The kit imports a made-up pensioner and fixes the challenge: never on a real roster."""
    secrets = {
        "PENSION_CERT_MEDIA_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PENSION_CERT_SIGNING_KEY": os.urandom(16).hex(),
        "PENSION_CERT_API_KEYS": json.dumps([os.urandom(16).hex()]),
        "PENSION_CERT_ADMIN_API_KEYS": json.dumps([os.urandom(16).hex()]),
    }
    run = serve(["--demo", "--port", "0"], tmp_path, PENSION_CERT_ENV="test", **secrets)
    assert run.returncode == EXIT_CONFIG
    assert run.stderr.strip().splitlines()[-1] == (
        "pension-cert: DEMO_NOT_DEV: --demo is for development only (PENSION_CERT_ENV is test)"
    )


def test_bound_socket_is_the_one_uvicorn_serves(tmp_path: Path) -> None:
    """bind_port hands uvicorn a bound socket: the port is taken from that moment (a second serve fails)."""
    sock = bind_port("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with pytest.raises(CliError) as exc:
            bind_port("127.0.0.1", port)
        assert exc.value.exit_code == EXIT_UNAVAILABLE and exc.value.code == "PORT_IN_USE"
    finally:
        sock.close()
