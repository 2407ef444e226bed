"""A bureau's model mirror behind a password (`pension-cert models fetch --from https://user:password@mirror/…`):
the credentials are sent as HTTP basic authentication (urllib took them for part of the host name: "Name or
service not known"), and no message or log line shows the password (docs/security.md, Part AI)."""

from __future__ import annotations

import base64
import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.errors import ModelDownloadError
from models.manifest import load_manifest
from models.store import ModelStore, keeps_credentials, shown_source

USER, PASSWORD = "bureau", "s3cret:pw"  # a colon in the password: only the first one splits
ELSEWHERE_SAW: list[str | None] = []  # the Authorization header each request to the other server carried


@pytest.fixture
def mirror(models_dir: Path) -> Iterator[str]:
    """An HTTP mirror of the shared model files that answers 401 without the right basic authentication."""
    wanted = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(models_dir), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            if self.path.startswith("/moved/"):  # a same-server redirect (a mirror's folder renamed, /x → /x/)
                self._redirect(301, self.path.removeprefix("/moved"))
                return
            if self.path.startswith("/away/"):  # to another server (a CDN): the password must not follow
                self._redirect(302, f"http://127.0.0.1:{elsewhere.server_address[1]}/file")
                return
            if self.headers.get("Authorization") != wanted:
                self.send_error(401, "Unauthorized")
                return
            super().do_GET()

        def _redirect(self, status: int, location: str) -> None:
            self.send_response(status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ELSEWHERE_SAW.append(self.headers.get("Authorization"))
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    elsewhere = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        for each in (server, elsewhere):
            each.shutdown()
            each.server_close()


def test_a_mirror_behind_a_password_is_fetched_with_basic_authentication(
    tmp_path: Path, mirror: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = ModelStore(tmp_path)
    caplog.set_level(logging.INFO, logger="models.store")
    path = store.fetch("yunet_2023mar", f"http://{USER}:{PASSWORD.replace(':', '%3A')}@{mirror}/")
    assert path.name == load_manifest().model("yunet_2023mar").file and store.is_available("yunet_2023mar")
    assert "s3cret" not in caplog.text and f"http://{USER}:***@{mirror}/" in caplog.text


def test_a_refused_password_is_named_without_it(tmp_path: Path, mirror: str) -> None:
    with pytest.raises(ModelDownloadError) as info:
        ModelStore(tmp_path).fetch("yunet_2023mar", f"http://{USER}:wrong-s3cret@{mirror}")
    assert "the server answered 401" in str(info.value) and "s3cret" not in str(info.value)
    assert f"http://{USER}:***@{mirror}/face_detection_yunet_2023mar.onnx" in str(info.value)


def test_shown_source_hides_a_password_or_a_lone_token() -> None:
    assert shown_source("https://u:p@h:8443/m") == "https://u:***@h:8443/m"
    assert shown_source("https://tok3n@h/m") == "https://***@h/m"
    assert shown_source("https://h/m") == "https://h/m" and shown_source("/srv/models") == "/srv/models"


def test_a_redirect_on_the_same_server_keeps_the_credentials(tmp_path: Path, mirror: str) -> None:
    """A 301 from /moved/… to /… on the mirror itself: the header was dropped on every redirect, so a right
    password ended in 401."""
    store = ModelStore(tmp_path)
    store.fetch("yunet_2023mar", f"http://{USER}:{PASSWORD.replace(':', '%3A')}@{mirror}/moved")
    assert store.is_available("yunet_2023mar")


def test_a_redirect_to_another_server_drops_the_credentials(tmp_path: Path, mirror: str) -> None:
    ELSEWHERE_SAW.clear()
    with pytest.raises(ModelDownloadError) as info:
        ModelStore(tmp_path).fetch("yunet_2023mar", f"http://{USER}:{PASSWORD.replace(':', '%3A')}@{mirror}/away")
    assert "the server answered 404" in str(info.value)
    assert ELSEWHERE_SAW == [None]  # it was asked, without the password


def test_credentials_follow_only_to_the_same_host_and_port_or_its_https() -> None:
    assert keeps_credentials("http://h:8080/a", "http://h:8080/b")
    assert keeps_credentials("http://h/a", "https://h/a") and keeps_credentials("http://h:80/a", "https://h:443/a")
    assert not keeps_credentials("https://h/a", "http://h/a")  # never down to plain HTTP
    assert not keeps_credentials("http://h:8080/a", "http://h:8081/a")
    assert not keeps_credentials("http://h/a", "http://h.evil.example/a")
    assert not keeps_credentials("http://h/a", "https://other/a")


def test_a_source_with_an_at_sign_past_its_host_is_refused_and_never_shown() -> None:
    """A password holding `/`, `?` or `#` ends the host early: the rest, password and all, was shown as the path."""
    for source in ("https://bureau:80/s3cret@mirror/m", "https://bureau:s3cret/x@mirror/m", "https://b:p?s3cret@m/x"):
        assert "s3cret" not in shown_source(source)
        with pytest.raises(ModelDownloadError) as info:
            ModelStore(Path("/nonexistent-models")).fetch("yunet_2023mar", source)
        assert "s3cret" not in str(info.value) and "percent-encode" in str(info.value)
