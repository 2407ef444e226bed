"""What the API's rate limits (service/adapters/http/limits.py) and the staff login back-off
(service/features/console/throttle.py) share: the client's address behind trusted proxies, and where the
counters live (this process, or a Redis shared by every API process). Plain ASGI scopes and settings, no
framework: both the HTTP adapter and the console feature build on it."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.infra.clock import utc_offset_s

if TYPE_CHECKING:  # the settings validate their rules with `parse_rate`: a run-time import would be a cycle
    from service.infra.config import Settings

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE_FORMAT = re.compile(r"(\d+)\s*/\s*(?:(\d+)\s*s|(second|minute|hour|day)s?)")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int
    # Seconds east of UTC the windows are cut at: a day window is the bureau's day (local midnight), not UTC's.
    offset_s: int = 0

    def __str__(self) -> str:
        return f"{self.count} per {self.seconds}s"


def parse_rate(text: str, time_zone: str | None = None) -> Rate | None:
    """Parse "30/minute", "5/10s" or "1000/hour"; an empty string means no limit. `time_zone` (the bureau's): a
    window of whole days starts at its midnight (service/infra/clock.py), not at UTC's (08:00 in Beijing). The one
    reading of a rule: the settings check each `RATE_LIMIT_*` with it when they are read (a rule it refused in the
    middleware, built on the first request, answered every request 500 after `serve` said it was listening)."""
    text = text.strip()
    if not text:
        return None
    m = RATE_FORMAT.fullmatch(text)
    if m is None:
        raise ValueError(
            "not a rate: write N/second, N/minute, N/hour or N/day (or N/Ks: K seconds), e.g. 6000/minute; empty "
            "switches the rule off"
        )
    seconds = int(m.group(2)) if m.group(2) else UNITS[m.group(3)]
    offset = utc_offset_s(time_zone) if time_zone and seconds % UNITS["day"] == 0 else 0
    return Rate(int(m.group(1)), max(1, seconds), offset)


def counter_redis_url(s: Settings) -> str | None:
    """The Redis of counters shared by every API process (rate limits, staff login back-off), or None: in-process."""
    url = s.rate_limit.redis_url or s.workers.broker_url
    use_redis = s.rate_limit.backend == "redis" or (
        s.rate_limit.backend == "auto"
        and s.workers.worker_mode == "celery"
        and url.startswith(("redis://", "rediss://"))
    )
    return url if use_redis else None


def counter_prefix(s: Settings, kind: str) -> str:
    """Redis key prefix of one kind of counter. Two deployments sharing one Redis (say, test and production) must
    not share counters, so the prefix names the deployment (a hash of its database URL)."""
    deployment = hashlib.sha256(s.effective_database_url.encode()).hexdigest()[:8]
    return f"pension-cert:{kind}:{deployment}:"


class ClientAddress:
    """The client's IP: the peer, or the first address in X-Forwarded-For not ours when the peer is a
    trusted proxy (never believe X-Forwarded-For from anyone else: any client can send it)."""

    def __init__(self, trusted: list[str]) -> None:
        self.networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def _trusted(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def __call__(self, scope: dict[str, Any]) -> str:
        peer = str((scope.get("client") or ("unknown", 0))[0])
        if not self.networks or not self._trusted(peer):
            return peer
        # Every X-Forwarded-For line, in order (RFC 9110: one list): a proxy that adds a line of its own instead of
        # appending to the client's (HAProxy's `option forwardfor`) put the real address in the second, and the
        # first alone let a client choose its own.
        forwarded = ", ".join(headers(scope, b"x-forwarded-for"))
        if not forwarded:
            return peer
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer


def is_form_post(content_type: str) -> bool:
    """A plain form post: besides JSON, the one encoding the rate limits read a person from (so the H5
    assistance form, which names one, refuses any other encoding)."""
    return content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """The first `name` header's value (None: absent)."""
    found = headers(scope, name)
    return found[0] if found else None


def headers(scope: dict[str, Any], name: bytes) -> list[str]:
    """Every `name` header's value, in the order the request sent them."""
    return [str(value.decode("latin-1")) for key, value in scope.get("headers") or [] if key == name]
