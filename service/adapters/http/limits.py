"""Request guards that run before any route: the rate limits (the body-size limit: body_limit.py).

Rate limits are fixed windows counted per client IP (or per API key for machine clients, per WeChat account for
a request with a valid H5 login, all accounts of one IP together at a higher ceiling), per IP (or key, or account)
for session creation (and the H5 assistance form) and uploads (an IP's accounts together at their own ceilings),
per beneficiary and requester (plus a higher cap per beneficiary) for session creation, and per IP for refused
API keys. The per-beneficiary cap is spent only by authenticated requests that pass their own limits: a
stranger who knows a number cannot lock its owner out. Counters live in this process (embedded default) or in
Redis (shared by every API process of a scale-out deployment). A Redis outage lets requests through rather than
taking the service down with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request

from service.adapters.http.body_limit import BODY_TOO_LARGE, MAX_JSON_BODY, error_json, json_error, send_json
from service.adapters.http.deps import admin_keys
from service.certification.catalog import ServiceCode
from service.certification.models import Beneficiary, CertSession
from service.features.proxy.models import ProxySession
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from service.infra.config import RATE_RULES
from service.infra.observability import metrics
from service.infra.observability.context import asked_method
from service.infra.ratelimit import (
    ClientAddress,
    Rate,
    counter_prefix,
    counter_redis_url,
    header,
    is_form_post,
    parse_rate,
)
from service.infra.security import normalise_id

if TYPE_CHECKING:
    from service.certification.context import ServiceContext

log = logging.getLogger(__name__)

# Probes and scrapes; and WeChat's server pushes, which come signed from a few Tencent addresses carrying every
# citizen's events (an IP limit there would drop a busy account's messages during the annual campaign).
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics", "/wechat/callback"})
# The static assets (the H5 pages' scripts, the console's style sheet, the API docs' files), by prefix: any path
# merely containing "/static/" was exempt, so a route whose path parameter is the word "static"
# (`/api/v1/sessions/static/video`) took uploads with no limit at all.
STATIC = ("/h5/static/", "/console/static/", "/docs/static/")
# Session creation: the beneficiary is named in the JSON body (or by the binding in the path). The H5 assistance
# form names one by name and number too (a form post), so it is held to the same limits. "继续认证" (`…/again`)
# opens a session too, for the person of the session in its path: it skipped every session limit, 600 sessions a
# minute for one person from one account (review: workload 1).
SESSION_CREATE = re.compile(
    r"^/(api/v1/sessions|h5/api/sessions|h5/apply|api/v1/proxy/bindings/([^/]+)/(sessions|consent)"
    r"|h5/api/sessions/([^/]+)/again)$"
)
# Routes that read only the ID number (extra fields are ignored there, so the limiter must ignore them too).
NUMBER_ONLY = frozenset({"/h5/api/sessions", "/h5/apply"})
UPLOAD = re.compile(
    r"^/(api/v1/sessions/[^/]+/(id-card|video)|h5/api/sessions/[^/]+/(card|card-media)|h5/api/card-read)$"
)


def _clock() -> float:
    """The wall clock windows are cut from (one name, so tests can hold it inside a window)."""
    return time.time()


class Counter(Protocol):
    async def hit(self, bucket: str, rate: Rate) -> tuple[int, float]:
        """Count one hit; returns (hits in the current window, seconds until it ends)."""
        ...


class MemoryCounter:
    """Per-process fixed windows (embedded default: one API process)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}  # bucket -> (window end, hits)
        self._hits = 0

    async def hit(self, bucket: str, rate: Rate) -> tuple[int, float]:
        now = _clock()
        end = (int((now + rate.offset_s) // rate.seconds) + 1) * rate.seconds - rate.offset_s
        current_end, count = self._windows.get(bucket, (end, 0))
        count = count + 1 if current_end == end else 1
        self._windows[bucket] = (end, count)
        self._hits += 1
        if self._hits % 10000 == 0:
            # Windows that are over hold nothing: without this, a scan from many IPs would grow memory.
            self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
        return count, end - now


class RedisCounter:
    """Fixed windows in Redis, shared by every API process; keys expire with their window."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 0.25) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned = 0.0

    def _redis(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:  # a client is bound to the loop that made it
            import redis.asyncio  # lazy: redis only when the counters are shared (celery or redis backend)

            t = self.timeout_s
            self._client = redis.asyncio.Redis.from_url(self.url, socket_timeout=t, socket_connect_timeout=t)
            self._loop = loop
        return self._client

    async def hit(self, bucket: str, rate: Rate) -> tuple[int, float]:
        now = _clock()
        window = int((now + rate.offset_s) // rate.seconds)
        key = f"{self.prefix}{bucket}:{rate.seconds}:{window}"
        try:
            pipe = self._redis().pipeline(transaction=False)
            pipe.set(key, 0, ex=rate.seconds + 1, nx=True)  # created with its expiry, so it can never stick
            pipe.incr(key)
            _, count = await pipe.execute()
        except Exception as exc:
            if now - self._warned > 60:
                log.warning("rate limits not enforced, redis unavailable: %s", exc)
                self._warned = now
            return 0, 0.0
        return int(count), (window + 1) * rate.seconds - rate.offset_s - now


def make_counter(ctx: ServiceContext) -> Counter:
    s = ctx.settings
    url = counter_redis_url(s)
    if url is None:
        return MemoryCounter()
    return RedisCounter(url, counter_prefix(s, "rl"), s.rate_limit.redis_timeout_s)


class RateLimitMiddleware:
    def __init__(self, app: Any, ctx: ServiceContext, counter: Counter | None = None) -> None:
        self.app = app
        self.ctx = ctx
        s = ctx.settings
        self.enabled = s.rate_limit.enabled
        self.counter = counter or make_counter(ctx)
        self.client_ip = ClientAddress(s.security.trusted_proxies)
        self.rates = {rule: parse_rate(getattr(s.rate_limit, rule), s.time_zone) for rule in RATE_RULES}
        # Operator keys are valid keys too (counted per key), never refused-key attempts.
        self._keys = [k.encode() for k in (*s.security.api_keys, *admin_keys(s)) if k]

    def _key_id(self, key: str | None) -> tuple[bool, str]:
        """(valid, short id); an absent key is neither valid nor a failure."""
        if not key:
            return False, ""
        valid = any(hmac.compare_digest(key.encode(), k) for k in self._keys)
        return valid, hashlib.sha256(key.encode()).hexdigest()[:12]

    def _requester(self, valid: bool, key_id: str, openid: str | None, ip: str) -> str:
        """Who asks: the API key, else the WeChat account of a valid H5 cookie (a forged one is only an IP),
        else the client IP."""
        if valid:
            return "key:" + key_id
        if openid is not None:
            return "wx:" + self.ctx.keyring.mac("h5-requester:" + openid)[:16]
        return "ip:" + ip

    @staticmethod
    def _authenticated(scope: dict[str, Any], create: re.Match[str], valid: bool, openid: str | None) -> bool:
        """Whether the request proves who sends it, as its route will require: an API key or a WeChat login
        cookie; for a binding, the operator's bearer token (checked by the route against the database; the
        binding id itself is known only to its operator)."""
        if create.group(2):
            return header(scope, b"authorization") is not None
        return valid or openid is not None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not self.enabled or path in EXEMPT or path.startswith(STATIC):
            await self.app(scope, receive, send)
            return
        ip = self.client_ip(scope)
        api_key = header(scope, b"x-api-key")
        valid, key_id = self._key_id(api_key)
        # The route reads the login again: its MAC check is kept in the request's state (identity.VERIFIED).
        openid = None if valid else identity.openid_from(self.ctx, Request(scope))
        # A WeChat login is counted per account, as a key is: many pensioners behind one address (a community
        # centre, a carrier's NAT) are not one client; all accounts of an address together meet `ip_accounts`.
        client = ip if openid is None else self._requester(False, "", openid, ip)
        buckets: list[tuple[str, str]] = []
        if api_key and not valid:
            buckets.append(("auth_failures", ip))
        buckets.append(("api_key", key_id) if valid else ("ip", client))
        if openid is not None:
            buckets.append(("ip_accounts", ip))
        method = scope.get("method", "GET")
        create = SESSION_CREATE.match(path) if method == "POST" else None
        # Per account too, but `/h5/api/sessions` tells whether a name and a number belong together and uploads
        # run OCR here: the address's accounts together meet their own ceilings, not K times one account's.
        if not valid and create is not None:
            buckets.append(("session_ip", client))
            if openid is not None:
                buckets.append(("session_ip_accounts", ip))
        if not valid and method == "POST" and UPLOAD.match(path):
            buckets.append(("upload_ip", client))
            if openid is not None:
                buckets.append(("upload_ip_accounts", ip))
        person = ""
        if create is not None:
            who, receive = await self._beneficiary(scope, receive, create, openid)
            if who is None:
                # Over the cap we read to find the beneficiary: refused, never passed on uncounted (the route
                # would read all of it and open a session the beneficiary rule never saw).
                log.warning("session creation body over %d bytes refused: %s %s", MAX_JSON_BODY, method, path)
                await send_json(send, 413, error_json(*BODY_TOO_LARGE, f"JSON body over {MAX_JSON_BODY} bytes"))
                return
            if who:
                # Per requester, and a higher cap for everyone together: one stranger trying a pensioner's number
                # fills their own bucket, not the pensioner's (issue #22).
                buckets.append(("beneficiary", f"{who}|{self._requester(valid, key_id, openid, ip)}"))
                if self._authenticated(scope, create, valid, openid):
                    person = who
        refused = await self._check(buckets)
        if refused is None and person:
            # Counted last, and only for a request its route may serve: anonymous requests (answered 401) and
            # requests refused by their own limits would otherwise let anyone who knows a number fill the
            # pensioner's cap and lock them out.
            refused = await self._check([("beneficiary_all", person)])
        if refused is None:
            await self.app(scope, receive, send)
            return
        rule, rate, retry_after = refused
        metrics.RATE_LIMITED.labels(rule).inc()
        log.warning("rate limited: rule %s (%s) for %s %s", rule, rate, asked_method(scope), path)
        body = json_error(ServiceCode.RATE_LIMITED, f"{rule}: {rate}")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(max(1, int(retry_after + 0.999))).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _check(self, buckets: list[tuple[str, str]]) -> tuple[str, Rate, float] | None:
        worst: tuple[str, Rate, float] | None = None
        for rule, who in buckets:
            rate = self.rates[rule]
            if rate is None:
                continue
            count, reset_in = await self.counter.hit(f"{rule}:{who}", rate)
            if count > rate.count and (worst is None or reset_in > worst[2]):
                worst = (rule, rate, reset_in)
        return worst

    async def _beneficiary(
        self, scope: dict[str, Any], receive: Any, create: re.Match[str], openid: str | None
    ) -> tuple[str | None, Any]:
        """Whom the new session is for (a keyed hash, never the number itself; "" when the body names nobody),
        and a receive that replays the body we read to find out. None: the body is over MAX_JSON_BODY."""
        binding = create.group(2)
        if binding:
            return self._binding_person(binding), receive
        continued = create.group(4)
        if continued:  # the body names nobody: the person of the session continued, read in a worker thread
            return await anyio.to_thread.run_sync(self._continued_person, continued, openid), receive
        length = header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > MAX_JSON_BODY:
            return None, receive  # announced too large: not read at all
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return "", _replay([message], receive)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body"))
            if size > MAX_JSON_BODY:
                return None, receive  # chunked, or more than announced
        body = b"".join(chunks)
        replay = _replay([{"type": "http.request", "body": body, "more_body": False}], receive)
        data = _fields(body, header(scope, b"content-type") or "")
        return self._person(data, str(scope.get("path", ""))), replay

    def _binding_person(self, binding: str) -> str:
        return "binding:" + self.ctx.keyring.mac("binding:" + binding)[:16]

    def _continued_person(self, session_id: str, openid: str | None) -> str:
        """The bucket of the person a continued session is for, keyed as their own opening is: the ID number's
        hash for a self session (as `/h5/api/sessions` keys the typed number), the binding for a family one. ""
        (no person counted) for a session not this account's, which the route answers as unknown: a stranger
        who learnt a session id cannot fill its owner's cap; and for a relative's own verification (no person)."""
        if openid is None:
            return ""
        try:
            return self._continued_person_in_db(session_id, openid)
        except SQLAlchemyError as exc:  # the route answers the outage itself (503), not the limiter with a 500
            log.warning("rate limits: the continued session's person not read: %s", exc)
            return ""

    def _continued_person_in_db(self, session_id: str, openid: str) -> str:
        with self.ctx.db() as db:
            link = db.get(WeChatSessionLink, session_id)
            old = db.get(CertSession, session_id)
            if link is None or old is None or link.openid != openid or old.beneficiary_id is None:
                return ""
            ps = db.get(ProxySession, session_id)
            if ps is not None:
                return self._binding_person(ps.binding_id) if ps.binding_id else ""
            b = db.get(Beneficiary, old.beneficiary_id)
            # The stored hash is the typed number's bucket under the current signing key; a record still hashed
            # under a previous key (mid-rotation) counts its continued sessions in a bucket of their own, as bounded.
            return "id:" + b.id_hash[:16] if b is not None else ""

    def _person(self, data: dict[str, Any], path: str) -> str:
        """The person the route will look up, resolved the way it does: the API route prefers a non-empty
        external_id over the number, the H5 routes read the number only (keying another field than the route
        would let one request count against a random bucket while it reaches the real person)."""
        ext = data.get("external_id")
        if path not in NUMBER_ONLY and isinstance(ext, str) and ext:
            return "ext:" + self.ctx.keyring.mac("ext:" + _encodable(ext))[:16]
        number = data.get("id_number")
        if isinstance(number, str) and number.strip():
            # Normalised as the route does: "…x" and " …X " are one person, not two buckets.
            return "id:" + self.ctx.keyring.id_hash(normalise_id(_encodable(number)))[:16]
        return ""


def _encodable(text: str) -> str:
    """JSON may carry a lone surrogate ("\\ud800"), which no UTF-8 encoder takes: the keyed hash raised, a 500
    before any limit was counted. Such text names nobody (the route refuses it); it is keyed by its escaped form."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _fields(body: bytes, content_type: str) -> dict[str, Any]:
    """The body's fields: JSON, or a plain form post (the H5 assistance form; the last of repeated fields wins,
    as in the route's form parser). Anything else names nobody."""
    if is_form_post(content_type):
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # deep nesting ("[[[…" within the cap) overflows the parser's stack
        return {}
    return data if isinstance(data, dict) else {}


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    pending = list(messages)

    async def replayed() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        message: dict[str, Any] = await receive()
        return message

    return replayed
