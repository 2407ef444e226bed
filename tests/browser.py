"""Shared set-up of the browser tests: Debian's Chromium (never a downloaded browser) and the screenshot folder."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

CHROMIUM = "/usr/bin/chromium"
# Headless as root in a sandbox-less container; no background connections (the machine has no network).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("PENSION_CERT_SCREENSHOTS_DIR", REPO / "bench" / "results" / "screenshots"))


@contextmanager
def serve_in_thread(app: Any, port: int, **config: Any) -> Iterator[None]:
    """Run the ASGI app with uvicorn on 127.0.0.1:`port` in a thread for the duration of the block.

    log_config=None keeps the tests' logging set-up, so uvicorn's own log lines reach capturing handlers.
    """
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def launched_chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium, headless with the project's flags (plus `extra_args`), closed at the end of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()
