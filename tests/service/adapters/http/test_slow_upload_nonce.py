"""A slow upload at a campaign's peak (docs/security.md Part AU): the challenge's nonce (`CHALLENGE_TTL_S`) is judged
at the instant the server began receiving the upload, on the service's clock, not when its whole body had arrived
and the route ran; an upload still arriving `CHALLENGE_TTL_S` past the challenge's end is refused all the same.

The service's one clock (`service/infra/clock.now_utc`) is held, and moved on while the request's body is received:
what a congested network (or a request waiting for a free API thread) does to the instant the route runs. SQLite
and PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from service.certification.context import ServiceContext
from service.certification.models import CertSession
from service.features.wechat import h5
from service.infra import clock
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_video
from tests.service.conftest import API_KEY
from tests.service.media import LIVE_VIDEO

OPENED = dt.datetime(2031, 3, 9, 1, 0, tzinfo=dt.UTC)  # the session (and its challenge) opened
TTL = dt.timedelta(seconds=300)  # CHALLENGE_TTL_S's default, the tests' setting
ROUTE = re.compile(r"@\w*router\.(?:post|put|patch)\(\s*\"([^\"]*)\"")  # a route's path, as the features write it


class SlowBody:
    """The app behind a network that delivers the request's body `took` after the request began (`arrive`): the
    clock reads `arrive` when the request reaches the server, `arrive + took` once its last body bytes are in."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.now = OPENED
        self.arrive: dt.datetime | None = None
        self.took = dt.timedelta()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.arrive is None:
            await self.app(scope, receive, send)
            return
        self.now = self.arrive
        arrived = self.arrive

        async def slow() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self.now = arrived + self.took
            return message

        await self.app(scope, slow, send)


@pytest.fixture
def slow(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, SlowBody]]:
    from service.adapters.http.app import create_app  # as the `client` fixture: the app built per test

    network = SlowBody(create_app(ctx=ctx))
    monkeypatch.setattr(clock, "now_utc", lambda: network.now)
    with TestClient(network) as c:
        c.headers["X-API-Key"] = API_KEY
        yield c, network


def _upload(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path, arrive: dt.timedelta, took: dt.timedelta
) -> tuple[dict[str, Any], Any]:
    """A session opened at OPENED, then its video begun `arrive` later, its body taking `took`."""
    client, network = slow
    network.now, network.arrive = OPENED, None
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    network.arrive, network.took = OPENED + arrive, took
    return s, put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes())


def _row(ctx: ServiceContext, sid: str) -> CertSession:
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        return row


def test_an_upload_begun_in_time_is_not_refused_for_the_time_its_body_took(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path
) -> None:
    """Begun 10 s before the challenge's end, the video's body took 100 s: the route ran 90 s past the end. It was
    refused NONCE_EXPIRED (410), and the elder had to film again; it is stored now, the nonce spent."""
    s, r = _upload(slow, ctx, data_dir, arrive=TTL - dt.timedelta(seconds=10), took=dt.timedelta(seconds=100))
    assert r.status_code == 200, r.text
    assert r.json()["uploads"]["video"] is True
    row = _row(ctx, s["session_id"])
    assert row.video_key is not None and row.nonce_used_at is not None


def test_an_upload_begun_after_the_challenge_ended_is_refused(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path
) -> None:
    """Begun 1 s after the challenge's end, however fast its body: NONCE_EXPIRED, nothing stored."""
    s, r = _upload(slow, ctx, data_dir, arrive=TTL + dt.timedelta(seconds=1), took=dt.timedelta())
    assert r.status_code == 410 and r.json()["error"]["code"] == "NONCE_EXPIRED", r.text
    row = _row(ctx, s["session_id"])
    assert row.video_key is None and row.nonce_used_at is None


def test_an_upload_begun_in_time_but_still_arriving_a_lifetime_later_is_refused(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path
) -> None:
    """The cap: a request begun in time whose body arrives more than CHALLENGE_TTL_S after the challenge's end (a
    trickled body would otherwise stretch the time to make a video of the actions without limit) is refused."""
    s, r = _upload(slow, ctx, data_dir, arrive=TTL - dt.timedelta(seconds=10), took=TTL + dt.timedelta(seconds=11))
    assert r.status_code == 410 and r.json()["error"]["code"] == "NONCE_EXPIRED", r.text
    assert "took too long" in r.json()["error"]["detail"]
    assert _row(ctx, s["session_id"]).video_key is None
    # At the cap exactly it is still taken.
    s, r = _upload(slow, ctx, data_dir, arrive=TTL - dt.timedelta(seconds=10), took=TTL + dt.timedelta(seconds=10))
    assert r.status_code == 200, r.text


def test_the_arrival_is_the_servers_never_the_clients(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path
) -> None:
    """A client cannot claim an earlier start: headers or form fields naming a time are ignored; only the server's
    clock when the request reached it counts."""
    client, network = slow
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    network.arrive, network.took = OPENED + TTL + dt.timedelta(seconds=5), dt.timedelta()
    early = OPENED.isoformat()
    r = client.post(
        f"/api/v1/sessions/{s['session_id']}/video",
        headers={"Authorization": f"Bearer {s['token']}", "Idempotency-Key": "video-request-early", "Date": early},
        files={"file": ("selfie.webm", (data_dir / LIVE_VIDEO).read_bytes(), "video/webm")},
        data={"nonce": s["challenge"]["nonce"], "arrived_at": early, "started_at": early},
    )
    assert r.status_code == 410 and r.json()["error"]["code"] == "NONCE_EXPIRED", r.text


def test_the_h5_pages_send_the_video_through_the_same_rule(client: TestClient) -> None:
    """The WeChat H5 capture page (and the family pages, which hand their session to it) sends the video to the
    session API's route, judged as above; no H5 or proxy route takes a video of its own (the card routes take no
    nonce)."""
    h5_js = (Path(h5.__file__).parent / "static" / "h5-upload.js").read_text()  # the capture page's upload
    assert '"/api/v1/sessions/" + s.session_id + "/video"' in h5_js
    api = client.get("/openapi.json").json()["paths"]
    assert [p for p in api if "video" in p] == ["/api/v1/sessions/{session_id}/video"]
    features = Path(h5.__file__).parents[2]  # service/features: the H5 pages (not in the schema) and the proxy API
    routes = [m for f in features.rglob("*.py") for m in ROUTE.findall(f.read_text())]
    assert routes and not [r for r in routes if "video" in r.lower()], routes
