"""/readyz to anyone and to the operator (docs/security.md, Part BM; docs/operations.md, Endpoints): the probe
stays unkeyed for load balancers and Kubernetes (status code, check names), but why a check fails (its exception's
class: `OperationalError`, `NoLiveWorkerError`, Python internals) goes only to a caller with the metrics bearer
token, the same check as /metrics."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from service.adapters.http.observability import may_read_metrics
from service.infra.observability import metrics
from tests.service.adapters.http.ops import ops_app
from tests.service.conftest import make_settings
from tests.service.test_production_settings import production, refused

# Fixed, not random: it names parametrized tests, and pytest-xdist's workers must collect the same names.
TOKEN = "metrics-3f9c2a7e41d8b6055e1c9a0d7b2f4e68"


def test_an_unkeyed_probe_learns_that_a_check_fails_but_not_why(tmp_path: Path) -> None:
    app = ops_app(tmp_path, worker_mode="process", metrics_token=TOKEN)  # no worker ever beat: `workers` fails
    c = TestClient(app)
    r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {
        "status": "unready",
        "failing": ["workers"],
        "checks": {"database": {"ok": True}, "models": {"ok": True}, "storage": {"ok": True}, "workers": {"ok": False}},
    }
    assert "Error" not in r.text
    wrong = c.get("/readyz", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 503 and "error" not in wrong.json()["checks"]["workers"]

    keyed = c.get("/readyz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert keyed.status_code == 503
    assert keyed.json()["checks"]["workers"] == {"ok": False, "error": "NoLiveWorkerError"}


def test_a_production_probe_without_a_metrics_token_says_no_why(tmp_path: Path) -> None:
    """With no token set (metrics off), production shows no class to anyone; development keeps it (as /metrics
    is open there)."""
    keys = {"api_keys": ["c" * 40], "admin_api_keys": ["a" * 40], "challenge_actions": []}
    site = "https://h5.pension.example.gov.cn"
    app = ops_app(
        tmp_path, worker_mode="process", env="production", metrics_enabled=False, public_base_url=site, **keys
    )
    r = TestClient(app).get("/readyz", headers={"Authorization": "Bearer "})
    assert r.status_code == 503 and r.json()["checks"]["workers"] == {"ok": False}


def worker_port_answer(registry: CollectorRegistry, token: str, production: bool, authorization: str | None) -> int:
    """The status a worker's own metrics port (its WSGI app, as `serve_port` serves it on 0.0.0.0) answers."""
    app = metrics.metrics_wsgi_app(registry, token, production=production)
    statuses: list[str] = []
    request = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
    if authorization is not None:
        request["HTTP_AUTHORIZATION"] = authorization
    b"".join(app(request, lambda status, headers, *_: statuses.append(status)))
    return int(statuses[0].split()[0])


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("token", ["", TOKEN])
@pytest.mark.parametrize("authorization", [None, f"Bearer {TOKEN}", "Bearer not-the-token"])
def test_a_workers_metrics_port_answers_as_the_apis_metrics_do(env: str, token: str, authorization: str | None) -> None:
    """`may_read_metrics` was said to be the one check, but a worker's own port (`metrics_wsgi_app`, served on
    0.0.0.0) kept a bearer check of its own: with no token it was open in every environment, production too,
    where the API's /metrics and /readyz reasons let nobody in. Both now ask the same function."""
    registry = CollectorRegistry()
    settings = production(metrics_token=token) if env == "production" else make_settings(Path("/nonexistent"))
    settings = settings.model_copy(update={"env": env})
    settings.observability.metrics_token = token
    api_reads = may_read_metrics(settings, authorization)
    assert worker_port_answer(registry, token, env == "production", authorization) == (200 if api_reads else 401)


def test_a_production_worker_metrics_port_without_a_token_is_refused_at_start() -> None:
    """`production_weaknesses` asked for a token only while the API's /metrics was on: a worker's port
    (`METRICS_PORT`) with the API's /metrics off and no token started, its outcomes and queue counts readable by
    anyone reaching it. It is now refused like an open /metrics, naming both variables."""
    refused(production(metrics_enabled=False, metrics_token="", metrics_port=9101), "PENSION_CERT_METRICS_PORT")
    refused(production(metrics_enabled=False, metrics_token="short", metrics_port=9101), "PENSION_CERT_METRICS_TOKEN")
    production(metrics_enabled=False, metrics_token="", metrics_port=0).validate_secrets()  # no port, no /metrics
    production(metrics_enabled=False, metrics_port=9101).validate_secrets()  # a long token: served behind it
