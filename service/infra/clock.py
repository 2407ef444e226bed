"""The bureau's calendar: which day it is where the pensioners live.

Times are stored as naive UTC, but a certification, a cycle run, a reminder or a message is dated by the
bureau's calendar (``Settings.time_zone``, Asia/Shanghai by default): a decision at 07:30 China time is that
day's, not the previous UTC day's, and the daily cycle's "today" changes at local midnight, not at 08:00.
Every calendar date the service derives goes through here, and every "now" it stores (`now_utc`).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo


class HasTimeZone(Protocol):
    @property
    def time_zone(self) -> str: ...


def now_utc() -> dt.datetime:
    """The current instant (aware, UTC): the service's one clock. `local_today` and `models.utcnow` (every stored
    time, the columns' defaults) read it, so a stored time and its bureau date never disagree; tests hold it still
    here, and only here (docs/security.md Part AT)."""
    return dt.datetime.now(dt.UTC)


def local_date(settings: HasTimeZone, at: dt.datetime) -> dt.date:
    """The bureau's calendar date of an instant (a naive datetime is UTC, as stored)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(ZoneInfo(settings.time_zone)).date()


def local_today(settings: HasTimeZone, now: dt.datetime | None = None) -> dt.date:
    """Today in the bureau's time zone (``now``: a fixed instant, for tests and replays)."""
    return local_date(settings, now if now is not None else now_utc())


def local_day_start(settings: HasTimeZone, at: dt.datetime) -> dt.datetime:
    """The instant (naive UTC, as stored) at which the bureau's calendar day of `at` began: "since midnight"
    for daily counts is local midnight (16:00 UTC the day before in China), not UTC midnight."""
    return local_midnight(settings, local_date(settings, at))


def local_midnight(settings: HasTimeZone, day: dt.date) -> dt.datetime:
    """The instant (naive UTC, as stored) at which the bureau's calendar day `day` begins: a stored time is on or
    after the bureau's `day` when it is at or past this (2026-12-05 in Beijing begins 2026-12-04 16:00 UTC)."""
    zone = ZoneInfo(settings.time_zone)
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)


def utc_offset_s(time_zone: str, at: dt.datetime | None = None) -> int:
    """Seconds `time_zone` is ahead of UTC at `at` (now when not given): 28,800 in China, all year."""
    offset = (at or now_utc()).astimezone(ZoneInfo(time_zone)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0
