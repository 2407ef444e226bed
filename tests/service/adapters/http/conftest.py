"""Fixtures for the API tests."""

from __future__ import annotations

import pytest

from service.adapters.http import limits

# A whole hour from its start: every window the tests use (seconds, minutes, hours) holds this instant, so a
# test's hits cannot straddle a window's end when the run happens to cross a minute.
_INSIDE_EVERY_WINDOW = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 1.0


@pytest.fixture
def windows_held(monkeypatch: pytest.MonkeyPatch) -> float:
    """The rate limiter's clock held still inside one window of every size; returns that instant."""
    monkeypatch.setattr(limits, "_clock", lambda: _INSIDE_EVERY_WINDOW)
    return _INSIDE_EVERY_WINDOW
