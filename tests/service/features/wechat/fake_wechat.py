"""A local fake of the WeChat API servers (a real HTTP server on loopback) for the channel's tests."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

# WeChat's rules for a template key's value, by the key's type prefix (the subscription-message table its template
# message rules point to: thing1, time2, phrase3, …); a historic template's keywordN takes 20 characters.
_ZH = "\u4e00-\u9fff"
_DATE = r"(\d{4}年\d{1,2}月\d{1,2}日|\d{4}-\d{2}-\d{2})"
_TIME = r"([01]?\d|2[0-3]):[0-5]\d"
VALUE_RULES: dict[str, re.Pattern[str]] = {
    "thing": re.compile(r"^.{1,20}$"),
    "keyword": re.compile(r"^.{1,20}$"),
    "phrase": re.compile(f"^[{_ZH}]{{1,5}}$"),
    "name": re.compile(f"^([{_ZH}·]{{1,10}}|[A-Za-z ·.]{{1,20}})$"),
    "character_string": re.compile(r"^[\x21-\x7e]{1,32}$"),
    "number": re.compile(r"^\d{1,32}$"),
    "letter": re.compile(r"^[A-Za-z]{1,32}$"),
    "symbol": re.compile(r"^[^\w\s]{1,5}$"),
    "time": re.compile(f"^({_DATE} )?{_TIME}$"),
    "date": re.compile(f"^{_DATE}( {_TIME})?$"),
    "amount": re.compile(r"^[¥$€£]\d{1,10}(\.\d{1,2})?$"),
    "phone_number": re.compile(r"^[\d+\-() ]{1,17}$"),
    "car_number": re.compile(f"^[{_ZH}A-Z0-9]{{1,8}}$"),
}
DROPPED = ("first", "remark")  # since 2023 filtered out silently (errcode 0), never shown


def invalid_key(data: dict[str, Any], keys: set[str]) -> str | None:
    """The first key WeChat refuses (47003) in a send to a template whose keys are `keys`: one the template does not
    have, or a value breaking its type's rule; None when every shown key is valid."""
    for key, item in data.items():
        if key in DROPPED:
            continue
        m = re.match(r"^([a-z_]+?)\d+$", key)
        rule = VALUE_RULES.get(m.group(1)) if m else None
        if key not in keys or rule is None or not rule.match(str(item.get("value", ""))):
            return key
    return None


