"""WeChat refusing the account's own settings: an AppID or AppSecret it does not accept (a typo, the secret reset in
the official account's admin console, or frozen), or this server's IP not on the account's whitelist (or awaiting the
administrator's confirmation). Every call needs a token,
so every call would be refused alike: the schedule used to ask once a minute for the refresh and again for each
pending notice, log an ERROR each time and spend an attempt of each notice (given up for good within five runs).

The first refusal of a token fetch (`CONFIG_REFUSED`) is marked in the token store (shared by every process, like
the token): until the back-off passes (a minute, doubling up to an hour) no process asks WeChat for a token again
(`WeChatConfigRefusedError`, raised without a call: nothing sent, the schedule's run stops, no attempt spent). One
ERROR says what to fix; while it lasts a reminder at most hourly. The mark belongs to the settings it was made with
(a digest of the AppID, AppSecret and API address): once they change, the next call asks at once. A token fetched
again clears it. /metrics shows it (`pension_cert_wechat_paused{reason="configuration"}`: gauges.py).

A refusal of the address a call came from (`HOST_BOUND`: off the IP whitelist, awaiting or refused the
administrator's confirmation) is one host's, not the account's: in scale-out another host may be on the whitelist. It
is marked for the host that got it (`WeChatApi.host`; one entry per host under `HOSTS_KEY`, written under the store's
lock), pauses that host alone, is renewed by a send refused alike with a token another host fetched, and is cleared
by any successful call of that host (its token fetch; a send or download with a token another host fetched:
`clear_host_refusal`; `reason="ip_whitelist"`, `pension_cert_wechat_host_paused{host,errcode}`). A host's mark
nobody renewed for `FORGET_S` past its back-off (the host replaced, or gone) is no longer read, and is dropped when the
entry is next written. A refusal within the back-off (the H5 pages' downloads do not check it first) leaves the
back-off as it is: only a try after it doubles it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass

from service.features.wechat.config import WeChatConfig
from service.features.wechat.errors import WeChatConfigRefusedError
from service.features.wechat.tokens import TokenStore
from service.infra import clock

log = logging.getLogger(__name__)

# WeChat's answers to a token fetch (getAccessToken) that only the settings can cause: 40001 (AppSecret wrong or not
# this account's: "AppSecret错误或者AppSecret不属于这个公众号"; no token is sent on this call, so it cannot mean a
# stale one; on every other call it does: client.TOKEN_ERRORS), 40013 invalid AppID, 40125 malformed AppSecret,
# 40243 AppSecret frozen, 41002 / 41004 AppID / AppSecret missing, 40164 this server's IP not on the whitelist,
# 89501 / 89503 the IP awaiting the administrator's confirmation, 89506 / 89507 the IP refused by the administrator.
# Checked only on the token fetch (client.WeChatApi._fetch_token).
CONFIG_REFUSED = frozenset({40001, 40013, 40125, 40243, 41002, 41004, 40164, 89501, 89503, 89506, 89507})
KEY = "wechat:configuration_refused"
FIRST_WAIT_S = 60.0
MAX_WAIT_S = 3600.0
REMIND_S = 3600.0
KEEP_S = 2 * 86400  # the mark is renewed at every try; one left by settings long gone lapses
FORGET_S = 86400.0  # a host's mark not renewed for this long after its back-off ended: the host is gone
HOST_RECHECK_S = 60.0  # a process looks for its host's mark after a successful call at most this often (client)
_SECRET = "WECHAT_APP_SECRET"
_CONFIRM = "the administrator's confirmation of this server's IP (a message to the official account's administrator)"
FIX = {
    40001: _SECRET,
    40013: "WECHAT_APP_ID",
    41002: "WECHAT_APP_ID",
    40125: _SECRET,
    41004: _SECRET,
    40243: f"{_SECRET} (frozen: unfreeze or reset it in the official account's admin)",
    40164: "the official account's IP whitelist (IP白名单) for this server's address",
    89501: _CONFIRM,
    89503: _CONFIRM,
    89506: f"{_CONFIRM}: the administrator refused it",
    89507: f"{_CONFIRM}: the administrator refused it",
}


# Of those, the refusals of the address the call came from, not of the account: another host of the deployment may
# be on the whitelist. They pause the host that got them (its own mark in HOSTS_KEY), the others pause every host.
HOST_BOUND = frozenset({40164, 89501, 89503, 89506, 89507})
HOSTS_KEY = "wechat:configuration_refused_hosts"


@dataclass(frozen=True)
class Refused:
    errcode: int
    since: float  # epoch seconds of the first refusal
    retry_at: float  # no token fetch before this
    wait_s: float  # the current back-off
    reminded_at: float  # the last ERROR
    host: str | None = None  # the host refused (HOST_BOUND); None: every host


def _digest(config: WeChatConfig) -> str:
    raw = "\0".join((config.app_id, config.app_secret, config.api_base_url)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _read(data: object, config: WeChatConfig, host: str | None) -> Refused | None:
    try:
        if not isinstance(data, dict) or data.get("digest") != _digest(config):
            return None
        return Refused(int(data["errcode"]), data["since"], data["retry_at"], data["wait_s"], data["reminded_at"], host)
    except (ValueError, KeyError, TypeError):
        return None


def _load(store: TokenStore, key: str) -> object:
    mark = store.get(key)
    try:
        return json.loads(mark[0]) if mark is not None and mark[0] else None
    except ValueError:
        return None


def _hosts(store: TokenStore) -> dict[str, object]:
    """The hosts' entry, without the marks of hosts gone (not renewed for FORGET_S past their back-off)."""
    hosts = _load(store, HOSTS_KEY)
    if not isinstance(hosts, dict):
        return {}
    now = _now()
    return {h: v for h, v in hosts.items() if isinstance(v, dict) and _recent(v.get("retry_at"), now)}


