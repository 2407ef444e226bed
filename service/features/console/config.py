"""Console settings (env prefix ``PENSION_CERT_CONSOLE_``), kept apart from the service settings."""

from __future__ import annotations

import json
import re
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.infra.config import DEFAULT_TIME_ZONE as DEFAULT_TIME_ZONE  # the service's: pages default to it
from service.infra.config import known_zone

# A host name or IPv4 address, or an IPv6 literal in brackets: no scheme, port, path or wildcard.
HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]")


def host_key(host: str) -> str:
    """A host as compared with ``hosts``: lower-case, without a trailing dot (``Console.Example.cn.`` is
    ``console.example.cn``)."""
    return host.strip().lower().rstrip(".")


class ConsoleConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PENSION_CERT_CONSOLE_", env_file=None, extra="ignore")

    idle_timeout_s: int = 15 * 60  # a session unused this long is over (shared counter PCs)
    absolute_timeout_s: int = 8 * 3600  # one working day at most
    # Login back-off per (client IP, username) and per client IP (service/features/console/throttle.py); no account is
    # ever locked by failures: that would let anyone lock staff out.
    login_free_failures: int = 5  # failures per IP and username before the back-off starts
    login_backoff_base_s: float = 2.0  # then 2, 4, 8 … s after the last failure
    login_backoff_max_s: float = 15 * 60
    login_ip_max_failures: int = 50  # failures per IP per window, whatever the usernames (0: no cap)
    login_ip_window_s: int = 15 * 60
    login_forget_s: int = 24 * 3600  # a (IP, username) pair's failures are forgotten this long after the last
    claim_ttl_s: int = 30 * 60  # a claim older than this may be taken over by another reviewer
    # A reviewer who gives a case back once their claim has run out may claim it again only this long after giving
    # it back (colleagues at once): 放回队列 and 领取 would otherwise renew a lapsed claim for ever
    # (review_queue.reclaim_at).
    reclaim_wait_s: int = Field(default=30 * 60, ge=0)
    # None: Secure cookies whenever the request came over HTTPS or the service runs in production.
    cookie_secure: bool | None = None
    page_size: int = 50
    # The day's heavy viewers (/console/access/volume, access_log.py): staff who opened more distinct people's records
    # (pages, cases, requests), or searched the roster more often, since the bureau's midnight. 100: a full-time
    # reviewer at the yearly peak decides about one case every 4-5 minutes, some 100 a day; more is more than a
    # day's assigned work explains, and worth a supervisor's question (docs/console.md).
    views_alert_per_day: int = Field(default=100, ge=1)
    # Pages show times in this zone, with its abbreviation (stored times are UTC). Unset: the service-wide
    # PENSION_CERT_TIME_ZONE (service/infra/config.py), which also dates certifications; this name stays as an override.
    time_zone: str | None = None
    # The host names the console is served on, each apart from the H5 pages' (docs/operations.md, "Two host
    # names"): on them only /console (and /healthz, /readyz) answers, elsewhere /console is a 404
    # (service/features/console/hosts.py). Comma-separated or a JSON list. Empty: every host serves everything.
    hosts: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("hosts", mode="before")
    @classmethod
    def _host_names(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [h for h in text.split(",") if h.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(h, str) for h in value):
            raise ValueError("a comma-separated list of host names (or a JSON list of strings)")
        hosts = tuple(host_key(h) for h in value)
        for host in hosts:
            if not HOST_NAME.fullmatch(host):
                raise ValueError(f"{host!r} is not a host name (give the name only: no scheme, port or path)")
        return hosts

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        # Refused at start, not on the first page: an unknown zone would fail every page that shows a time.
        return None if name is None else known_zone(name)
