"""The WeChat sender's own deadline. requests' timeouts are per connect and per read, so a server trickling its
answer a byte at a time kept one send (or token fetch) alive indefinitely: the quarter-hour bound after which a
`sending` notice is shown to staff (notice_send.STALE_CLAIM) was no bound, and a notice still in flight could be
sent again by their resend. Every call to WeChat's API now has a total wall-clock deadline (WeChatConfig.deadline_s,
far under STALE_CLAIM), enforced by closing the connection when it passes and by writing nothing after it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from urllib3 import poolmanager
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.poolmanager import PoolManager

from service.certification.context import ServiceContext
from service.features.wechat import notice_send
from service.features.wechat.client import WeChatApi
from service.features.wechat.config import WeChatConfig
from service.features.wechat.deadline import deadline
from service.features.wechat.errors import WeChatUnavailableError
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import run_notifications
from service.features.wechat.tokens import MemoryTokenStore
from service.infra import clock
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel
from tests.service.features.wechat.test_notify_hours import china

DAY = dt.date(2026, 11, 22)
AT = china(22, 10, 0)
DEADLINE_S = 1.0
# The fake trickles 400 spaces at 0.05 s each: 20 s per answer, every gap far under the client's 10-s read timeout.
TRICKLED_S = 20.0
# A run cut at its deadline ends within this: the deadline and the run's own work, which a loaded machine makes
# several times slower (2 s over the deadline was too tight for it); still far under the trickle it was cut from.
CUT_S = DEADLINE_S + 7.0


def _api(ctx: ServiceContext) -> WeChatApi:
    api = channel(ctx).api
    return WeChatApi(dataclasses.replace(api.config, deadline_s=DEADLINE_S), api.store)


def _due(ctx: ServiceContext, db: Session, openid: str) -> int:
    b = factories.beneficiary(db, ctx.keyring, name="王桂兰", valid_until=dt.date(2026, 12, 9))
    certified_by(db, ctx, b, openid)
    db.commit()
    return b.id


def _notice(db: Session, openid: str) -> WeChatNotice:
    db.expire_all()
    return db.scalars(select(WeChatNotice).where(WeChatNotice.openid == openid)).one()


def test_a_trickled_answer_to_a_send_gives_up_at_the_deadline_and_goes_to_staff_as_a_lost_answer(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the run waited the whole trickle (20 s here; unbounded against a server that keeps trickling) with
    the notice `sending` and no mark, and past STALE_CLAIM staff were offered to resend it while it was in flight."""
    monkeypatch.setattr(clock, "now_utc", lambda: AT)
    _due(ctx, db, "o-trickle")
    api = _api(ctx)
    api.access_token()  # the token is fetched at once; only the send's answer trickles
    fake_wx.state.trickle = {"/cgi-bin/message/template/send"}
    started = time.monotonic()
    run = run_notifications(ctx, api, DAY, AT)
    took = time.monotonic() - started
    assert took < CUT_S < TRICKLED_S / 2, took
    assert len(fake_wx.state.sent_templates) == 1  # WeChat took it: it may well have been delivered
    notice = _notice(db, "o-trickle")
    # Over for good within the deadline: a lost answer (never resent by itself; staff settle it at once, with the
    # duplicate-risk box), not a send still in flight.
    assert (run.sent, run.unsure, notice.status) == (0, 1, NoticeStatus.SENDING)
    assert (notice.last_error or "").startswith(notice_send.ANSWER_LOST)
    assert f"deadline of {DEADLINE_S:g} s" in (notice.last_error or "")
    assert notice_send.is_answer_unknown(notice, clock.now_utc().replace(tzinfo=None))


