"""Staff login back-off, keyed by requester: failures slow down the one who makes them, never the account.

Two rules, both counted per client IP (``service.infra.ratelimit.ClientAddress``: X-Forwarded-For only from
``TRUSTED_PROXIES``):

- per (client IP, username): ``LOGIN_FREE_FAILURES`` failures are free, then each further attempt waits
  ``LOGIN_BACKOFF_BASE_S`` × 2^(failures − free) after the last failure, at most ``LOGIN_BACKOFF_MAX_S``;
  a successful login clears it, and it is forgotten ``LOGIN_FORGET_S`` after the last failure;
- per client IP: ``LOGIN_IP_MAX_FAILURES`` failures in a ``LOGIN_IP_WINDOW_S`` window (fixed windows), whatever
  the names tried (password spraying), then every attempt from that IP waits for the next window.

The rules never look at the staff table: an unknown username backs off exactly like a known one, so the answers
say nothing about which accounts exist. A stranger who fails against an account slows down only himself; the
staff member logging in from another address is not affected.

Each attempt is counted as a failure before the password is checked, and cleared when it succeeds: parallel
guesses cannot all slip in while the first one is being verified. Counters live in this process, or in Redis
when the rate limits use Redis (``RATE_LIMIT_BACKEND``: shared by every API process). A Redis outage lets
attempts through uncounted (logged), as the rate limits do; argon2 still makes each guess slow.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from service.infra.ratelimit import ClientAddress, counter_prefix, counter_redis_url

if TYPE_CHECKING:
    from service.certification.context import ServiceContext
    from service.features.console.config import ConsoleConfig

log = logging.getLogger(__name__)


def _clock() -> float:
    """The wall clock (one name, so tests can move it)."""
    return time.time()


@dataclass(frozen=True)
class BackoffPolicy:
    free_failures: int = 5
    base_s: float = 2.0
    max_s: float = 15 * 60
    ip_max_failures: int = 50
    ip_window_s: int = 15 * 60
    forget_s: int = 24 * 3600

    @classmethod
    def of(cls, cfg: ConsoleConfig) -> BackoffPolicy:
        return cls(
            free_failures=cfg.login_free_failures,
            base_s=cfg.login_backoff_base_s,
            max_s=cfg.login_backoff_max_s,
            ip_max_failures=cfg.login_ip_max_failures,
            ip_window_s=max(1, cfg.login_ip_window_s),
            forget_s=max(1, cfg.login_forget_s),
        )

    def delay(self, failures: int) -> float:
        """How long after the last failure the next attempt may come, for this many failures in a row."""
        if failures < self.free_failures:
            return 0.0
        return float(min(self.max_s, self.base_s * 2.0 ** min(failures - self.free_failures, 64)))

    def wait(self, now: float, failures: int, last: float, ip_failures: int) -> float:
        """Seconds before the next attempt is allowed (0: now)."""
        wait = max(0.0, last + self.delay(failures) - now) if failures else 0.0
        if self.ip_max_failures > 0 and ip_failures >= self.ip_max_failures:
            window_end = (int(now // self.ip_window_s) + 1) * self.ip_window_s
            wait = max(wait, window_end - now)
        return wait


class BackoffStore(Protocol):
    def attempt(self, pair: str, ip: str, policy: BackoffPolicy, now: float) -> float:
        """0: the attempt may go ahead and is counted as a failure (pair and IP) until `succeeded`;
        otherwise the seconds to wait, and nothing is counted."""
        ...

    def succeeded(self, pair: str, ip: str, policy: BackoffPolicy, now: float) -> None:
        """Clear the pair and uncount the attempt from the IP's window."""
        ...


