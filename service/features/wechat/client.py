"""Calls to the WeChat official-account API through wechatpy, with the central token store.

Only configured base URLs are used (tests point them at a local fake WeChat server).
"""

from __future__ import annotations

import logging
import re
import secrets
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from urllib3.exceptions import NewConnectionError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from service.certification.heartbeat import host_name
from service.features.wechat.config import WeChatConfig
from service.features.wechat.config_guard import (
    CONFIG_REFUSED,
    HOST_BOUND,
    HOST_RECHECK_S,
    check_settings,
    clear_host_refusal,
    clear_refusal,
    record_refusal,
)
from service.features.wechat.deadline import check_hooks, current, deadline, watched_session
from service.features.wechat.errors import (
    WeChatAnswerLostError,
    WeChatConfigRefusedError,
    WeChatError,
    WeChatMediaExpiredError,
    WeChatUnavailableError,
)
from service.features.wechat.tokens import TokenStore

log = logging.getLogger(__name__)

T = TypeVar("T")
TOKEN_KEY = "wechat:access_token"
TICKET_KEY = "wechat:jsapi_ticket"
# 40001 invalid credential, 40014 invalid token, 42001 token expired: the token, not the request, is at fault.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
MEDIA_GONE = frozenset({40007, 40008})  # invalid media_id (unknown, or older than 3 days)
MAX_MEDIA_BYTES = 10 * 1024 * 1024
SECRETS_IN_URL = re.compile(r"(access_token|secret)=[^&\s'\"]+")


def _unreached(exc: requests.RequestException) -> bool:
    """Whether the request cannot have reached WeChat: no connection was made (refused, no route, unknown host, a
    connect timeout), the proxy refused or was out of reach (requests raises ProxyError only before the tunnel is
    up), or the TLS handshake failed on the certificate (a broken CA bundle): no HTTP byte was written. Anything
    later (a read timeout, a dropped connection, another TLS error) may come after WeChat acted on it."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.ProxyError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.exceptions.SSLError):
        return _cert_refused(reason)
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _cert_refused(error: object, depth: int = 0) -> bool:
    """Whether a certificate check (in the chain of `error`: its args and causes) refused the handshake."""
    if isinstance(error, ssl.SSLCertVerificationError | ssl.CertificateError):
        return True
    if not isinstance(error, BaseException) or depth > 5:
        return False
    inner = [*error.args, error.__cause__, error.__context__]
    return any(_cert_refused(item, depth + 1) for item in inner if isinstance(item, BaseException))


def _masked(exc: BaseException) -> str:
    """The error's text without the access token or AppSecret (requests puts the full URL in its messages), saying
    when the call's deadline cut it (deadline.py)."""
    text = SECRETS_IN_URL.sub(r"\1=***", str(exc))
    d = current()
    return d.explain(text) if d is not None else text


class _Client(WeChatClient):  # type: ignore[misc]
    """wechatpy's client whose access token comes from the central store instead of its own session."""

    def __init__(self, api: WeChatApi) -> None:
        super().__init__(api.config.app_id, api.config.app_secret, timeout=api.config.timeout_s, auto_retry=False)
        self.API_BASE_URL = api.config.api_base_url.rstrip("/") + "/cgi-bin/"
        self._api = api
        self._http = watched_session()  # wechatpy's own session, with each call's total deadline (deadline.py)

    @property
    def access_token(self) -> str:
        return self._api.access_token()


