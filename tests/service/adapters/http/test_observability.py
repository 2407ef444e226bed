"""Request ids, JSON logs (masked), Prometheus metrics and readiness on the real app (SQLite)."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from service.infra.observability import bind_session
from service.infra.observability.logs import JsonFormatter
from tests.service import servers
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_card, put_video
from tests.service.adapters.http.ops import ops_app
from tests.service.conftest import API_KEY
from tests.service.live import live_service, wait_decided
from tests.service.media import LIVE_VIDEO, card_for_video

REPO = Path(__file__).resolve().parents[4]
ID = "110101194001011237"  # an 18-character ID number: must never reach a log line in clear


def samples(client: TestClient, name: str, **headers: str) -> dict[tuple[tuple[str, str], ...], float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(found: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    return sum(v for k, v in found.items() if set(labels.items()) <= set(k))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = ops_app(tmp_path)

    @app.get("/_ops_test/{session_id}")
    def noisy(session_id: str) -> dict[str, str]:
        logging.getLogger("tests.ops").warning("looked up %s", ID)
        try:
            raise ValueError(f"bad number {ID}")
        except ValueError:
            logging.getLogger("tests.ops").exception("failed")
        return {"ok": session_id}

    with TestClient(app) as c:
        c.headers["X-API-Key"] = API_KEY
        yield c


def test_request_id_echoed_when_sane_generated_otherwise(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "req-12345678"}).headers["x-request-id"] == "req-12345678"
    for bad in ("short", "x" * 65, "a b c d e f g h", "<script>alert(1)</script>"):
        rid = client.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert rid != bad and len(rid) == 32 and int(rid, 16) >= 0
    a, b = (client.get("/healthz").headers["x-request-id"] for _ in range(2))
    assert a != b


def test_json_logs_carry_request_and_session_id_and_mask_id_numbers(client: TestClient, json_log: io.StringIO) -> None:
    r = client.get("/_ops_test/sess-42", headers={"X-Request-ID": "trace-0001-abcd"})
    assert r.status_code == 200
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.startswith("{")]
    mine = [e for e in lines if e["logger"] == "tests.ops"]
    assert [e["message"] for e in mine] == ["looked up 1101**********1237", "failed"]
    assert [e["level"] for e in mine] == ["WARNING", "ERROR"]
    assert all(e["request_id"] == "trace-0001-abcd" and e["session_id"] == "sess-42" for e in mine)
    assert "ValueError: bad number 1101**********1237" in mine[1]["exc"]
    assert ID not in json_log.getvalue()


def test_an_unexpected_failure_keeps_its_request_id_session_id_and_headers(
    tmp_path: Path, json_log: io.StringIO
) -> None:
    """Starlette answers an unhandled exception outside every middleware: the 500 had no X-Request-ID and no
    security headers, and its log line no request or session id, the one case an operator most needs them."""
    app = ops_app(tmp_path)

    @app.get("/api/v1/sessions/{session_id}/_boom")
    def boom(session_id: str) -> None:
        raise RuntimeError(f"bug near {ID}")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/sessions/sess-500/_boom", headers={"X-API-Key": API_KEY, "X-Request-ID": "trace-500-abcd"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "INTERNAL_ERROR" and "bug" not in r.text
    assert r.headers["x-request-id"] == "trace-500-abcd"
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.startswith("{")]
    errors = [e for e in lines if e["message"] == "unhandled RuntimeError"]
    assert [(e["level"], e["request_id"], e["session_id"]) for e in errors] == [("ERROR", "trace-500-abcd", "sess-500")]
    assert "RuntimeError: bug near 1101**********1237" in errors[0]["exc"] and ID not in json_log.getvalue()


def test_worker_log_lines_carry_the_session_id() -> None:
    record = logging.LogRecord(
        "service.certification.processing", logging.INFO, __file__, 1, "deciding %s", ("x",), None
    )
    with bind_session("0f0e0d0c"):
        out = json.loads(JsonFormatter().format(record))
    assert out["session_id"] == "0f0e0d0c" and out["request_id"] is None and out["message"] == "deciding x"


def test_metrics_label_routes_by_template_and_count_queue(client: TestClient, tmp_path: Path, data_dir: Path) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    external_id = beneficiary_with_number(ctx, fields.id_number)
    before = value(samples(client, "pension_cert_queue_jobs"), state="pending")
    assert before == 0
    s = open_session(client, external_id)
    assert put_card(client, s, card).status_code == 200
    assert put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes()).status_code == 200  # worker_mode=none

    assert value(samples(client, "pension_cert_queue_jobs"), state="pending") == 1
    assert value(samples(client, "pension_cert_queue_jobs"), state="claimed") == 0
    client.get(f"/api/v1/sessions/{s['session_id']}", headers={"Authorization": f"Bearer {s['token']}"})
    hist = samples(client, "pension_cert_http_request_duration_seconds_count")
    routes = {dict(k)["route"] for k in hist}
    assert "/api/v1/sessions/{session_id}" in routes and "/api/v1/sessions/{session_id}/video" in routes
    assert not any(s["session_id"] in r for r in routes)  # no ids in labels
    assert value(hist, method="POST", route="/api/v1/sessions/{session_id}/video", status="2xx") >= 1


def test_metrics_say_the_database_is_down_when_the_queue_gauges_cannot_be_counted(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue and live-worker gauges vanish when the database does not answer: an alert on `workers_live == 0`
    found no series and stayed silent through the outage. `pension_cert_database_up` is always there."""
    from sqlalchemy.exc import OperationalError

    assert samples(client, "pension_cert_database_up") == {(): 1.0}
    assert samples(client, "pension_cert_workers_live") == {(): 0.0}

    def down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(client.app.state.ctx, "db", down)  # type: ignore[attr-defined]
    assert samples(client, "pension_cert_database_up") == {(): 0.0}
    assert samples(client, "pension_cert_workers_live") == {}


