"""A send that never reached WeChat, with the exceptions requests really raises: a TLS handshake refused (a broken
CA bundle, an intercepting proxy) or a proxy out of service let no HTTP byte through, so the notice is put back
pending; they used to count as "WeChat's answer lost", each run left one more notice in `sending` for good."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.features.wechat.errors import WeChatAnswerLostError, WeChatUnavailableError
from service.features.wechat.models import NoticeStatus
from service.features.wechat.notify import run_notifications
from service.features.wechat.schedule import tick
from service.infra import clock
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import channel
from tests.service.features.wechat.test_notify_hours import china
from tests.service.features.wechat.test_peak_quota import _closed_port, _due, _notices


def _self_signed(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "c.pem", directory / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def _serve(handle: object) -> Iterator[tuple[int, list[object]]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    got: list[object] = []

    def loop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                got.append(handle(conn))  # type: ignore[operator]
            except Exception as exc:
                got.append(type(exc).__name__)

    threading.Thread(target=loop, daemon=True).start()
    yield listener.getsockname()[1], got
    listener.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, list[object]]]:
    """An HTTPS server whose certificate the client does not trust: the handshake fails, no request is written."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*_self_signed(tmp_path))

    def handle(conn: socket.socket) -> object:
        with tls.wrap_socket(conn, server_side=True) as wrapped:
            return wrapped.recv(100)

    yield from _serve(handle)


@pytest.fixture
def hang_up() -> Iterator[tuple[int, list[object]]]:
    """A server that reads the request, then hangs up without answering."""

    def handle(conn: socket.socket) -> object:
        with conn:
            return conn.recv(4096)

    yield from _serve(handle)


def _raised(fn: object) -> requests.RequestException:
    try:
        fn()  # type: ignore[operator]
    except requests.RequestException as exc:
        return exc
    raise AssertionError("no exception")  # pragma: no cover


def test_a_refused_tls_handshake_leaves_the_notices_pending(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, tls_server: tuple[int, list[object]]
) -> None:
    _due(db, ctx, 3)
    api = channel(ctx).api
    api.access_token()
    port, got = tls_server
    api.client.API_BASE_URL = f"https://localhost:{port}/cgi-bin/"
    for minute in range(3):
        run = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, minute))
        assert (run.sent, run.failed, run.unsure) == (0, 0, 0)
    assert got and all(isinstance(g, str) for g in got)  # no HTTP byte reached the server
    assert [(n.status, n.attempts) for n in _notices(db)] == [(NoticeStatus.PENDING, 0)] * 3
    assert fake_wx.state.template_calls == 0


@pytest.mark.parametrize("where", ["closed", "tls", "proxy", "hang_up"])
def test_only_a_send_that_made_no_connection_counts_as_not_sent(
    ctx: ServiceContext,
    fake_wx: FakeWeChat,
    monkeypatch: pytest.MonkeyPatch,
    tls_server: tuple[int, list[object]],
    hang_up: tuple[int, list[object]],
    where: str,
) -> None:
    """The exceptions requests raises against a closed port, an untrusted certificate, a proxy out of service, a
    server that hangs up after reading the request (only the last may come after WeChat acted)."""
    urls = {
        "closed": (_closed_port(), None),
        "tls": (f"https://localhost:{tls_server[0]}/", None),
        "proxy": ("http://wechat.invalid/", {"http": _closed_port(), "https": _closed_port()}),
        "hang_up": (f"http://127.0.0.1:{hang_up[0]}/", None),
    }
    url, proxies = urls[where]
    failure = _raised(lambda: requests.post(url, data=b"{}", proxies=proxies, timeout=5))
    api = channel(ctx).api
    api.access_token()

    def fail(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(api.client._http, "request", fail)
    with pytest.raises(WeChatUnavailableError) as caught:
        api.send_template("o-1", "due_soon", {"k": "v"})
    assert isinstance(caught.value, WeChatAnswerLostError) is (where == "hang_up")


def test_a_read_timeout_may_have_been_delivered(
    ctx: ServiceContext, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch, hang_up: tuple[int, list[object]]
) -> None:
    api = channel(ctx).api
    api.access_token()
    listener = socket.socket()  # accepts (the kernel's backlog), never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    with listener:
        port = listener.getsockname()[1]
        failure = _raised(lambda: requests.post(f"http://127.0.0.1:{port}/", data=b"{}", timeout=0.3))
    assert isinstance(failure, requests.ReadTimeout)

    def fail(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(api.client._http, "request", fail)
    with pytest.raises(WeChatAnswerLostError):
        api.send_template("o-1", "due_soon", {"k": "v"})


def test_a_lost_answer_is_counted_and_named_once(
    ctx: ServiceContext,
    db: Session,
    fake_wx: FakeWeChat,
    hang_up: tuple[int, list[object]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _due(db, ctx, 2)
    api = channel(ctx).api
    api.access_token()
    api.client.API_BASE_URL = f"http://127.0.0.1:{hang_up[0]}/cgi-bin/"
    caplog.set_level(logging.WARNING, logger="service.features.wechat")
    run = run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 0))
    assert run.unsure == 1  # the run stops at the first lost answer
    assert [n.status for n in _notices(db)].count(NoticeStatus.SENDING) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "1 " in errors[0] and "sending" in errors[0]


def test_the_access_token_is_kept_out_of_the_log_and_the_notice(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    _due(db, ctx, 1)
    api = channel(ctx).api
    token = api.access_token()
    api.client.API_BASE_URL = _closed_port() + "cgi-bin/"
    caplog.set_level(logging.WARNING, logger="service.features.wechat")
    run_notifications(ctx, api, dt.date(2026, 11, 22), china(22, 9, 0))
    (notice,) = _notices(db)
    assert "access_token=***" in (notice.last_error or "")
    for text in [notice.last_error or "", *(r.getMessage() for r in caplog.records)]:
        assert token not in text


def test_the_schedule_reports_the_unsure_notices(
    ctx: ServiceContext,
    db: Session,
    fake_wx: FakeWeChat,
    hang_up: tuple[int, list[object]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _due(db, ctx, 1)
    ch = channel(ctx)
    ch.api.access_token()
    ch.api.client.API_BASE_URL = f"http://127.0.0.1:{hang_up[0]}/cgi-bin/"
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 9, 0))
    assert tick(ctx, ch) == {"queued": 1, "sent": 0, "failed": 0, "unsure": 1}