class WeChatApi:
    def __init__(self, config: WeChatConfig, store: TokenStore, host: str | None = None) -> None:
        check_hooks()  # before any session is built: urllib3 without the deadline's hooks refuses the start
        self.config = config
        self.store = store
        # Which host calls (WeChat's IP whitelist refuses one host's address, not the others': config_guard.py).
        self.host = host or host_name()
        # Whether this host's pause mark may be in the store (this process made it), and when it was last looked for
        # after a successful call (another process of the host may have made it): _address_accepted.
        self._maybe_paused, self._looked_at = True, 0.0
        self.client = _Client(self)
        self._session = watched_session()

    # -- tokens --------------------------------------------------------------------------------------

    def access_token(self, stale: str | None = None) -> str:
        """The shared token; refreshed (by one process at a time) when missing, expiring, or known `stale`."""
        return self._cached(TOKEN_KEY, self._fetch_token, stale)

    def refresh(self, ahead_s: float = 0.0) -> str:
        """For the scheduled refresher: renew the token when it would expire (within the margin) before the next
        run, `ahead_s` from now; otherwise keep it. WeChat counts every fetch against a daily quota (2000) and each
        one invalidates the previous token: fetching on every run spent the quota."""
        return self._cached(TOKEN_KEY, self._fetch_token, None, ahead_s)

    def _cached(self, key: str, fetch: Callable[[], tuple[str, int]], stale: str | None, ahead_s: float = 0.0) -> str:
        margin = self.config.token_refresh_margin_s + ahead_s
        stored = self.store.get(key)
        if stored and stored[0] != stale and stored[1] - time.time() > margin:
            return stored[0]
        with deadline(self.config.deadline_s), self.store.lock(key):
            stored = self.store.get(key)  # another process may have refreshed while we waited
            if stored and stored[0] != stale and stored[1] - time.time() > margin:
                return stored[0]
            value, expires_in = fetch()
            self.store.set(key, value, time.time() + expires_in)
            log.info("wechat: refreshed %s", key)
            return value

    def _fetch_token(self) -> tuple[str, int]:
        """A new token; refused settings are not asked about again within their back-off (config_guard.py)."""
        check_settings(self.store, self.config, self.host)
        try:
            data = self._http_json(
                "cgi-bin/token",
                {"grant_type": "client_credential", "appid": self.config.app_id, "secret": self.config.app_secret},
            )
        except WeChatError as exc:
            if exc.errcode not in CONFIG_REFUSED:
                raise
            self._maybe_paused = True
            record_refusal(self.store, self.config, exc.errcode, self.host)
            raise WeChatConfigRefusedError(exc.errcode, exc.errmsg) from exc
        clear_refusal(self.store, self.config, self.host)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    def _fetch_ticket(self) -> tuple[str, int]:
        data = self._call(lambda: self.client.jsapi.get_ticket("jsapi"))
        return str(data["ticket"]), int(data.get("expires_in", 7200))

    def _http_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = self.config.api_base_url.rstrip("/") + "/" + path
        try:
            resp = self._session.get(url, params=params, timeout=self.config.timeout_s)
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatUnavailableError(None, f"{path}: {_masked(exc)}") from exc
        if data.get("errcode"):
            raise WeChatError(int(data["errcode"]), str(data.get("errmsg", "")))
        return data

    def _call(self, fn: Callable[[], T]) -> T:
        """Run a wechatpy call within the call's deadline (deadline.py); on a token error refresh once (centrally) and
        retry; map failures."""
        with deadline(self.config.deadline_s):
            return self._call_within(fn)

    def _call_within(self, fn: Callable[[], T]) -> T:
        for attempt in (1, 2):
            token = self.access_token()
            try:
                result = fn()
            except WeChatClientException as exc:
                code = int(exc.errcode) if exc.errcode is not None else None
                if code in TOKEN_ERRORS and attempt == 1:
                    self.access_token(stale=token)
                    continue
                if code is None:  # an HTTP error status: the request reached WeChat's side
                    raise WeChatAnswerLostError(None, _masked(exc)) from exc
                if code in MEDIA_GONE:
                    raise WeChatMediaExpiredError(code, str(exc.errmsg)) from exc
                if code in HOST_BOUND:  # this host's address refused on any call, with a token another host fetched
                    self._maybe_paused = True
                    record_refusal(self.store, self.config, code, self.host)
                    raise WeChatConfigRefusedError(code, str(exc.errmsg)) from exc
                raise WeChatError(code, str(exc.errmsg)) from exc
            except requests.RequestException as exc:
                if _unreached(exc):
                    raise WeChatUnavailableError(None, _masked(exc)) from exc
                raise WeChatAnswerLostError(None, _masked(exc)) from exc
            self._address_accepted()
            return result
        raise WeChatError(None, "unreachable")  # pragma: no cover - the loop returns or raises

    def _address_accepted(self) -> None:
        """A call succeeded: WeChat accepts this host's address, so its own pause mark (if any) goes, though it
        fetched no token itself (config_guard). Looked for only when this process made one, or at most every
        HOST_RECHECK_S (another process of the host may have): no read per call."""
        now = time.monotonic()
        if not self._maybe_paused and now - self._looked_at < HOST_RECHECK_S:
            return
        self._maybe_paused, self._looked_at = False, now
        try:
            clear_host_refusal(self.store, self.host)
        except Exception as exc:  # the call succeeded (a send WeChat took is sent): the mark waits for the next one
            self._maybe_paused = True
            log.warning("wechat: could not clear host %s's pause mark: %s", self.host, exc)

    # -- API -------------------------------------------------------------------------------------------

    def jssdk_config(self, url: str) -> dict[str, Any]:
        """wx.config() parameters for the page at `url` (without its #fragment)."""
        ticket = self._cached(TICKET_KEY, self._fetch_ticket, None)
        page = url.split("#", 1)[0]
        nonce = secrets.token_hex(8)
        timestamp = int(time.time())
        signature = self.client.jsapi.get_jsapi_signature(nonce, ticket, timestamp, page)
        return {
            "appId": self.config.app_id,
            "timestamp": timestamp,
            "nonceStr": nonce,
            "signature": signature,
            "jsApiList": ["chooseImage", "uploadImage"],
        }

    def download_media(self, media_id: str) -> tuple[bytes, str]:
        """Bytes and content type of a temporary media file (the ID-card photo uploaded by JS-SDK)."""
        resp = self._call(lambda: self.client.media.download(media_id))
        if not isinstance(resp, requests.Response):
            raise WeChatUnavailableError(None, "media/get answered without a file")
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if not ctype.startswith("image/"):
            raise WeChatError(None, f"media/get returned {ctype or 'no content type'}")
        if len(resp.content) > MAX_MEDIA_BYTES:
            raise WeChatError(None, f"media of {len(resp.content)} bytes is over the limit")
        return resp.content, ctype

    def send_template(self, openid: str, kind: str, data: dict[str, str], url: str | None = None) -> int:
        """Send a template message; returns WeChat's msgid."""
        template_id = self.config.templates.get(kind)
        if not template_id:
            raise WeChatError(None, f"no template configured for {kind!r}")
        payload = {k: {"value": v} for k, v in data.items()}
        result = self._call(lambda: self.client.message.send_template(openid, template_id, payload, url=url))
        return int(result.get("msgid", 0))