def test_metrics_off_or_behind_a_token(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path / "a", metrics_enabled=False)) as c:
        assert c.get("/metrics").status_code == 404
    with TestClient(ops_app(tmp_path / "b", metrics_token="scrape-secret-1")) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
        assert ok.status_code == 200 and "pension_cert_queue_jobs" in ok.text


def test_embedded_worker_processes_metrics_reach_the_api(tmp_path: Path) -> None:
    """worker_mode=process: a worker is another process; its metrics reach the API's /metrics via the
    multiprocess directory the API hands it (here a real separate process recording a decision)."""
    app = ops_app(tmp_path, worker_mode="process")  # no lifespan: we play the worker ourselves
    from service.infra.observability.metrics import reset_multiproc_dir

    mp = reset_multiproc_dir(app.state.ctx.settings)
    # The API's own counts (this test process's, of earlier tests) add to the worker's in one series: the worker's
    # one decision is what the scrape adds to them.
    own = REGISTRY.get_sample_value
    before = {
        "decision": own("pension_cert_decisions_total", {"decision": "reject"}) or 0.0,
        "reason": own("pension_cert_decision_reasons_total", {"decision": "reject", "reason": "SPOOF_SUSPECTED"})
        or 0.0,
        "count": own("pension_cert_stage_duration_seconds_count", {"stage": "liveness"}) or 0.0,
        "sum": own("pension_cert_stage_duration_seconds_sum", {"stage": "total"}) or 0.0,
    }
    code = (
        "from service.infra.observability import metrics\n"
        "metrics.observe_report({'id_card': 0.4, 'liveness': 1.5, 'face_match': 0.2, 'total': 2.1})\n"
        "metrics.observe_decision('reject', ['FACE_MISMATCH', 'SPOOF_SUSPECTED'])\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO, timeout=120)
    c = TestClient(app)
    c.headers["X-API-Key"] = API_KEY
    assert value(samples(c, "pension_cert_decisions_total"), decision="reject") == before["decision"] + 1
    reasons = samples(c, "pension_cert_decision_reasons_total")
    assert value(reasons, decision="reject", reason="SPOOF_SUSPECTED") == before["reason"] + 1
    assert value(samples(c, "pension_cert_stage_duration_seconds_count"), stage="liveness") == before["count"] + 1
    total = value(samples(c, "pension_cert_stage_duration_seconds_sum"), stage="total")
    assert total == pytest.approx(before["sum"] + 2.1)


def test_a_counter_of_both_the_api_and_the_workers_is_one_series(tmp_path: Path) -> None:
    """An unlabelled counter exists (at 0) in the API too: listed twice, a scrape kept the API's value and lost
    the workers' count of transient failures. Each series appears once, the processes' counts added up."""

    from service.infra.observability import metrics

    app = ops_app(tmp_path, worker_mode="process")  # no lifespan: we play the worker ourselves
    mp = metrics.reset_multiproc_dir(app.state.ctx.settings)
    code = "from service.infra.observability import metrics\nfor _ in range(3): metrics.JOB_RETRIES.inc()\n"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO, timeout=120)
    metrics.CYCLE_REFUSED.inc()  # counted by the API process itself
    own_retries = REGISTRY.get_sample_value("pension_cert_job_transient_failures_total") or 0.0
    own_refused = REGISTRY.get_sample_value("pension_cert_cycle_refused_total") or 0.0
    r = TestClient(app).get("/metrics")
    series = [
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    ]
    keys = [(name, labels) for name, labels, _ in series]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []
    found = {name: v for name, labels, v in series if not labels}
    assert found["pension_cert_job_transient_failures_total"] == own_retries + 3
    assert found["pension_cert_cycle_refused_total"] == own_refused >= 1


