"""The console on a host name of its own (PENSION_CERT_CONSOLE_HOSTS, service/features/console/hosts.py): the
console answers on its hosts only, and its hosts serve nothing of the citizens' side (H5 pages, API, WeChat), so
a script injected into an H5 page never runs in the console's origin. Through the real app and its settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import ValidationError

from service.certification.context import ServiceContext
from service.features.console.config import ConsoleConfig
from tests.service import factories
from tests.service.conftest import API_KEY
from tests.service.features.console.conftest import login

CONSOLE = "console.example.gov.cn"
H5 = "h5.example.gov.cn"


@pytest.fixture
def hosts_app(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app as started with PENSION_CERT_CONSOLE_HOSTS set (written as an operator might: capitals, a port
    left out, a second name); the client browses the H5 host."""
    from service.adapters.http.app import create_app

    monkeypatch.setenv("PENSION_CERT_CONSOLE_HOSTS", " Console.Example.gov.cn , console-backup.example.gov.cn")
    with TestClient(create_app(ctx=ctx), base_url=f"https://{H5}") as c:
        yield c


def on(client: TestClient, host: str) -> TestClient:
    """Another browser on the same app, at this host (its own cookie jar)."""
    return TestClient(client.app, base_url=f"https://{host}")


def is_unknown_path(r: Response, unknown: Response) -> None:
    assert r.status_code == 404, (r.status_code, r.text[:200])
    assert r.json() == unknown.json(), r.text[:200]
    assert "set-cookie" not in r.headers


def test_the_console_answers_on_its_host_only(hosts_app: TestClient, staff_users: dict[str, int]) -> None:
    console = on(hosts_app, CONSOLE)
    login(console, "rev1")  # login page, form, then the queue: the whole console works on its host
    assert console.get("/console/queue").status_code == 200
    assert console.get("/console/static/console.css").status_code == 200
    # A port and capitals in Host change nothing; the cookies are host-only (no Domain attribute).
    page = console.get("/console/login", headers={"Host": "CONSOLE.example.gov.cn:8443"})
    assert page.status_code == 200 and "登录" in page.text
    cookies = page.headers.get_list("set-cookie")
    assert cookies and not any("domain=" in c.lower() for c in cookies), cookies
    unknown = hosts_app.get("/no-such-path")
    for path in ("/console/login", "/console/queue", "/console/static/console.css", "/console"):
        is_unknown_path(hosts_app.get(path), unknown)
    # The reviewer's session cookie is not a way in from the other host, nor is a forged X-Forwarded-Host.
    other = on(hosts_app, H5)
    other.cookies.update({name: value for name, value in console.cookies.items()})
    is_unknown_path(other.get("/console/queue"), unknown)
    is_unknown_path(hosts_app.get("/console/login", headers={"X-Forwarded-Host": CONSOLE}), unknown)
    assert on(hosts_app, "console-backup.example.gov.cn").get("/console/login").status_code == 200


def test_a_console_host_serves_nothing_of_the_citizens_side(hosts_app: TestClient, ctx: ServiceContext) -> None:
    with ctx.db() as db:
        external_id = factories.beneficiary(db, ctx.keyring).external_id
    console = on(hosts_app, CONSOLE)
    unknown = console.get("/no-such-path")
    key = {"X-API-Key": API_KEY}
    # The other host, as before: H5 pages and their assets, the API, the WeChat callback's own answer.
    assert hosts_app.get("/h5/static/h5.css").status_code == 200
    assert hosts_app.get("/h5/", follow_redirects=False).status_code != 404  # outside WeChat: its own refusal
    assert hosts_app.get(f"/api/v1/beneficiaries/{external_id}", headers=key).json()["external_id"] == external_id
    wechat = hosts_app.get("/wechat/callback")
    assert wechat.json() != unknown.json()  # the channel's own refusal (not configured here), not an unknown path
    # The console host: every one of them is an unknown path there (a trailing dot is the same host).
    for path in ("/h5/static/h5.css", "/h5/", "/wechat/callback", "/docs", "/openapi.json", "/metrics"):
        is_unknown_path(console.get(path), unknown)
    is_unknown_path(console.get(f"/api/v1/beneficiaries/{external_id}", headers=key), unknown)
    is_unknown_path(on(hosts_app, CONSOLE + ".").get("/h5/static/h5.css"), unknown)
    # The probes of the load balancer answer on every host.
    assert console.get("/healthz").json() == {"status": "ok"}
    assert console.get("/readyz").json() != unknown.json()


def test_without_console_hosts_every_host_serves_everything(app_client: TestClient) -> None:
    """The default (development, tests, the embedded start): nothing changes. A guard of today's behaviour, so it
    passes on the code before the setting too."""
    for host in (CONSOLE, H5, "127.0.0.1:8000"):
        client = on(app_client, host)
        assert client.get("/console/login").status_code == 200
        assert client.get("/h5/static/h5.css").status_code == 200
        assert client.get("/healthz").status_code == 200


def test_console_hosts_are_host_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated or a JSON list, compared lower-case without a trailing dot; a URL or a port is refused at
    start rather than never matching a request."""

    def hosts(value: str) -> tuple[str, ...]:
        monkeypatch.setenv("PENSION_CERT_CONSOLE_HOSTS", value)
        return ConsoleConfig().hosts

    assert hosts("A.example.cn, b.example.cn.") == ("a.example.cn", "b.example.cn")
    assert hosts('["a.example.cn"]') == ("a.example.cn",)
    assert hosts("") == ()
    for bad in ("https://a.example.cn", "a.example.cn:8443", "a.example.cn/console", "*.example.cn"):
        with pytest.raises(ValidationError, match="not a host name"):
            hosts(bad)
