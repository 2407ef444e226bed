"""In scale-out, one host off the official account's IP whitelist (40164, or its IP awaiting or refused the
administrator's confirmation: 895xx) paused every host's notices until the back-off passed: the refusal mark was
shared like the token. Such a refusal concerns the address the call came from, so it now pauses the host that got
it (WeChatApi.host) and no other; refused account settings (a wrong or reset AppSecret: 40001, 40125...) still
pause all. The loopback fake cannot tell two hosts apart by address: it refuses every call while `ip_refusal` is
set, around the calls of the host off the whitelist."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from prometheus_client.core import Metric
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.features.wechat import client, config_guard
from service.features.wechat.client import TOKEN_KEY, WeChatApi
from service.features.wechat.errors import WeChatConfigRefusedError
from service.features.wechat.gauges import WeChatGauges
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import run_notifications
from service.infra import clock
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import certified_by, channel
from tests.service.features.wechat.test_notify_hours import china

T0 = china(22, 10, 0)
DAY = dt.date(2026, 11, 22)


def _due(db: Session, ctx: ServiceContext, *openids: str) -> None:
    for openid in openids:
        certified_by(db, ctx, factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2026, 12, 10)), openid)
    db.commit()


def _notices(db: Session) -> dict[str, tuple[str, int]]:
    db.expire_all()
    return {n.openid: (n.status, n.attempts) for n in db.scalars(select(WeChatNotice))}


def _at(monkeypatch: pytest.MonkeyPatch, minutes: float) -> dt.datetime:
    at = T0 + dt.timedelta(minutes=minutes)
    monkeypatch.setattr(clock, "now_utc", lambda: at)
    return at


def _hosts(ctx: ServiceContext) -> tuple[WeChatApi, WeChatApi]:
    """Two hosts' channels over one token store (Redis in scale-out), as two machines of one deployment."""
    a = channel(ctx).api
    return WeChatApi(a.config, a.store, host="host-a"), WeChatApi(a.config, a.store, host="host-b")


def _gauges(ctx: ServiceContext, api: WeChatApi) -> dict[str, Metric]:
    return {m.name: m for m in WeChatGauges(ctx, api).collect()}


def _paused(metrics: dict[str, Metric]) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in metrics["pension_cert_wechat_paused"].samples}


