"""Console settings (env prefix ``PENSION_CERT_CONSOLE_``), kept apart from the service settings."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PENSION_CERT_CONSOLE_", env_file=None, extra="ignore")

    idle_timeout_s: int = 15 * 60  # a session unused this long is over (shared counter PCs)
    absolute_timeout_s: int = 8 * 3600  # one working day at most
    max_failed_logins: int = 5
    lockout_s: int = 15 * 60
    claim_ttl_s: int = 30 * 60  # a claim older than this may be taken over by another reviewer
    # None: Secure cookies whenever the request came over HTTPS or the service runs in production.
    cookie_secure: bool | None = None
    page_size: int = 50