def test_a_trickled_token_fetch_gives_up_at_the_deadline_and_the_notice_waits_untouched(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token fetch trickled: the run stops as for WeChat out of reach, the notice back to `pending` with no attempt
    spent, nothing sent; the next run (the server answering again) sends it."""
    monkeypatch.setattr(clock, "now_utc", lambda: AT)
    _due(ctx, db, "o-token")
    api = _api(ctx)
    fake_wx.state.trickle = {"/cgi-bin/token"}
    started = time.monotonic()
    run = run_notifications(ctx, api, DAY, AT)
    took = time.monotonic() - started
    assert took < CUT_S < TRICKLED_S / 2, took
    notice = _notice(db, "o-token")
    assert (run.sent, notice.status, notice.attempts, fake_wx.state.template_calls) == (0, NoticeStatus.PENDING, 0, 0)
    assert api.store.get("wechat:access_token") is None  # the half-read token was not kept
    fake_wx.state.trickle = set()
    assert run_notifications(ctx, api, DAY, AT).sent == 1
    assert _notice(db, "o-token").status == NoticeStatus.SENT


def test_nothing_is_written_to_wechat_once_the_deadline_has_passed(fake_wx: FakeWeChat) -> None:
    """Time spent before the request (a token-store lock wait, a slow name resolution) counts: a call whose deadline
    passed before it could write sends nothing (a request written later could be delivered after staff were shown
    the notice), and says so as WeChat out of reach (retried, no duplicate possible)."""
    config = WeChatConfig("wx-test-app", "test-secret", "t", "https://x.test", api_base_url=fake_wx.base_url)
    api = WeChatApi(dataclasses.replace(config, deadline_s=DEADLINE_S, templates={"result": "tpl"}), MemoryTokenStore())
    api.access_token()
    real_lock = api.store.lock

    def slow_lock(key: str):  # type: ignore[no-untyped-def]
        time.sleep(DEADLINE_S + 0.2)
        return real_lock(key)

    api.store.lock = slow_lock  # type: ignore[method-assign]
    fake_wx.state.expire_all_tokens()  # the send's first answer is "stale token": a refresh, under the lock
    calls = fake_wx.state.token_calls
    with pytest.raises(WeChatUnavailableError) as caught:
        api.send_template("o-late", "result", {"first": "x"})
    assert "deadline" in str(caught.value)
    assert fake_wx.state.token_calls == calls and fake_wx.state.sent_templates == []


def test_the_deadline_has_one_home_well_under_the_stale_claim_bound() -> None:
    """The sender's deadline is what makes STALE_CLAIM a bound: a notice is shown to staff only once no send of it
    can still be running (token-store lock waits and the database's writes on top)."""
    default = WeChatConfig("a", "s", "t", "https://x.test").deadline_s
    assert default > 0 and dt.timedelta(seconds=default) * 4 <= notice_send.STALE_CLAIM
    assert dt.timedelta(seconds=default) == notice_send.SEND_DEADLINE


def _two_deadline_api(fake_wx: FakeWeChat) -> WeChatApi:
    config = WeChatConfig("wx-test-app", "test-secret", "t", "https://x.test", api_base_url=fake_wx.base_url)
    api = WeChatApi(dataclasses.replace(config, deadline_s=30.0, templates={"result": "tpl"}), MemoryTokenStore())
    api.access_token()
    fake_wx.state.keep_alive = True  # connections pooled and reused, as with WeChat's servers
    return api


def test_a_deadline_shuts_only_the_connections_its_own_call_still_holds(fake_wx: FakeWeChat) -> None:
    """Found in review: a deadline remembered every socket its call had used, including one already back in the
    process's shared pool; when it passed it shut them all, so another call (another thread: the H5 pages' photo
    downloads, the schedule) that had taken that connection failed with its own deadline far off, a send then
    recorded as a lost answer. Call A (1 s) sends, then waits within its deadline; call B (30 s) reuses A's
    connection for a send answered in 1 s: it must get its answer."""
    api = _two_deadline_api(fake_wx)
    a_sent, outcome = threading.Event(), dict[str, object]()

    def call_a() -> None:
        with deadline(1.0):
            api.send_template("o-a", "result", {"first": "a"})
            a_sent.set()
            time.sleep(1.5)  # still within A's deadline (waiting, e.g. for the token lock), its connection released

    def call_b() -> None:
        started = time.monotonic()
        try:
            outcome["b"] = api.send_template("o-b", "result", {"first": "b"})
        except WeChatUnavailableError as exc:
            outcome["b"] = str(exc)
        outcome["took"] = time.monotonic() - started

    threads = [threading.Thread(target=call_a), threading.Thread(target=call_b)]
    threads[0].start()
    assert a_sent.wait(5)
    fake_wx.state.answer_late_s = 1.2  # only B's send is answered late (A's was answered before B started)
    threads[1].start()
    for t in threads:
        t.join(10)
    assert outcome["b"] == 2, outcome  # before: RemoteDisconnected at A's deadline, 1.0 s (a lost answer)
    took = outcome["took"]
    assert isinstance(took, float) and took >= 1.2  # B waited for its answer, past A's deadline


def test_a_watchdog_firing_after_its_call_ended_does_nothing(fake_wx: FakeWeChat) -> None:
    """Timer.cancel() cannot stop a watchdog already started: one firing as its call ends must neither shut what the
    call used (now another call's) nor say the call was cut."""
    api = _two_deadline_api(fake_wx)
    with deadline(5.0) as d:
        api.send_template("o-a", "result", {"first": "a"})
    d._expire()  # the watchdog, late
    assert not d.passed and d.explain("x") == "x"


def _wrong_pool(self: PoolManager, scheme: str, host: str, port: int, request_context: object = None) -> object:
    return HTTPConnectionPool(host, port)  # a urllib3 that no longer builds its pools from pool_classes_by_scheme


@pytest.mark.parametrize(
    ("owner", "hook"),
    [
        (HTTPConnection, "_new_conn"),
        (HTTPConnection, "request"),
        (HTTPConnectionPool, "_put_conn"),
        (HTTPConnectionPool, "ConnectionCls"),
        (poolmanager, "pool_classes_by_scheme"),
        (PoolManager, "_new_pool"),
    ],
)
def test_no_wechat_client_is_built_without_the_urllib3_hooks_its_deadline_rests_on(
    monkeypatch: pytest.MonkeyPatch, owner: object, hook: str
) -> None:
    """Found in review: the deadline rests on urllib3 2's internals (the pool classes a pool manager builds, the
    connection class a pool uses, the connection's _new_conn and request, the pool's _put_conn), which nothing
    checked: a urllib3 without them would silently leave every call unbounded. The client now refuses to be built,
    saying why, at start (WeChatApi, built by build_channel when the service starts)."""
    if hook == "_new_pool":
        monkeypatch.setattr(PoolManager, "_new_pool", _wrong_pool)
    else:
        monkeypatch.delattr(owner, hook)
    config = WeChatConfig("wx-test-app", "test-secret", "t", "https://x.test", api_base_url="http://127.0.0.1:9/")
    with pytest.raises(RuntimeError, match="urllib3"):
        WeChatApi(config, MemoryTokenStore())
