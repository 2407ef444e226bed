"""/docs and /redoc are served by the app alone (issue 24 item 4): every script, style sheet and icon the pages
reference comes from the app itself, under a CSP that forbids inline scripts and every other origin. A bureau
network without the public CDN gets working pages; the browser test proves they render with the network cut."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.infra.observability.headers import DOCS_CSP
from tests.service.adapters.http.ops import ops_app


class Refs(HTMLParser):
    """Every URL a page makes the browser load (scripts, style sheets, icons, images), and inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.urls.append(str(a["src"]))
            else:
                self._in_script_without_src = True
        elif tag == "link" and a.get("href"):
            self.urls.append(str(a["href"]))
        elif tag in ("img", "iframe") and a.get("src"):
            self.urls.append(str(a["src"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1


@pytest.mark.parametrize(("page", "bundle"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_docs_page_and_every_asset_come_from_the_app(tmp_path: Path, page: str, bundle: str) -> None:
    with TestClient(ops_app(tmp_path)) as c:
        r = c.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"] == DOCS_CSP
        refs = Refs()
        refs.feed(r.text)
        assert refs.inline_scripts == 0  # the CSP would block them: the page must not need any
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", r.text), "a page asset points at another origin"
        assert any(u.endswith("/" + bundle) for u in refs.urls)
        for url in refs.urls:
            asset = c.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 0, url
            assert asset.headers["content-security-policy"] == DOCS_CSP
            if url.endswith(".css"):  # what a style sheet loads in turn: data: URIs only
                for ref in re.findall(r"url\(\s*['\"]?([^'\")]*)", asset.text):
                    assert ref.startswith("data:"), f"{url} loads {ref}"
        spec_url = re.search(r'data-openapi-url="([^"]+)"', r.text)
        assert spec_url is not None
        spec = c.get(spec_url.group(1)).json()
        assert "/api/v1/sessions" in spec["paths"]


def test_bundles_are_the_real_libraries(tmp_path: Path) -> None:
    """Not placeholders: the files are the Swagger UI and ReDoc builds, of the size such builds have."""
    with TestClient(ops_app(tmp_path)) as c:
        swagger = c.get("/docs/static/swagger-ui-bundle.js")
        redoc = c.get("/docs/static/redoc.standalone.js")
        css = c.get("/docs/static/swagger-ui.css")
    assert swagger.headers["content-type"].startswith("text/javascript") and len(swagger.content) > 500_000
    assert b"SwaggerUIBundle" in swagger.content and b"presets" in swagger.content
    assert len(redoc.content) > 500_000 and b"Redoc" in redoc.content
    assert css.headers["content-type"].startswith("text/css") and b".swagger-ui" in css.content


def test_unknown_asset_is_a_404_in_the_error_shape(tmp_path: Path) -> None:
    with TestClient(ops_app(tmp_path)) as c:
        for name in ("nope.js", "..%2Fdocs.py", "%2E%2E%2F%2E%2E%2Fconfig.py"):
            r = c.get("/docs/static/" + name)
            assert r.status_code == 404, name
            assert "error" in r.json()


def test_docs_csp_is_tight() -> None:
    directives = dict(d.strip().split(" ", 1) for d in DOCS_CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval, no other origin
    assert directives["connect-src"] == "'self'"  # "Try it out" reaches this service only
    assert directives["frame-ancestors"] == "'none'"
    assert "http" not in DOCS_CSP and "*" not in DOCS_CSP