def test_a_remote_worker_serves_its_own_metrics_port() -> None:
    """Celery / standalone workers on other machines: PENSION_CERT_METRICS_PORT (a real separate process)."""
    code = (
        "import sys, urllib.request\n"
        "from service.infra.observability import metrics\n"
        "metrics.observe_decision('review', ['FACE_LOW_QUALITY'])\n"
        "port = int(sys.argv[1])\n"
        "assert metrics.serve_port(port) and metrics.serve_port(port)  # once per process, idempotent\n"
        "sys.stdout.write(urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=10).read().decode())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", code, str(servers.free_port())], env=env, cwd=REPO, timeout=120, capture_output=True
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(out.stdout.decode())
        for s in f.samples
    }
    assert found[("pension_cert_decisions_total", (("decision", "review"),))] == 1


def test_a_worker_metrics_port_asks_for_the_same_bearer_token_as_the_api() -> None:
    """A worker's /metrics names people's outcomes and the queue's load: with METRICS_TOKEN set, it is not open."""
    import urllib.error
    import urllib.request

    from prometheus_client import CollectorRegistry, Counter

    from service.infra.observability.metrics import start_metrics_server

    registry = CollectorRegistry()
    Counter("pension_cert_test_scrapes", "a counter of this test", registry=registry).inc()
    server = start_metrics_server(0, "t" * 32, registry, addr="127.0.0.1")
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        wrong = urllib.request.Request(url, headers={"Authorization": "Bearer " + "x" * 32})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(wrong, timeout=10)
        right = urllib.request.Request(url, headers={"Authorization": "Bearer " + "t" * 32})
        body = urllib.request.urlopen(right, timeout=10).read().decode()
        assert "pension_cert_test_scrapes_total 1.0" in body
    finally:
        server.shutdown()
        server.server_close()
    open_server = start_metrics_server(0, "", registry, addr="127.0.0.1")  # no token (development): open
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{open_server.server_port}/metrics", timeout=10).read()
        assert b"pension_cert_test_scrapes_total" in body
    finally:
        open_server.shutdown()
        open_server.server_close()


