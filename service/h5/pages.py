"""Rendering of the H5 pages (Jinja2, autoescaped) with the headers every page gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
# WeChat's JS-SDK is loaded from res.wx.qq.com inside WeChat; media come from our own API only.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; "
    "script-src 'self' https://res.wx.qq.com; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = templates.get_template(name).render(request=request, **values)
    resp = HTMLResponse(html, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def message(request: Request, title: str, text: str, status: int = 200) -> HTMLResponse:
    return render(request, "message.html", status=status, title=title, text=text)
