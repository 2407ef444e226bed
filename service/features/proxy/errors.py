"""Service errors of proxy certification; their Chinese messages are in the one catalog
(service.certification.catalog.PROXY_MESSAGES_ZH)."""

from __future__ import annotations

from service.certification.errors import ServiceError

__all__ = ["ProxyServiceError"]


class ProxyServiceError(ServiceError):
    """A refusal of proxy certification (its message comes from the catalog like every ServiceError's)."""