def _recent(retry_at: object, now: float) -> bool:
    return isinstance(retry_at, int | float) and now - retry_at < FORGET_S


def _write_hosts(store: TokenStore, hosts: dict[str, object]) -> None:
    store.set(HOSTS_KEY, json.dumps(hosts), time.time() + KEEP_S)


def refused_hosts(store: TokenStore, config: WeChatConfig) -> list[Refused]:
    """The hosts paused for their own address (HOST_BOUND) with these settings, by name."""
    marks = [_read(v, config, h) for h, v in sorted(_hosts(store).items())]
    return [m for m in marks if m is not None]


def refused(store: TokenStore, config: WeChatConfig, host: str | None = None) -> Refused | None:
    """The standing refusal of these settings that pauses `host`: every host's (the account's settings), else
    `host`'s own (its address); one made with other settings does not count. Without `host`: every host's only."""
    everyone = _read(_load(store, KEY), config, None)
    if everyone is not None or host is None:
        return everyone
    return next((m for m in refused_hosts(store, config) if m.host == host), None)


def _now() -> float:
    return clock.now_utc().timestamp()


def check_settings(store: TokenStore, config: WeChatConfig, host: str, now: dt.datetime | None = None) -> None:
    """Raise WeChatConfigRefusedError (no call made) while a refusal pausing `host` is within its back-off."""
    mark = refused(store, config, host)
    at = now.timestamp() if now is not None else _now()
    if mark is not None and at < mark.retry_at:
        raise WeChatConfigRefusedError(mark.errcode, "settings refused by WeChat; not asked again yet")


def blocked(store: TokenStore, config: WeChatConfig, now: dt.datetime, host: str) -> bool:
    mark = refused(store, config, host)
    return mark is not None and now.timestamp() < mark.retry_at


def record_refusal(store: TokenStore, config: WeChatConfig, errcode: int, host: str) -> None:
    """WeChat refused a call of `host` with these settings (`errcode` in CONFIG_REFUSED): mark it (for `host` alone
    when it is its address's: HOST_BOUND), back off, say so."""
    if errcode not in HOST_BOUND:
        value = _next(config, refused(store, config), errcode, None)
        store.set(KEY, json.dumps(value), time.time() + KEEP_S)
        return
    with store.lock(HOSTS_KEY):  # one entry per host in one value: hosts writing at once keep each other's
        hosts = _hosts(store)
        hosts[host] = _next(config, _read(hosts.get(host), config, host), errcode, host)
        _write_hosts(store, hosts)


def _next(config: WeChatConfig, mark: Refused | None, errcode: int, host: str | None) -> dict[str, object]:
    """The mark after one more refusal: the back-off doubled if the try came after it (one within it, from a call
    that does not check it first, leaves it as it is), the ERROR when due."""
    now = _now()
    wait = FIRST_WAIT_S if mark is None else min(mark.wait_s * 2, MAX_WAIT_S)
    retry_at = now + wait
    if mark is not None and now < mark.retry_at:
        wait, retry_at = mark.wait_s, mark.retry_at
    since, reminded = (now, now) if mark is None else (mark.since, mark.reminded_at)
    if mark is None or now - mark.reminded_at >= REMIND_S:
        reminded = now
        log.error(
            "wechat: WeChat refuses %s (errcode %s): fix %s. Nothing is sent %s until then (notices wait, none given"
            " up); WeChat is asked again in %d s, at once after the settings change (docs/wechat.md). Refused since %s",
            "this service's account settings" if host is None else f"calls from host {host} (its address)",
            errcode,
            FIX.get(errcode, "WECHAT_APP_ID / WECHAT_APP_SECRET"),
            "by any host" if host is None else f"by {host} (the other hosts send)",
            wait,
            dt.datetime.fromtimestamp(since, dt.UTC).isoformat(timespec="seconds"),
        )
    value: dict[str, object] = {"digest": _digest(config), "errcode": errcode, "since": since, "retry_at": retry_at}
    value.update(wait_s=wait, reminded_at=reminded)
    return value


def clear_refusal(store: TokenStore, config: WeChatConfig, host: str) -> None:
    """`host` fetched a token with these settings: they are accepted (every host's refusal is over), and so is its
    address (its own refusal); another host's address is not."""
    if refused(store, config) is not None:
        store.set(KEY, "", time.time())  # lapses at once (the store's get reads it as missing)
        log.info("wechat: WeChat accepts the account settings again; notices go out")
    clear_host_refusal(store, host)


def clear_host_refusal(store: TokenStore, host: str) -> None:
    """A call of `host` succeeded (a token fetch, or a send or download with a token another host fetched): WeChat
    accepts its address, its own mark goes (one read when there is none; the account's settings are not proven: an
    old token may still be valid after the AppSecret was reset)."""
    if host not in _hosts(store):
        return
    with store.lock(HOSTS_KEY):
        hosts = _hosts(store)
        if hosts.pop(host, None) is not None:
            _write_hosts(store, hosts)
            log.info("wechat: WeChat accepts calls from host %s again; its notices go out", host)
