"""Service errors of proxy certification; their Chinese messages are in the one catalog
(service.certification.catalog.PROXY_MESSAGES_ZH, re-exported here for the callers that name it)."""

from __future__ import annotations

from service.certification.catalog import PROXY_MESSAGES_ZH
from service.certification.errors import ServiceError

__all__ = ["PROXY_MESSAGES_ZH", "ProxyServiceError"]


class ProxyServiceError(ServiceError):
    """A refusal of proxy certification (its message comes from the catalog like every ServiceError's)."""
