"""`pension-cert serve` starts uvicorn believing proxy headers only from PENSION_CERT_TRUSTED_PROXIES (issue #22):
uvicorn's own default trusts X-Forwarded-For from 127.0.0.1, whatever the service's setting says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn

from service.cli.serve_cmd import uvicorn_config
from service.config import Settings


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
    settings = Settings(trusted_proxies=["10.0.0.0/8"])
    config = uvicorn_config(object(), settings, "0.0.0.0", 8000)
    assert config.proxy_headers is True and config.forwarded_allow_ips == ["10.0.0.0/8"]
    assert client_seen(settings, "10.1.2.3", "203.0.113.7, 10.9.9.9") == ("203.0.113.7", "https")
    # Loopback is not one of ours here: its X-Forwarded-For is ignored, as any stranger's.
    assert client_seen(settings, "127.0.0.1", "203.0.113.7") == ("127.0.0.1", "http")
    assert client_seen(settings, "198.51.100.9", "203.0.113.7") == ("198.51.100.9", "http")