def test_a_host_off_the_ip_whitelist_pauses_itself_and_the_other_host_sends(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    _due(db, ctx, "o-1", "o-2")
    host_a, host_b = _hosts(ctx)
    fake_wx.state.ip_refusal = 40164  # host A's address is off the whitelist
    assert run_notifications(ctx, host_a, DAY, _at(monkeypatch, 0)).sent == 0
    assert set(_notices(db).values()) == {(NoticeStatus.PENDING, 0)}  # nothing spent
    fake_wx.state.ip_refusal = None  # host B's address is on it
    # Before: the mark was shared, and host B sent nothing until A's back-off passed.
    assert run_notifications(ctx, host_b, DAY, _at(monkeypatch, 0.5)).sent == 2
    assert set(_notices(db).values()) == {(NoticeStatus.SENT, 1)}

    # Scraped on either host, /metrics says which host is paused and why; not the account's settings.
    for api in (host_a, host_b):
        paused = _paused(_gauges(ctx, api))
        assert paused[(("reason", "configuration"),)] == 0 and paused[(("reason", "ip_whitelist"),)] == 1
        [host] = _gauges(ctx, api)["pension_cert_wechat_host_paused"].samples
        assert (host.labels, host.value) == ({"host": "host-a", "errcode": "40164"}, 1)

    # Host A, still refused, asks nothing within its back-off, and after it is refused again on a send with the
    # token host B fetched: no attempt spent, its back-off doubled; B's token fetch did not clear A's mark.
    _due(db, ctx, "o-3")
    calls = (fake_wx.state.token_calls, fake_wx.state.template_calls)
    assert run_notifications(ctx, host_a, DAY, _at(monkeypatch, 0.7)).sent == 0
    assert (fake_wx.state.token_calls, fake_wx.state.template_calls) == calls
    fake_wx.state.ip_refusal = 40164
    assert run_notifications(ctx, host_a, DAY, _at(monkeypatch, 1.5)).sent == 0
    assert _notices(db)["o-3"] == (NoticeStatus.PENDING, 0)
    mark = config_guard.refused(host_a.store, host_a.config, "host-a")
    assert mark is not None and (mark.errcode, mark.wait_s, mark.host) == (40164, 120.0, "host-a")
    assert config_guard.refused(host_b.store, host_b.config, "host-b") is None
    fake_wx.state.ip_refusal = None
    assert run_notifications(ctx, host_b, DAY, _at(monkeypatch, 1.6)).sent == 1


def test_refused_account_settings_still_pause_every_host(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong or reset AppSecret is the account's: any host's refusal pauses all, and the gauge says so."""
    _due(db, ctx, "o-1")
    host_a, host_b = _hosts(ctx)
    fake_wx.state.app_secret = "reset-in-the-admin-console"
    assert run_notifications(ctx, host_a, DAY, _at(monkeypatch, 0)).sent == 0
    calls = fake_wx.state.token_calls
    assert run_notifications(ctx, host_b, DAY, _at(monkeypatch, 0.5)).sent == 0
    assert fake_wx.state.token_calls == calls  # host B did not ask either
    mark = config_guard.refused(host_b.store, host_b.config, "host-b")
    assert mark is not None and (mark.errcode, mark.host) == (40001, None)
    paused = _paused(_gauges(ctx, host_b))
    assert paused[(("reason", "configuration"),)] == 1 and paused[(("reason", "ip_whitelist"),)] == 0
    assert list(_gauges(ctx, host_b)["pension_cert_wechat_host_paused"].samples) == []
    assert host_a.store.get(TOKEN_KEY) is None


def _host_paused(metrics: dict[str, Metric]) -> list[tuple[str, str]]:
    return [(s.labels["host"], s.labels["errcode"]) for s in metrics["pension_cert_wechat_host_paused"].samples]


def test_a_host_back_on_the_whitelist_is_unpaused_by_its_first_successful_call(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: only the host's own token fetch cleared its mark, and with a token another host fetched it
    need not fetch one for hours: once the whitelist was fixed it sent again, yet its mark and the gauges
    (`ip_whitelist`, `host_paused`) stayed 1, the alert firing for a host that works. Any successful call of the host
    proves its address accepted: it clears the host's own mark (another host's stays)."""
    _due(db, ctx, "o-1")
    host_a, host_b = _hosts(ctx)
    fake_wx.state.ip_refusal = 40164
    assert run_notifications(ctx, host_a, DAY, _at(monkeypatch, 0)).sent == 0
    fake_wx.state.ip_refusal = None
    assert run_notifications(ctx, host_b, DAY, _at(monkeypatch, 0.5)).sent == 1  # B fetched the token
    assert _host_paused(_gauges(ctx, host_b)) == [("host-a", "40164")]
    # The administrator adds host A's address; after its back-off A sends with B's token, fetching none itself.
    _due(db, ctx, "o-2")
    calls = fake_wx.state.token_calls
    assert run_notifications(ctx, host_a, DAY, _at(monkeypatch, 5)).sent == 1
    assert fake_wx.state.token_calls == calls
    assert config_guard.refused(host_a.store, host_a.config, "host-a") is None
    for api in (host_a, host_b):
        assert _paused(_gauges(ctx, api))[(("reason", "ip_whitelist"),)] == 0
        assert _host_paused(_gauges(ctx, api)) == []


def test_a_host_gone_for_long_leaves_no_pause_behind(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: a host replaced while paused (a pod, a VM rebuilt under another name) never called again,
    so its mark stayed in the hosts' entry and on /metrics for good. A mark nobody renewed for a day past its
    back-off is dropped (no longer shown, and removed when the entry is next written)."""
    host_a, host_b = _hosts(ctx)
    fake_wx.state.ip_refusal = 40164
    _at(monkeypatch, 0)
    with pytest.raises(WeChatConfigRefusedError):
        host_a.access_token()
    assert _host_paused(_gauges(ctx, host_b)) == [("host-a", "40164")]
    _at(monkeypatch, 60 * 25)  # a day and an hour later: host A is gone; host B refused in its turn
    assert _host_paused(_gauges(ctx, host_b)) == []
    with pytest.raises(WeChatConfigRefusedError):
        host_b.access_token()
    assert _host_paused(_gauges(ctx, host_b)) == [("host-b", "40164")]
    stored = host_b.store.get(config_guard.HOSTS_KEY)
    assert stored is not None and set(json.loads(stored[0])) == {"host-b"}


def test_refusals_within_the_back_off_do_not_lengthen_it(
    ctx: ServiceContext, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the H5 pages' photo downloads (and JS-SDK tickets) do not check the pause first: each one
    refused within the back-off doubled it, so seven citizens' uploads in a few seconds paused the host for an hour
    (3600 s) after a one-minute refusal. Only a try after the back-off doubles it."""
    host_a, host_b = _hosts(ctx)
    _at(monkeypatch, 0)
    host_b.access_token()
    fake_wx.state.ip_refusal = 40164
    for i in range(7):
        _at(monkeypatch, i / 60)
        with pytest.raises(WeChatConfigRefusedError):
            host_a.download_media(f"m-{i}")
    mark = config_guard.refused(host_a.store, host_a.config, "host-a")
    assert mark is not None and (mark.wait_s, mark.retry_at) == (60.0, (T0 + dt.timedelta(minutes=1)).timestamp())
    _at(monkeypatch, 1.5)  # after the back-off: refused again, doubled
    with pytest.raises(WeChatConfigRefusedError):
        host_a.download_media("m-late")
    mark = config_guard.refused(host_a.store, host_a.config, "host-a")
    assert mark is not None and mark.wait_s == 120.0


def test_a_send_wechat_took_is_sent_even_when_its_host_mark_cannot_be_cleared(
    ctx: ServiceContext, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mark is cleared after the call succeeded: a token store out of reach at that moment must not turn a send
    WeChat took into a failure (it could then be sent twice); the next success clears it."""
    host_a, _ = _hosts(ctx)
    host_a.config = dataclasses.replace(host_a.config, templates={"result": "tpl"})
    host_a.access_token()

    def unreachable(store: object, host: str) -> None:
        raise ConnectionError("token store out of reach")

    monkeypatch.setattr(client, "clear_host_refusal", unreachable)
    assert host_a.send_template("o-1", "result", {"first": "x"}) == 1
    assert len(fake_wx.state.sent_templates) == 1