@dataclass
class FakeWeChatState:
    app_id: str = "wx-test-app"
    app_secret: str = "test-secret"
    token_fetches: int = 0
    token_calls: int = 0  # every token request, answered or refused
    ticket_fetches: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    media: dict[str, bytes] = field(default_factory=dict)
    oauth_codes: dict[str, str] = field(default_factory=dict)  # code → openid (single use)
    used_codes: set[str] = field(default_factory=set)  # codes exchanged already
    sent_templates: list[dict[str, Any]] = field(default_factory=list)  # each template send as posted
    # What the person sees of each send WeChat took: the same, `first` and `remark` dropped.
    delivered: list[dict[str, Any]] = field(default_factory=list)
    # Template id → the keys of that template: sends to it are checked as WeChat checks them (47003); a template
    # not listed takes anything.
    template_keys: dict[str, set[str]] = field(default_factory=dict)
    fail_sends: int = 0  # answer this many template sends with a system error (-1 "system busy")
    template_calls: int = 0  # every template send asked for, answered or refused
    # Template sends WeChat takes before answering quota_errcode (45009: the day's quota spent; 45011: too many
    # a minute); None: no quota.
    quota_left: int | None = None
    quota_errcode: int = 45009
    unsubscribed: set[str] = field(default_factory=set)  # openids that unfollowed the account (43004)
    other_account: bool = False  # the service configured with another account's AppID: every openid unknown (40003)
    unknown_openids: set[str] = field(default_factory=set)  # openids WeChat does not know (40003)
    # Template sends delivered, then answered this many seconds late (past the client's timeout: a read timeout after
    # WeChat took the message); 0: at once.
    answer_late_s: float = 0.0
    expire_tokens_after: int | None = None  # every token expires after this many sent messages (then 42001)
    browser_openid: str = "openid-browser"  # whom the OAuth authorize page "logs in" (snsapi_base: silently)
    # Every token request answered with this errcode whatever the AppID and AppSecret (40164: this server's IP off the
    # whitelist; 40243: the AppSecret frozen; 89503: the IP awaiting the administrator's confirmation); None: checked.
    token_refusal: int | None = None
    # Every API call (token, ticket, media, template) answered with this errcode: the caller's IP off the whitelist
    # (40164) or awaiting confirmation (89503). Set around one "host"'s calls to tell hosts apart on loopback.
    ip_refusal: int | None = None
    stale_token_errcode: int = 42001  # what a call with a token no longer valid is answered (40001 "not latest")
    # Paths ("/cgi-bin/token", "/cgi-bin/message/template/send") whose answer is trickled: padded with `trickle_pad`
    # spaces and written a byte every `trickle_gap_s` (each gap far under the client's read timeout, so no timeout of
    # requests ever fires); the request itself is served as usual first (a send is delivered).
    trickle: set[str] = field(default_factory=set)
    trickle_gap_s: float = 0.05
    trickle_pad: int = 400
    # Keep connections open between requests (HTTP/1.1, as WeChat's servers do): the client's pool then reuses them.
    keep_alive: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expire_all_tokens(self) -> None:
        with self.lock:
            self.valid_tokens.clear()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    @property
    def protocol_version(self) -> str:  # type: ignore[override]  # read per request: HTTP/1.0 closes after the answer
        return "HTTP/1.1" if self.server.state.keep_alive else "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: dict[str, Any]) -> None:
        st = self.server.state
        if urlparse(self.path).path in st.trickle:
            return self._trickle(json.dumps(obj).encode() + b" " * st.trickle_pad)
        self._send(200, json.dumps(obj).encode(), "application/json; encoding=utf-8")

    def _trickle(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json; encoding=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(self.server.state.trickle_gap_s)
        except OSError:  # the client gave up and closed the connection
            return

    def _token_ok(self, q: dict[str, str]) -> bool:
        with self.server.state.lock:
            ok = q.get("access_token") in self.server.state.valid_tokens
        if not ok:
            errcode = self.server.state.stale_token_errcode
            self._json({"errcode": errcode, "errmsg": "access_token is invalid or not latest"})
        return ok

    def _ip_refused(self) -> bool:
        st, path = self.server.state, urlparse(self.path).path
        if st.ip_refusal is None or not path.startswith("/cgi-bin/"):
            return False
        with st.lock:
            st.token_calls += path == "/cgi-bin/token"
            st.template_calls += path == "/cgi-bin/message/template/send"
        self._json({"errcode": st.ip_refusal, "errmsg": "invalid ip, not in whitelist"})
        return True

    def do_GET(self) -> None:
        st = self.server.state
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self._ip_refused():
            return None
        if url.path == "/cgi-bin/token":
            with st.lock:
                st.token_calls += 1
            # As WeChat answers getAccessToken: 40013 for an AppID it does not know, 40001 for an AppSecret that is
            # wrong or not this account's (reset in the admin console); 40125 only for a malformed secret.
            if st.token_refusal is not None:
                return self._json({"errcode": st.token_refusal, "errmsg": "refused"})
            if q.get("appid") != st.app_id:
                return self._json({"errcode": 40013, "errmsg": "invalid appid"})
            if q.get("secret") != st.app_secret and not q.get("secret", "").replace("-", "").isalnum():
                return self._json({"errcode": 40125, "errmsg": "invalid appsecret"})  # e.g. a space pasted in
            if q.get("secret") != st.app_secret:
                return self._json({"errcode": 40001, "errmsg": "AppSecret error or AppSecret not belong to this app"})
            with st.lock:
                st.token_fetches += 1
                token = f"TOKEN-{st.token_fetches}"
                st.valid_tokens = {token}  # a new token invalidates the previous one, as WeChat does
            return self._json({"access_token": token, "expires_in": 7200})
        if url.path == "/cgi-bin/ticket/getticket":
            if not self._token_ok(q):
                return None
            with st.lock:
                st.ticket_fetches += 1
                n = st.ticket_fetches
            return self._json({"errcode": 0, "errmsg": "ok", "ticket": f"TICKET-{n}", "expires_in": 7200})
        if url.path == "/cgi-bin/media/get":
            if not self._token_ok(q):
                return None
            data = st.media.get(q.get("media_id", ""))
            if data is None:
                return self._json({"errcode": 40007, "errmsg": "invalid media_id"})
            return self._send(200, data, "image/jpeg")
        if url.path == "/connect/oauth2/authorize":
            # snsapi_base needs no confirmation: WeChat redirects back at once with a fresh code.
            with st.lock:
                code = "code-" + secrets.token_hex(6)
                st.oauth_codes[code] = st.browser_openid
            sep = "&" if "?" in q["redirect_uri"] else "?"
            target = f"{q['redirect_uri']}{sep}code={code}&state={q.get('state', '')}"
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if url.path == "/sns/oauth2/access_token":
            with st.lock:
                openid = st.oauth_codes.pop(q.get("code", ""), None)
                used = q.get("code", "") in st.used_codes
                if openid is not None:
                    st.used_codes.add(q.get("code", ""))
            if used:  # as WeChat answers a code exchanged already
                return self._json({"errcode": 40163, "errmsg": "code been used"})
            if q.get("appid") != st.app_id or q.get("secret") != st.app_secret or openid is None:
                return self._json({"errcode": 40029, "errmsg": "invalid code"})
            return self._json(
                {
                    "access_token": "web-token",
                    "expires_in": 7200,
                    "refresh_token": "refresh-token",
                    "openid": openid,
                    "scope": "snsapi_base",
                }
            )
        return self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        st = self.server.state
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        if self._ip_refused():
            return None
        if url.path == "/cgi-bin/message/template/send":
            if not self._token_ok(q):
                return None
            with st.lock:
                st.template_calls += 1
                if st.quota_left is not None and st.quota_left <= 0:
                    return self._json({"errcode": st.quota_errcode, "errmsg": "api quota reach limit"})
                if st.other_account or json.loads(body).get("touser") in st.unknown_openids:
                    return self._json({"errcode": 40003, "errmsg": "invalid openid"})
                if json.loads(body).get("touser") in st.unsubscribed:
                    return self._json({"errcode": 43004, "errmsg": "require subscribe"})
                sent = json.loads(body)
                keys = st.template_keys.get(sent.get("template_id", ""))
                bad = invalid_key(sent.get("data", {}), keys) if keys is not None else None
                if bad is not None:
                    return self._json({"errcode": 47003, "errmsg": f"argument invalid! data.{bad}.value invalid"})
                if st.quota_left is not None:
                    st.quota_left -= 1
                if st.fail_sends > 0:
                    st.fail_sends -= 1
                    return self._json({"errcode": -1, "errmsg": "system error"})
                st.sent_templates.append(sent)
                shown = {k: v for k, v in sent.get("data", {}).items() if k not in DROPPED}
                st.delivered.append({**sent, "data": shown})
                msgid = len(st.sent_templates)
                if st.expire_tokens_after is not None and msgid == st.expire_tokens_after:
                    st.valid_tokens.clear()  # as when another system fetched a token with the same AppSecret
                late = st.answer_late_s
            if late:
                time.sleep(late)
                try:
                    return self._json({"errcode": 0, "errmsg": "ok", "msgid": msgid})
                except OSError:  # the client gave up waiting and closed the connection
                    return None
            return self._json({"errcode": 0, "errmsg": "ok", "msgid": msgid})
        return self._send(404, b"not found", "text/plain")


class _Server(ThreadingHTTPServer):
    def __init__(self, state: FakeWeChatState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeWeChat:
    """Start with `with FakeWeChat() as wx:`; `wx.base_url` serves both the API and the OAuth pages."""

    def __init__(self) -> None:
        self.state = FakeWeChatState()
        self._server = _Server(self.state)
        # Polled for shutdown every 20 ms (the default 0.5 s was half a second of every test's teardown).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def __enter__(self) -> FakeWeChat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
