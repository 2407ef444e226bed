"""Rate limits on the real app: per IP, per API key, per beneficiary, session creation and uploads per IP,
refused API keys; X-Forwarded-For only from trusted proxies; counters shared through a real Redis."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.infra.config import Settings
from service.infra.ratelimit import ClientAddress, Rate, parse_rate
from tests.service import servers
from tests.service.adapters.http.helpers import beneficiary_with_number
from tests.service.adapters.http.ops import ops_app
from tests.service.conftest import ADMIN_API_KEY, API_KEY
from tests.service.factories import id_number

pytestmark = pytest.mark.usefixtures("windows_held")

VERIFY = "/api/v1/certificates/verify?code=nothing"  # public: no key, no session (answers 400: bad code)


def limited(r: Any, rule: str) -> bool:
    if r.status_code != 429:
        return False
    body = r.json()["error"]
    assert body["code"] == "RATE_LIMITED" and body["message"] == "操作过于频繁,请稍后再试", body
    assert body["detail"].startswith(rule + ":"), body
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    assert r.headers["x-request-id"] and r.headers["x-content-type-options"] == "nosniff"
    return True


def test_parse_rate() -> None:
    assert parse_rate("30/minute") == Rate(30, 60)
    assert parse_rate("5/10s") == Rate(5, 10)
    assert parse_rate("1000/hours") == Rate(1000, 3600)
    assert parse_rate("") is None
    with pytest.raises(ValueError):
        parse_rate("lots")


def test_defaults_leave_machine_clients_and_citizens_room() -> None:
    s = Settings()
    per_key, per_ip = parse_rate(s.rate_limit.api_key), parse_rate(s.rate_limit.ip)
    assert per_key is not None and per_ip is not None
    # bench/service.py polls every 0.1 s per session with several sessions in flight, under one key.
    assert per_key.count / per_key.seconds >= 100
    assert per_ip.count / per_ip.seconds >= 5  # a page load plus polling every 0.3 s
    assert s.rate_limit.backend == "auto" and s.security.trusted_proxies == []


def test_per_ip_limit_with_retry_after(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_ip="3/minute")) as c:
        codes = [c.get(VERIFY).status_code for _ in range(3)]
        assert 429 not in codes
        assert limited(c.get(VERIFY), "ip")
        assert c.get("/healthz").status_code == 200  # probes are never limited
        assert c.get("/readyz").status_code == 200
        metrics = c.get("/metrics").text
        assert 'pension_cert_rate_limited_total{rule="ip"} ' in metrics


def test_api_key_clients_have_their_own_limit(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_ip="2/minute", rate_limit_api_key="5/minute")) as c:
        keyed = {"X-API-Key": ADMIN_API_KEY}  # the operator's key: the lists are theirs
        assert [c.get("/api/v1/lists/overdue", headers=keyed).status_code for _ in range(5)] == [200] * 5
        assert limited(c.get("/api/v1/lists/overdue", headers=keyed), "api_key")
        # The key's calls did not use up the IP's allowance of citizens behind the same address.
        assert [c.get(VERIFY).status_code for _ in range(2)] == [400, 400]
        assert limited(c.get(VERIFY), "ip")


def test_per_beneficiary_session_limit_reads_the_body_and_passes_it_on(tmp_path: Path) -> None:
    app = ops_app(tmp_path, rate_limit_beneficiary="2/hour")
    ctx = app.state.ctx
    a, b = (beneficiary_with_number(ctx, id_number()) for _ in range(2))
    with TestClient(app) as c:
        c.headers["X-API-Key"] = API_KEY
        for _ in range(2):
            r = c.post("/api/v1/sessions", json={"external_id": a})
            assert r.status_code == 201, r.text  # the route got the body we read
        assert limited(c.post("/api/v1/sessions", json={"external_id": a}), "beneficiary")
        assert c.post("/api/v1/sessions", json={"external_id": b}).status_code == 201
        assert (
            c.post("/api/v1/sessions", content=b"not json", headers={"Content-Type": "application/json"}).status_code
            == 422
        )


def test_h5_session_creation_per_ip_and_per_number(tmp_path: Path) -> None:
    """The H5 form takes a name and an ID number: without limits it would let anyone try numbers."""
    with TestClient(ops_app(tmp_path, rate_limit_session_ip="3/minute", rate_limit_beneficiary="2/hour")) as c:
        form = {"name": "张三", "id_number": id_number(), "consent": True}
        answers = [c.post("/h5/api/sessions", json=form) for _ in range(3)]
        assert [r.status_code for r in answers] == [401, 401, 429]  # no WeChat login; then the number's limit
        assert limited(answers[2], "beneficiary")
        other = {**form, "id_number": id_number()}
        assert limited(c.post("/h5/api/sessions", json=other), "session_ip")


def test_uploads_per_ip(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_upload_ip="2/minute")) as c:
        url = "/api/v1/sessions/nope/id-card"
        files = {"file": ("c.jpg", b"\xff\xd8", "image/jpeg")}
        codes = [c.post(url, files=files, headers={"Idempotency-Key": "k" * 16}).status_code for _ in range(2)]
        assert 429 not in codes
        assert limited(c.post(url, files=files, headers={"Idempotency-Key": "k" * 16}), "upload_ip")


def test_refused_api_keys_lock_the_address_out_of_key_guessing(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path, rate_limit_auth_failures="3/minute")) as c:
        wrong = {"X-API-Key": "guess-0000"}
        assert [c.get("/api/v1/lists/overdue", headers=wrong).status_code for _ in range(2)] == [401] * 2
        hostile = {"X-API-Key": "caf\xe9-key".encode("latin-1")}  # not ASCII: still a plain 401
        assert c.get("/api/v1/lists/overdue", headers=hostile).status_code == 401  # type: ignore[arg-type]
        assert limited(c.get("/api/v1/lists/overdue", headers={"X-API-Key": "guess-0001"}), "auth_failures")
        assert c.get("/api/v1/lists/overdue", headers={"X-API-Key": ADMIN_API_KEY}).status_code == 200


def test_forwarded_for_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    app = ops_app(tmp_path, rate_limit_ip="2/minute", trusted_proxies=["10.0.0.0/8"])
    via_proxy = TestClient(app, client=("10.1.2.3", 40000))
    direct = TestClient(app, client=("198.51.100.9", 40000))
    for who in ("203.0.113.7", "203.0.113.8"):  # two citizens behind our proxy: two allowances
        hdr = {"X-Forwarded-For": f"{who}, 10.9.9.9"}
        assert [via_proxy.get(VERIFY, headers=hdr).status_code for _ in range(2)] == [400, 400]
        assert limited(via_proxy.get(VERIFY, headers=hdr), "ip")
    # A client that is not our proxy cannot pick a fresh address per request.
    codes = [direct.get(VERIFY, headers={"X-Forwarded-For": f"192.0.2.{i}"}).status_code for i in range(3)]
    assert codes == [400, 400, 429]

    addr = ClientAddress(["10.0.0.0/8", "::1"])
    scope = {"client": ("10.0.0.1", 1), "headers": [(b"x-forwarded-for", b"1.2.3.4, 5.6.7.8, 10.0.0.2")]}
    assert addr(scope) == "5.6.7.8"  # the right-most address that is not one of ours
    assert ClientAddress([])(scope) == "10.0.0.1"
    # A proxy adding a line of its own (HAProxy): the client's forged first line does not choose the address.
    forged = [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"203.0.113.7")]
    assert addr({"client": ("10.0.0.1", 1), "headers": forged}) == "203.0.113.7"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not servers.redis_available():
        pytest.skip("redis-server not installed")
    with servers.redis_server(tmp_path_factory.mktemp("rl-redis")) as url:
        yield url


def _pair(tmp_path: Path, **overrides: Any) -> tuple[FastAPI, FastAPI]:
    """Two API processes of one deployment (same database), as two app instances."""
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    return ops_app(tmp_path / "a", database_url=db, **overrides), ops_app(tmp_path / "b", database_url=db, **overrides)


def test_redis_backend_shares_counters_between_api_processes(tmp_path: Path, redis_url: str) -> None:
    # A generous timeout: on a loaded CI machine the first connect took over 0.25 s, and the limiter then
    # (rightly) let the request through uncounted; that fail-open path has its own test below.
    redis = {"rate_limit_backend": "redis", "rate_limit_redis_url": redis_url, "rate_limit_redis_timeout_s": 5.0}
    a, b = _pair(tmp_path, rate_limit_ip="3/minute", **redis)
    with TestClient(a) as ca, TestClient(b) as cb:
        assert [ca.get(VERIFY).status_code for _ in range(2)] == [400, 400]
        assert cb.get(VERIFY).status_code == 400
        assert limited(cb.get(VERIFY), "ip")
        assert limited(ca.get(VERIFY), "ip")
    # Another deployment (another database) on the same Redis counts on its own.
    with TestClient(ops_app(tmp_path / "c", **redis)) as cc:
        assert cc.get(VERIFY).status_code == 400


def test_memory_backend_is_per_process(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, rate_limit_backend="memory", rate_limit_ip="2/minute")
    with TestClient(a) as ca, TestClient(b) as cb:
        assert [ca.get(VERIFY).status_code for _ in range(2)] == [400, 400]
        assert limited(ca.get(VERIFY), "ip")
        assert cb.get(VERIFY).status_code == 400


def test_redis_outage_lets_requests_through(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = ops_app(
        tmp_path,
        rate_limit_backend="redis",
        rate_limit_redis_url=f"redis://127.0.0.1:{port}/0",
        rate_limit_ip="1/minute",
    )
    with TestClient(app) as c:
        assert [c.get(VERIFY).status_code for _ in range(3)] == [400, 400, 400]


def test_a_new_window_starts_a_fresh_allowance(tmp_path: Path, windows_held: float, monkeypatch: Any) -> None:
    from service.adapters.http import limits

    with TestClient(ops_app(tmp_path, rate_limit_ip="2/minute")) as c:
        assert [c.get(VERIFY).status_code for _ in range(2)] == [400, 400]
        r = c.get(VERIFY)
        assert limited(r, "ip") and int(r.headers["retry-after"]) == 59  # held 1 s into its minute
        monkeypatch.setattr(limits, "_clock", lambda: windows_held + 58.5)
        assert limited(c.get(VERIFY), "ip")  # same minute
        monkeypatch.setattr(limits, "_clock", lambda: windows_held + 59)
        assert [c.get(VERIFY).status_code for _ in range(2)] == [400, 400]
        assert limited(c.get(VERIFY), "ip")


def too_large(r: Any) -> bool:
    if r.status_code != 413:
        return False
    assert r.json()["error"]["code"] == "REQUEST_TOO_LARGE", r.text
    assert r.headers["x-request-id"]
    return True


def test_a_padded_body_cannot_skip_the_beneficiary_rule(tmp_path: Path) -> None:
    """The limiter reads at most MAX_JSON_BODY to find the beneficiary; a body past that used to go through
    uncounted while the route read all of it (issue #22). Now it is refused before the route sees it."""
    from service.adapters.http.body_limit import MAX_JSON_BODY

    app = ops_app(tmp_path, rate_limit_beneficiary="2/hour")
    ctx = app.state.ctx
    a = beneficiary_with_number(ctx, id_number())
    pad = " " * MAX_JSON_BODY
    padded = json.dumps({"external_id": a}).encode()[:-1] + pad.encode() + b"}"
    with TestClient(app) as c:
        c.headers["X-API-Key"] = API_KEY
        json_hdr = {"Content-Type": "application/json"}
        assert [c.post("/api/v1/sessions", json={"external_id": a}).status_code for _ in range(2)] == [201, 201]
        assert limited(c.post("/api/v1/sessions", json={"external_id": a}), "beneficiary")
        assert too_large(c.post("/api/v1/sessions", content=padded, headers=json_hdr))

        def chunks() -> Any:  # no Content-Length: chunked transfer
            yield padded[: len(padded) // 2]
            yield padded[len(padded) // 2 :]

        assert too_large(c.post("/api/v1/sessions", content=chunks(), headers=json_hdr))
        # The H5 form (name + ID number) too: padding does not buy unlimited tries against one number.
        form = json.dumps({"name": "张三", "id_number": id_number(), "consent": True}).encode()
        form = form[:-1] + pad.encode() + b"}"
        assert too_large(c.post("/h5/api/sessions", content=form, headers=json_hdr))
        # Just under the cap is still read, counted and passed on.
        b = beneficiary_with_number(ctx, id_number())
        fits = json.dumps({"external_id": b}).encode()
        fits = fits[:-1] + b" " * (MAX_JSON_BODY - len(fits)) + b"}"
        assert len(fits) == MAX_JSON_BODY
        assert c.post("/api/v1/sessions", content=fits, headers=json_hdr).status_code == 201
