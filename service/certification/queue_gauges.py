"""Gauges of the certification queue, counted from the database when /metrics is scraped: jobs pending and
claimed, live workers (fresh heartbeats), and whether the database answered (pension_cert_database_up). The HTTP
adapter's /metrics adds this collector to the registry of service/infra/observability/metrics.py."""

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
    database at scrape time; and whether the database answered, always present."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self._counts()
            live = live_workers(self.ctx)
        except Exception as exc:  # a scrape must still answer (readiness reports the database)
            log.warning("queue gauges: %s", exc)
            # The gauges below are absent then: an alert on `workers_live == 0` found no series and kept quiet
            # through the whole outage. This one says why they are missing.
            yield _database_up(False)
            return
        yield _database_up(True)
        g = GaugeMetricFamily("pension_cert_queue_jobs", "Certification jobs pending and claimed", labels=["state"])
        for label, n in counts.items():
            g.add_metric([label], n)
        yield g
        yield GaugeMetricFamily(
            "pension_cert_workers_live", "Worker processes whose heartbeat is fresh (within WORKER_STALE_S)", value=live
        )

    def _counts(self) -> dict[str, int]:
        states = {SessionState.QUEUED.value: "pending", SessionState.PROCESSING.value: "claimed"}
        with self.ctx.db() as db:
            rows = db.execute(
                select(CertSession.state, func.count())
                .where(CertSession.state.in_(list(states)))
                .group_by(CertSession.state)
            ).all()
        counts = {label: 0 for label in states.values()}
        for state, n in rows:
            counts[states[str(state)]] = int(n)
        return counts


def _database_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "pension_cert_database_up", "1 if the database answered this scrape's queue counts, 0 if not", value=int(up)
    )
