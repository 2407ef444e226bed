"""A total wall-clock deadline on each call to WeChat's API (a token fetch, a template send with its token refresh
and retry, a media download).

requests' timeouts are per connect and per read: a server trickling its answer a byte at a time keeps a call alive
indefinitely, so no bound on a send could be computed from them and a notice still in flight could be shown to staff
(notice_send.STALE_CLAIM). Within a ``Deadline`` every connection the call opens or reuses is registered; when the
deadline passes a watchdog shuts down those it still holds (the blocked read ends at once), no request is written
after it (a request written later could be delivered after staff were shown the notice), and each request's connect
and read timeouts are cut to the time left. Name resolution cannot be interrupted; the request after it is not written.

A connection belongs to the call that connected it or last wrote on it, until it is back in the process's shared
pool (`_owner`, set and read under `_OWNERS`): a deadline shuts only the connections it owns, never one another
thread's call took from the pool meanwhile. A deadline whose call has ended does nothing even if its watchdog fires.
The hooks are urllib3 2's (`urllib3>=2,<3`, declared): `check_hooks` refuses to build a client without them.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from requests import PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter
from urllib3 import poolmanager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("wechat_deadline", default=None)


# Guards every connection's owner: a deadline's watchdog shuts a connection only while it is still its own.
_OWNERS = threading.Lock()


class Deadline:
    """One call's deadline: `seconds` from its start."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.passed = False
        self.done = False  # the call has ended: a watchdog firing late does nothing
        self._conns: list[_Watched] = []
        self._guard = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def left(self) -> float:
        return self.at - time.monotonic()

    def watch(self, conn: _Watched) -> None:
        """Shut `conn` down when the deadline passes (at once if it has), if it is still this call's then."""
        with self._guard:
            if conn not in self._conns:
                self._conns.append(conn)
            late = self.passed
        if late:
            _shut_owned(self, [conn])

    def check(self) -> None:
        """Refuse to write a request once the deadline has passed (nothing can have reached WeChat)."""
        if self.passed or self.left() <= 0:
            raise ConnectTimeoutError(f"the deadline of {self.seconds:g} s passed before the request was written")

    def explain(self, text: str) -> str:
        return f"cut at the deadline of {self.seconds:g} s: {text}" if self.passed else text

    def end(self) -> None:
        """The call is over: nothing of it is shut any more (Timer.cancel() cannot stop a watchdog under way)."""
        with self._guard:
            self.done = True
        self._timer.cancel()

    def _expire(self) -> None:
        with self._guard:  # held while shutting: the call cannot end halfway (end() waits), nor end before it is cut
            if self.done:
                return
            self.passed = True
            _shut_owned(self, self._conns)


def _own(conn: _Watched, d: Deadline | None) -> None:
    with _OWNERS:
        conn._owner = d
    if d is not None:
        d.watch(conn)


def _shut_owned(d: Deadline, conns: list[_Watched]) -> None:
    # Lock order: a deadline's _guard, then _OWNERS (never the other way round).
    with _OWNERS:  # an owner changes only under it: a connection another call took meanwhile is left alone
        for conn in conns:
            if conn._owner is d:
                for sock in (conn._raw, conn.sock):
                    if sock is not None:
                        _shut(sock)


def _shut(sock: socket.socket) -> None:
    # Closed already, or detached when wrapped for TLS (its wrapper is watched too): nothing to do.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw socket: an SSL one's blocked read ends too


def current() -> Deadline | None:
    return _current.get()


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """The deadline of the call under way in this context, or a new one of `seconds` (nested calls, such as the token
    refresh inside a send, share the outer call's)."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    d = Deadline(seconds)
    reset = _current.set(d)
    d._timer.start()
    try:
        yield d
    finally:
        d.end()
        _current.reset(reset)


class _Watched:
    """Connection mix-in: the call that connects it or writes on it owns it (its deadline shuts it), until it is back
    in the pool."""

    sock: socket.socket | None
    _owner: Deadline | None = None
    _raw: socket.socket | None = None  # the socket as connected (TLS: before it is wrapped, and during the handshake)

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._raw = sock
        _own(self, _current.get())
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        d = _current.get()
        if d is not None:
            d.check()
        _own(self, d)  # a kept-alive connection taken from the pool is this call's now (or no call's)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _Released:
    """Pool mix-in: a connection back in the pool is no call's (the next call's request() makes it its own)."""

    def _put_conn(self, conn: Any) -> None:
        if isinstance(conn, _Watched):
            _own(conn, None)
        super()._put_conn(conn)  # type: ignore[misc]


class _HTTPPool(_Released, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_Released, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


WATCHED_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections are watched, and whose timeouts are cut to the call's time left."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:  # not SOCKS: its own classes
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager

    def send(  # type: ignore[override]
        self, request: PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any
    ) -> Response:
        d = _current.get()
        if d is not None:
            left = max(d.left(), 0.001)
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            timeout = (min(connect or left, left), min(read or left, left))
        return super().send(request, stream=stream, timeout=timeout, **kwargs)


# What the deadline overrides or sets in urllib3 2 (each must be the class's own, not left to a base class).
_HOOKS = (
    (HTTPConnection, ("_new_conn", "request")),
    (HTTPConnectionPool, ("_put_conn", "ConnectionCls")),
    (HTTPSConnectionPool, ("ConnectionCls",)),
)


def check_hooks() -> None:
    """Refuse (RuntimeError) to go on when urllib3 lacks the internals the deadline rests on: every call to WeChat
    would be silently unbounded (or fail on its first request)."""
    missing = [f"{cls.__name__}.{name}" for cls, names in _HOOKS for name in names if name not in vars(cls)]
    if not isinstance(getattr(poolmanager, "pool_classes_by_scheme", None), dict):
        missing.append("poolmanager.pool_classes_by_scheme")
    if not missing:
        manager = DeadlineAdapter().poolmanager
        for scheme, pool in WATCHED_POOLS.items():
            if not isinstance(manager.connection_from_url(f"{scheme}://deadline.check"), pool):
                missing.append(f"PoolManager building its {scheme} pools from pool_classes_by_scheme")
    if missing:
        raise RuntimeError(
            f"urllib3 {getattr(urllib3, '__version__', '?')} lacks what the WeChat sender's deadline rests on"
            f" ({', '.join(missing)}): install urllib3>=2,<3 (pyproject.toml)"
        )


def watched_session(session: Session | None = None) -> Session:
    """`session` (or a new one) whose http and https requests go through DeadlineAdapter (check_hooks first)."""
    check_hooks()
    s = session or Session()
    s.mount("http://", DeadlineAdapter())
    s.mount("https://", DeadlineAdapter())
    return s
