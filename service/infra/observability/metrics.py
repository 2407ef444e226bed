"""Prometheus metrics of the service (prometheus_client), defined once here.

Processes: the API records HTTP metrics in its own registry. Embedded workers (`worker_mode=process`) are
started with ``PROMETHEUS_MULTIPROC_DIR`` set (before they import prometheus_client), so their stage and
decision metrics land in files that the API's ``/metrics`` reads with ``MultiProcessCollector``; the queue
depth is counted from the database at scrape time (service/certification/queue_gauges.py, added by /metrics).
A worker on another machine (`pension-cert worker`, celery) serves its own registry on ``metrics_port``.
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

if TYPE_CHECKING:
    from service.infra.config import Settings

log = logging.getLogger(__name__)

# prometheus_client's own variable, not a setting of ours: prometheus_client reads it at import, so it is set in
# the environment of the worker processes we start, and this process reads the environment to know whether it
# is itself one of them.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STAGES = ("id_card", "liveness", "face_match", "decision", "total")

HTTP_LATENCY = Histogram(
    "pension_cert_http_request_duration_seconds",
    "HTTP request latency by method, route template and status class",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RATE_LIMITED = Counter("pension_cert_rate_limited", "Requests refused with 429 RATE_LIMITED, by rule", ["rule"])
STAGE_LATENCY = Histogram(
    "pension_cert_stage_duration_seconds",
    "Certification stage latency in the worker (id_card, liveness, face_match, decision, total)",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0),
)
DECISIONS = Counter("pension_cert_decisions", "Decisions applied, by band", ["decision"])
DECISION_REASONS = Counter(
    "pension_cert_decision_reasons", "Reason codes of applied decisions, by band and reason", ["decision", "reason"]
)
JOB_RETRIES = Counter("pension_cert_job_transient_failures", "Jobs released for another try (database, storage)")
# Why a job went to staff as failed (a fixed set: the label never carries input): every attempt's worker died
# (give_up_exhausted), its last attempt ran past the time limit, or raised an error.
FAILED_CAUSES = ("worker_lost", "time_limit", "error")
JOBS_FAILED = Counter(
    "pension_cert_jobs_failed", "Jobs given up to staff as failed after their last attempt, by cause", ["cause"]
)
for _cause in FAILED_CAUSES:
    JOBS_FAILED.labels(_cause)  # each series at 0 from the start: an alert on increase() sees the first one
WORKER_RESTARTS = Counter(
    "pension_cert_worker_restarts", "Embedded workers that died and were replaced by the supervisor", ["mode"]
)
UPLOADS_DELAYED = Counter(
    "pension_cert_uploads_delayed", "Sessions queued while no worker had a fresh heartbeat (kept, answered delayed)"
)
CYCLE_REFUSED = Counter(
    "pension_cert_cycle_refused", "Cycle runs refused before any change: an unusual share would be suspended"
)
REFUSAL_AUDITS_LOST = Counter(
    "pension_cert_refusal_audits_lost",
    "Refusals (4xx) answered without their audit entry: the database was unavailable; each is logged at ERROR",
)


def observe_report(timings: dict[str, float]) -> None:
    for stage, seconds in timings.items():
        if stage in STAGES:
            STAGE_LATENCY.labels(stage).observe(seconds)


def observe_decision(decision: str, reasons: Iterable[str]) -> None:
    DECISIONS.labels(decision).inc()
    for reason in reasons:
        DECISION_REASONS.labels(decision, reason).inc()


def multiproc_dir(settings: Settings) -> Path:
    return settings.var_dir / "prometheus"


def reset_multiproc_dir(settings: Settings) -> Path:
    """At API start: the files of earlier workers' runs would otherwise be summed into the new counters."""
    path = multiproc_dir(settings)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _merge_samples(kind: str, samples: Iterable[Sample]) -> list[Sample]:
    """One sample per series (name and labels). A metric with no labels exists at 0 in every process that
    imports this module, the API included: listed twice, a scrape kept one value, most likely the API's 0, and
    the workers' count was lost. Counts (counters, histogram buckets, sums) of several processes add up, as the
    multiprocess collector adds the workers' own; a ``_created`` time is the earliest; a gauge the highest."""
    merged: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
    for sample in samples:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        seen = merged.get(key)
        if seen is None:
            merged[key] = sample
        elif sample.name.endswith("_created"):
            merged[key] = seen._replace(value=min(seen.value, sample.value))
        elif kind == "gauge":
            merged[key] = seen._replace(value=max(seen.value, sample.value))
        else:
            merged[key] = seen._replace(value=seen.value + sample.value)
    return list(merged.values())