@pytest.mark.slow
def test_a_real_certification_moves_decision_and_stage_metrics(tmp_path: Path, data_dir: Path) -> None:
    backend = {"database_url": f"sqlite:///{tmp_path / 'x.db'}", "broker_url": "", "worker_mode": "thread"}
    with live_service(backend, tmp_path) as (client, _settings):
        card, fields = card_for_video(data_dir, LIVE_VIDEO)
        external_id = beneficiary_with_number(client.app.state.ctx, fields.id_number)  # type: ignore[attr-defined]
        decisions0 = samples(client, "pension_cert_decisions_total")
        stages0 = samples(client, "pension_cert_stage_duration_seconds_count")
        s = open_session(client, external_id)
        assert put_card(client, s, card).status_code == 200
        assert put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes()).status_code == 200
        result = wait_decided(client, s)
        band = result["decision"]
        assert band in ("accept", "review", "reject")
        decisions1 = samples(client, "pension_cert_decisions_total")
        stages1 = samples(client, "pension_cert_stage_duration_seconds_count")
        assert value(decisions1, decision=band) == value(decisions0, decision=band) + 1
        for stage in ("id_card", "liveness", "face_match", "decision", "total"):
            assert value(stages1, stage=stage) == value(stages0, stage=stage) + 1, stage
        total = samples(client, "pension_cert_stage_duration_seconds_sum")
        assert value(total, stage="total") >= value(total, stage="liveness") > 0


def test_readiness_ok_then_each_failure_named(client: TestClient, tmp_path: Path) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": {"ok": True}, "models": {"ok": True}, "storage": {"ok": True}}

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    good_engine, good_root = ctx.engine, ctx.storage.root
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    ctx.storage.root = blocker / "media"  # a directory under a regular file: not writable, even for root
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["failing"] == ["storage"]
    ctx.storage.root = good_root

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/none"
    ctx.engine = create_engine(url, connect_args={"connect_timeout": 1})
    try:
        r = client.get("/readyz")
    finally:
        ctx.engine = good_engine
    assert r.status_code == 503 and r.json()["failing"] == ["database"]
    assert r.json()["checks"]["database"]["error"] == "OperationalError"
    assert client.get("/readyz").status_code == 200


def test_a_media_store_without_room_for_one_upload_is_not_ready_and_its_free_space_is_a_metric(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storage probe wrote 2 bytes: a volume with a few kB left passed /readyz while every upload got 507
    STORAGE_FULL, and no metric showed the space running out. The volume's free space is faked here."""
    import shutil
    from types import SimpleNamespace

    settings = client.app.state.ctx.settings  # type: ignore[attr-defined]
    one_upload = settings.uploads.max_video_bytes + settings.uploads.max_image_bytes
    free = {"bytes": one_upload}

    def disk_usage(_path: object) -> SimpleNamespace:
        return SimpleNamespace(total=10 * one_upload, used=10 * one_upload - free["bytes"], free=free["bytes"])

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    metrics_free = "pension_cert_media_free_bytes"
    assert client.get("/readyz").status_code == 200
    assert samples(client, metrics_free) == {(): float(one_upload)}
    free["bytes"] = 16 * 1024  # room for the probe, not for a video
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["failing"] == ["storage"]
    assert r.json()["checks"]["storage"]["error"] == "StorageFullError"
    assert samples(client, metrics_free) == {(): 16.0 * 1024}


def test_readiness_answers_promptly_when_the_broker_hangs(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections in the kernel, never answers: a hung Redis
        port = silent.getsockname()[1]
        app = ops_app(tmp_path, worker_mode="celery", broker_url=f"redis://127.0.0.1:{port}/0")
        c = TestClient(app)  # no lifespan: nothing is enqueued here
        c.get("/readyz")  # the first call imports the broker and Celery clients (seconds on a loaded machine)
        t0 = time.monotonic()
        r = c.get("/readyz")
        elapsed = time.monotonic() - t0
    # No celery worker has ever checked in on this database either.
    assert r.status_code == 503 and r.json()["failing"] == ["broker", "workers"]
    assert elapsed < 5.0  # bounded by the check deadline, not by the dependency
