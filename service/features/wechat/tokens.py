"""Central storage of the WeChat access token and JS-SDK ticket.

WeChat allows few token fetches a day and each fetch invalidates the previous token, so workers must not fetch
on their own. Every process reads the token from one store; a refresh happens under the store's lock, so only one
process refreshes at a time (the scheduled refresher, or the first process that finds the token stale), and the
others re-read what it stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class TokenStore(Protocol):
    def get(self, key: str) -> tuple[str, float] | None:
        """(value, expires_at epoch seconds) or None."""
        ...

    def set(self, key: str, value: str, expires_at: float) -> None: ...

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive across every process sharing the store."""
        ...


class MemoryTokenStore:
    """One process (the embedded default: API and in-process worker share it)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> tuple[str, float] | None:
        value = self._values.get(key)
        if value is None or value[1] <= time.time():
            return None
        return value

    def set(self, key: str, value: str, expires_at: float) -> None:
        self._values[key] = (value, expires_at)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        with self._guard:
            lk = self._locks.setdefault(key, threading.Lock())
        with lk:
            yield


class RedisTokenStore:
    """Scale-out: every API and worker process shares the token through Redis; the lock is a Redis lock."""

    def __init__(self, url: str, prefix: str = "pension-cert:") -> None:
        import redis  # lazy: redis only for a token store shared by several processes

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix

    def get(self, key: str) -> tuple[str, float] | None:
        raw = self._redis.hmget(self._prefix + key, ["value", "expires_at"])
        if raw[0] is None or raw[1] is None:
            return None
        expires_at = float(raw[1])
        if expires_at <= time.time():
            return None
        value = raw[0]
        return (value.decode() if isinstance(value, bytes) else str(value)), expires_at

    def set(self, key: str, value: str, expires_at: float) -> None:
        name = self._prefix + key
        pipe = self._redis.pipeline()
        pipe.hset(name, mapping={"value": value, "expires_at": repr(expires_at)})
        pipe.expireat(name, int(expires_at) + 1)
        pipe.execute()

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        # The timeout frees the lock of a process that died while refreshing.
        with self._redis.lock(self._prefix + "lock:" + key, timeout=30, blocking_timeout=35):
            yield