class _Merged(Collector):
    """One family per name and one sample per series: the API's own and the workers' (multiprocess files)."""

    def __init__(self, sources: list[Any]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for source in self.sources:
            for family in source.collect():
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        for family in merged.values():
            family.samples = _merge_samples(family.type, family.samples)
            yield family


class MediaFreeCollector(Collector):
    """Free space on the local media store's volume, read at scrape time (``free_bytes``): an alert can fire
    before uploads get 507 STORAGE_FULL and /readyz turns the storage check red."""

    def __init__(self, free_bytes: Callable[[], int]) -> None:
        self.free_bytes = free_bytes

    def collect(self) -> Iterator[Metric]:
        try:
            free = self.free_bytes()
        except OSError as exc:  # a scrape must still answer (readiness reports the store)
            log.warning("media free space: %s", exc)
            return
        yield GaugeMetricFamily("pension_cert_media_free_bytes", "Free bytes on the media store's volume", value=free)


def render(settings: Settings, *collectors: Collector) -> tuple[bytes, str]:
    """The /metrics body of the API process: its own registry, the `collectors` the caller adds (gauges counted
    at scrape time, e.g. the certification queue's) and, in process mode, the workers' multiprocess files."""
    sources: list[Any] = [REGISTRY, *collectors]
    path = multiproc_dir(settings)
    in_worker = MULTIPROC_ENV in os.environ  # env: prometheus_client's own variable (MULTIPROC_ENV above)
    if settings.workers.worker_mode == "process" and path.is_dir() and not in_worker:
        sources.append(MultiProcessCollector(None, path=str(path)))  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(sources))
    return generate_latest(registry), CONTENT_TYPE_LATEST


_served_lock = threading.Lock()
_served = False


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape every few seconds is not news."""


def may_read(token: str, authorization: str | None, production: bool) -> bool:
    """The one check of the operator's bearer token (`METRICS_TOKEN`): the API's /metrics and the reasons in its
    /readyz (service.adapters.http.observability.may_read_metrics), and a worker's own metrics port. No token set:
    open, except in production, where nobody reads (a production start refuses that anyway)."""
    if not token:
        return not production
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())


def metrics_wsgi_app(registry: CollectorRegistry, token: str, production: bool = False) -> Any:
    """prometheus_client's exposition app behind the API's rule (``may_read``)."""
    exposition = make_wsgi_app(registry)

    def app(request: dict[str, Any], start_response: Any) -> Any:  # WSGI: the request's own environ dict
        if not may_read(token, request.get("HTTP_AUTHORIZATION"), production):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"metrics need the bearer token\n"]
        return exposition(request, start_response)

    return app


def start_metrics_server(
    port: int, token: str, registry: CollectorRegistry, addr: str = "0.0.0.0", production: bool = False
) -> WSGIServer:
    """Serve ``registry`` on ``addr:port`` in a daemon thread (port 0: any free port, see ``server_port``)."""
    app = metrics_wsgi_app(registry, token, production)
    server = make_server(addr, port, app, ThreadingWSGIServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def serve_port(port: int, token: str = "", production: bool = False) -> bool:
    """A worker's own /metrics on ``port`` (once per process; 0 switches it off), behind the same check as the
    API's /metrics (``may_read``). Returns whether it serves."""
    global _served
    if port <= 0:
        return False
    with _served_lock:
        if _served:
            return True
        registry: CollectorRegistry = REGISTRY
        # e.g. a celery prefork pool: aggregate the children's files
        if MULTIPROC_ENV in os.environ:  # env: prometheus_client's own variable (MULTIPROC_ENV above)
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        try:
            start_metrics_server(port, token, registry, production=production)
        except OSError as exc:
            log.warning("metrics port %d: %s", port, exc)
            return False
        _served = True
        log.info("metrics served on :%d/metrics%s", port, " (bearer token)" if token else "")
        return True
