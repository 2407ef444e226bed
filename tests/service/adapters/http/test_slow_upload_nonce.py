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

from service.certification import cycle, registry
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession
from service.features.wechat import h5
from service.infra import clock
from service.infra.clock import local_date
from tests.service import factories
from tests.service.adapters.http.helpers import (
    auth,
    beneficiary_with_number,
    in_wechat,
    open_session,
    put_card,
    put_video,
)
from tests.service.conftest import API_KEY
from tests.service.media import LIVE_VIDEO, card_for_video

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


LAST = dt.date(2031, 3, 9)  # the person's last valid day
MIDNIGHT = dt.datetime(2031, 3, 9, 16, 0, tzinfo=dt.UTC)  # 00:00 Beijing on the day after LAST
QUEUING = ["video", "card", "h5-card"]  # the upload that queues the session: the session API's two, the H5 card


def _queue_across_midnight(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path, queuing: str, begun: dt.timedelta
) -> tuple[CertSession, int]:
    """A person valid to LAST; a session opened 3 minutes before midnight (Beijing) and its first upload sent at
    once; the upload that queues it (`queuing`) begun `begun` from midnight, its body taking 60 s."""
    client, network = slow
    network.now, network.arrive = MIDNIGHT - dt.timedelta(minutes=3), None
    card, fields = card_for_video(data_dir, LIVE_VIDEO)  # the H5 card route reads the card's number
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=fields.id_number, name=fields.name, valid_until=LAST)
        bid = b.id
    if queuing == "h5-card":
        in_wechat(client, ctx)
        r = client.post("/h5/api/sessions", json={"name": fields.name, "id_number": fields.id_number, "consent": True})
        assert r.status_code == 200, r.text
        s = r.json()
    else:
        s = open_session(client, b.external_id)
    video = (data_dir / LIVE_VIDEO).read_bytes()
    first = put_card(client, s, card) if queuing == "video" else put_video(client, s, video)
    assert first.status_code == 200, first.text
    network.arrive, network.took = MIDNIGHT + begun, dt.timedelta(seconds=60)
    if queuing == "video":
        r = put_video(client, s, video)
    elif queuing == "card":
        r = put_card(client, s, card)
    else:
        files = {"file": ("card.jpg", card, "image/jpeg")}
        r = client.post(f"/h5/api/sessions/{s['session_id']}/card", headers=auth(s), files=files)
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text
    return _row(ctx, s["session_id"]), bid


def _next_day(ctx: ServiceContext, bid: int) -> tuple[cycle.CycleState, bool, bool]:
    """On the day after LAST, the job still undecided: the person's state, whether lists/overdue names them and
    whether the day's run suspends them."""
    today = LAST + dt.timedelta(days=1)
    with ctx.db() as db:
        person = db.get(Beneficiary, bid)
        assert person is not None
        cases = ctx.hooks.case_sources()
        state = cycle.states_of(db, [person], today, ctx.rules, cases=cases)[bid]
        overdue = bid in [p.id for p in registry.status_list(db, "overdue", today, ctx.rules, cases=cases)]
        return state, overdue, bid in cycle.run_cycle(db, today, ctx.rules, cases=cases)


@pytest.mark.parametrize("queuing", QUEUING)
def test_an_upload_begun_before_midnight_on_the_last_valid_day_is_made_in_time(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path, queuing: str
) -> None:
    """Begun at 23:59:30 (Beijing) on the last valid day, its body in at 00:00:30: the session is stamped with the
    arrival (`queued_at`, `nonce_used_at`), the instant the nonce is judged at. It was stamped when the route ran,
    the next day: the person was listed overdue and suspended by the night's run while the job waited."""
    row, bid = _queue_across_midnight(slow, ctx, data_dir, queuing, begun=-dt.timedelta(seconds=30))
    arrival = (MIDNIGHT - dt.timedelta(seconds=30)).replace(tzinfo=None)
    assert row.queued_at == arrival
    assert local_date(ctx.settings, row.queued_at) == LAST
    if queuing == "video":
        assert row.nonce_used_at == arrival
    assert _next_day(ctx, bid) == (cycle.CycleState.AWAITING_DECISION, False, False)


@pytest.mark.parametrize("queuing", QUEUING)
def test_an_upload_begun_after_midnight_is_the_next_days(
    slow: tuple[TestClient, SlowBody], ctx: ServiceContext, data_dir: Path, queuing: str
) -> None:
    """The mirror: begun at 00:00:05 the day after the last valid day, it is late: overdue, suspended by the run."""
    row, bid = _queue_across_midnight(slow, ctx, data_dir, queuing, begun=dt.timedelta(seconds=5))
    assert row.queued_at == (MIDNIGHT + dt.timedelta(seconds=5)).replace(tzinfo=None)
    assert _next_day(ctx, bid) == (cycle.CycleState.OVERDUE, True, True)
