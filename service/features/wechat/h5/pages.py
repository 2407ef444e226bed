"""Rendering of the H5 pages (Jinja2, autoescaped) with the headers every page gets."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from service.features.wechat.h5 import voice
from service.features.wechat.messages import zh_date
from service.infra.observability.headers import H5_BASE_CSP, H5_CSP
from service.infra.security import ID_INPUT_MAX

HERE = Path(__file__).parent
# One policy table for the whole app (service/infra/observability/headers.py); the other security headers are added
# to every response by its middleware. Only a page that loads WeChat's JS-SDK (jssdk=True) allows its origin.
CSP = H5_BASE_CSP
JSSDK_CSP = H5_CSP

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
templates.filters["zh_date"] = zh_date  # dates as the messages write them (2027年3月1日), not ISO
templates.globals["ID_INPUT_MAX"] = ID_INPUT_MAX  # an ID number field's maxlength: the server's one bound


@functools.cache
def static_url(name: str) -> str:
    """A page's own static file, named with its content's digest: WeChat's browser keeps scripts longer than their
    headers ask, and a page (never cached: no-store) of a new release with a cached script of the old one breaks
    (the script is in parts since Part AW's split, each part expecting the others' release)."""
    return f"/h5/static/{name}?v={static_digest(name)}"


def static_digest(name: str) -> str:
    """The digest of a static file as this process serves it now: its address's `v`, and what the static route
    compares a requested `v` with before letting it be kept for good."""
    path = HERE / "static" / name
    stat = path.stat()
    return _content_digest(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _content_digest(path: Path, mtime_ns: int, size: int) -> str:
    # Keyed by the file's stat too: every page render and script request asks, and a file replaced in place is
    # read and hashed again, not answered from an earlier digest.
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


templates.globals["static_url"] = static_url


def render(request: Request, name: str, status: int = 200, jssdk: bool = False, **values: Any) -> HTMLResponse:
    # Every page knows the spoken prompts (body data-voice): h5.js speaks them where the page loads it.
    values.setdefault("voice", voice.PAGE_PROMPTS)
    values.setdefault(
        "elder_mode", False
    )  # body data-elder: the roster's default of elder mode (service/features/wechat/h5/elder.py)
    html = templates.get_template(name).render(request=request, **values)
    resp = HTMLResponse(html, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = JSSDK_CSP if jssdk else CSP
    return resp


def message(request: Request, title: str, text: str, status: int = 200) -> HTMLResponse:
    return render(request, "message.html", status=status, title=title, text=text)