class MemoryBackoff:
    """Per-process counters (embedded default: one API process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pairs: dict[str, tuple[int, float]] = {}  # pair -> (failures in a row, last failure)
        self._ips: dict[str, tuple[int, int]] = {}  # ip -> (window index, failures in it)
        self._ops = 0

    def attempt(self, pair: str, ip: str, policy: BackoffPolicy, now: float) -> float:
        window = int(now // policy.ip_window_s)
        with self._lock:
            self._prune(policy, now)
            failures, last = self._pairs.get(pair, (0, 0.0))
            if now - last > policy.forget_s:
                failures = 0
            ip_window, ip_failures = self._ips.get(ip, (window, 0))
            if ip_window != window:
                ip_failures = 0
            wait = policy.wait(now, failures, last, ip_failures)
            if wait > 0:
                return wait
            self._pairs[pair] = (failures + 1, now)
            self._ips[ip] = (window, ip_failures + 1)
            return 0.0

    def succeeded(self, pair: str, ip: str, policy: BackoffPolicy, now: float) -> None:
        window = int(now // policy.ip_window_s)
        with self._lock:
            self._pairs.pop(pair, None)
            ip_window, ip_failures = self._ips.get(ip, (window, 0))
            if ip_window == window and ip_failures > 0:
                self._ips[ip] = (window, ip_failures - 1)

    def _prune(self, policy: BackoffPolicy, now: float) -> None:
        self._ops += 1
        if self._ops % 1000:
            return
        # Without this, guesses from many addresses would grow memory for ever.
        window = int(now // policy.ip_window_s)
        self._pairs = {k: v for k, v in self._pairs.items() if now - v[1] <= policy.forget_s}
        self._ips = {k: v for k, v in self._ips.items() if v[0] == window}


class RedisBackoff:
    """Counters in Redis, shared by every API process; every key expires by itself."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 0.25) -> None:
        import redis  # lazy: redis only when the counters are shared (celery mode or RATE_LIMIT_BACKEND=redis)

        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._warned = 0.0

    def _keys(self, pair: str, ip: str, policy: BackoffPolicy, now: float) -> tuple[str, str]:
        window = int(now // policy.ip_window_s)
        return f"{self.prefix}pair:{pair}", f"{self.prefix}ip:{ip}:{policy.ip_window_s}:{window}"

    def attempt(self, pair: str, ip: str, policy: BackoffPolicy, now: float) -> float:
        pair_key, ip_key = self._keys(pair, ip, policy, now)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hmget(pair_key, ["n", "t"])
            pipe.get(ip_key)
            (n, t), ip_n = pipe.execute()
            failures, last = int(n or 0), float(t or 0.0)
            wait = policy.wait(now, failures, last, int(ip_n or 0))
            if wait > 0:
                return wait
            pipe = self._redis.pipeline(transaction=True)
            pipe.hincrby(pair_key, "n", 1)
            pipe.hset(pair_key, "t", repr(now))
            pipe.expire(pair_key, policy.forget_s)
            pipe.set(ip_key, 0, ex=policy.ip_window_s + 1, nx=True)  # created with its expiry: never sticks
            pipe.incr(ip_key)
            pipe.execute()
        except Exception as exc:
            self._outage(exc, now)
        return 0.0

    def succeeded(self, pair: str, ip: str, policy: BackoffPolicy, now: float) -> None:
        pair_key, ip_key = self._keys(pair, ip, policy, now)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(pair_key)
            pipe.set(ip_key, 1, ex=policy.ip_window_s + 1, nx=True)
            pipe.decr(ip_key)
            pipe.execute()
        except Exception as exc:
            self._outage(exc, now)

    def _outage(self, exc: Exception, now: float) -> None:
        if now - self._warned > 60:
            log.warning("staff login back-off not enforced, redis unavailable: %s", exc)
            self._warned = now


class LoginThrottle:
    """The back-off of one app: `attempt` before checking a password, `succeeded` after a right one."""

    def __init__(self, ctx: ServiceContext, policy: BackoffPolicy, store: BackoffStore | None = None) -> None:
        self.ctx = ctx
        self.policy = policy
        self.store = store or make_store(ctx)
        self.client_address = ClientAddress(ctx.settings.security.trusted_proxies)

    def ip_of(self, scope: Mapping[str, Any]) -> str:
        """The client's address: the peer, or X-Forwarded-For from a trusted proxy (as the rate limits)."""
        return self.client_address(dict(scope))

    def _ids(self, ip: str, username: str) -> tuple[str, str]:
        # Keyed hashes: the counters never hold a name or an address.
        mac = self.ctx.keyring.mac
        return mac(f"login-pair:{ip}|{username.strip()}")[:24], mac(f"login-ip:{ip}")[:24]

    def attempt(self, ip: str, username: str) -> float:
        pair, who = self._ids(ip, username)
        return self.store.attempt(pair, who, self.policy, _clock())

    def succeeded(self, ip: str, username: str) -> None:
        pair, who = self._ids(ip, username)
        self.store.succeeded(pair, who, self.policy, _clock())


def make_store(ctx: ServiceContext) -> BackoffStore:
    s = ctx.settings
    url = counter_redis_url(s)
    if url is None:
        return MemoryBackoff()
    return RedisBackoff(url, counter_prefix(s, "login"), s.rate_limit.redis_timeout_s)


def wait_text(seconds: float) -> str:
    """How long the login page asks to wait: "30 秒", "5 分钟"."""
    if seconds < 120:
        return f"{max(1, math.ceil(seconds))} 秒"
    return f"{math.ceil(seconds / 60)} 分钟"
