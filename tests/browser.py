"""Shared set-up of the browser tests: Debian's Chromium (never a downloaded browser) and the screenshot folder."""

from __future__ import annotations

import os
from pathlib import Path

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
