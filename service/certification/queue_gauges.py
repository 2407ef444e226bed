"""Gauges of the certification queue, counted from the database when /metrics is scraped: jobs pending and
claimed, and live workers (fresh heartbeats). The HTTP adapter's /metrics adds this collector to the registry
of service/infra/observability/metrics.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.heartbeat import live_workers
from service.certification.models import CertSession, SessionState

log = logging.getLogger(__name__)


class QueueCollector(Collector):
    """Jobs waiting (queued) and claimed (processing), and live workers (fresh heartbeats), counted from the
    database at scrape time."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        states = {SessionState.QUEUED.value: "pending", SessionState.PROCESSING.value: "claimed"}
        try:
            with self.ctx.db() as db:
                rows = db.execute(
                    select(CertSession.state, func.count())
                    .where(CertSession.state.in_(list(states)))
                    .group_by(CertSession.state)
                ).all()
        except Exception as exc:  # a scrape must still answer (readiness reports the database)
            log.warning("queue depth: %s", exc)
            return
        counts = {label: 0 for label in states.values()}
        for state, n in rows:
            counts[states[str(state)]] = int(n)
        g = GaugeMetricFamily("pension_cert_queue_jobs", "Certification jobs pending and claimed", labels=["state"])
        for label, n in counts.items():
            g.add_metric([label], n)
        yield g
        try:
            live = live_workers(self.ctx)
        except Exception as exc:
            log.warning("live workers: %s", exc)
            return
        yield GaugeMetricFamily(
            "pension_cert_workers_live", "Worker processes whose heartbeat is fresh (within WORKER_STALE_S)", value=live
        )
