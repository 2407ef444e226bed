"""Operations: request ids and JSON logs, Prometheus metrics, readiness checks, security headers.

``install_observability(app, ctx)`` wires the middleware and the ``/metrics`` and ``/readyz`` endpoints;
workers call ``service.infra.observability.metrics`` directly to record stage latencies and decisions.
"""

from __future__ import annotations

from service.infra.observability.context import bind_session, current_request_id
from service.infra.observability.logs import JsonFormatter, configure_logging

__all__ = ["JsonFormatter", "bind_session", "configure_logging", "current_request_id"]
