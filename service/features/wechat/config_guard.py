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


@dataclass(frozen=True)
class Refused:
    errcode: int
    since: float  # epoch seconds of the first refusal
    retry_at: float  # no token fetch before this
    wait_s: float  # the current back-off
    reminded_at: float  # the last ERROR


def _digest(config: WeChatConfig) -> str:
    raw = "\0".join((config.app_id, config.app_secret, config.api_base_url)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def refused(store: TokenStore, config: WeChatConfig) -> Refused | None:
    """The standing refusal of these settings, if any (one made with other settings does not count)."""
    mark = store.get(KEY)
    if mark is None:
        return None
    try:
        data = json.loads(mark[0])
        if data.get("digest") != _digest(config):
            return None
        return Refused(int(data["errcode"]), data["since"], data["retry_at"], data["wait_s"], data["reminded_at"])
    except (ValueError, KeyError, TypeError):
        return None


def _now() -> float:
    return clock.now_utc().timestamp()


def check_settings(store: TokenStore, config: WeChatConfig, now: dt.datetime | None = None) -> None:
    """Raise WeChatConfigRefusedError (no call made) while a refusal of these settings is within its back-off."""
    mark = refused(store, config)
    at = now.timestamp() if now is not None else _now()
    if mark is not None and at < mark.retry_at:
        raise WeChatConfigRefusedError(mark.errcode, "settings refused by WeChat; not asked again yet")


def blocked(store: TokenStore, config: WeChatConfig, now: dt.datetime) -> bool:
    mark = refused(store, config)
    return mark is not None and now.timestamp() < mark.retry_at


def record_refusal(store: TokenStore, config: WeChatConfig, errcode: int) -> None:
    """WeChat refused a token fetch with these settings (`errcode` in CONFIG_REFUSED): mark it, back off, say so."""
    now, mark = _now(), refused(store, config)
    wait = FIRST_WAIT_S if mark is None else min(mark.wait_s * 2, MAX_WAIT_S)
    since, reminded = (now, now) if mark is None else (mark.since, mark.reminded_at)
    if mark is None or now - mark.reminded_at >= REMIND_S:
        reminded = now
        log.error(
            "wechat: WeChat refuses this service's account settings (errcode %s): fix %s. Nothing is sent until then"
            " (notices wait, none given up); WeChat is asked again in %d s, at once after the settings change"
            " (docs/wechat.md). Refused since %s",
            errcode,
            FIX.get(errcode, "WECHAT_APP_ID / WECHAT_APP_SECRET"),
            wait,
            dt.datetime.fromtimestamp(since, dt.UTC).isoformat(timespec="seconds"),
        )
    value = {"digest": _digest(config), "errcode": errcode, "since": since, "retry_at": now + wait}
    value.update(wait_s=wait, reminded_at=reminded)
    store.set(KEY, json.dumps(value), time.time() + KEEP_S)


def clear_refusal(store: TokenStore, config: WeChatConfig) -> None:
    """A token was fetched with these settings: a standing refusal of them is over."""
    if refused(store, config) is not None:
        store.set(KEY, "", time.time())  # lapses at once (the store's get reads it as missing)
        log.info("wechat: WeChat accepts the account settings again; notices go out")
