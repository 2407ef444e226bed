"""The interactive API documentation (/docs: Swagger UI, /redoc: ReDoc), served by the service itself.

FastAPI's default pages load their scripts from a public CDN, so on a bureau network without it they stay blank.
Here every asset comes from the app: Swagger UI and ReDoc from the `fastapi-offline` package (which ships them as
files; only its static folder is used), our two start-up scripts from `docs_static/` beside this module. No inline
script, so the pages run under a tight CSP (`service/infra/observability/headers.py: DOCS_CSP`).
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

DOCS_STATIC = "/docs/static"
_OWN = Path(__file__).parent / "docs_static"
_VENDOR = Path(fastapi_offline.__file__).parent / "static"
# Name → file: a fixed table, so the route cannot be walked to any other file.
ASSETS: dict[str, Path] = {
    "swagger-ui-bundle.js": _VENDOR / "swagger-ui-bundle.js",
    "swagger-ui.css": _VENDOR / "swagger-ui.css",
    "redoc.standalone.js": _VENDOR / "redoc.standalone.js",
    "favicon.png": _VENDOR / "favicon.png",
    "swagger-init.js": _OWN / "swagger-init.js",
    "redoc-init.js": _OWN / "redoc-init.js",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{static}/favicon.png">
{head}
</head>
<body>
<div id="{root_id}" data-openapi-url="{openapi}"></div>
<script src="{static}/{bundle}"></script>
<script src="{static}/{init}"></script>
</body>
</html>
"""


def _page(request: Request, app: FastAPI, kind: str) -> HTMLResponse:
    root = str(request.scope.get("root_path", ""))
    static = html.escape(root + DOCS_STATIC)
    swagger = kind == "swagger"
    body = _PAGE.format(
        title=html.escape(app.title + (" — API (Swagger UI)" if swagger else " — API (ReDoc)")),
        static=static,
        head=f'<link rel="stylesheet" href="{static}/swagger-ui.css">' if swagger else "",
        root_id="swagger-ui" if swagger else "redoc",
        openapi=html.escape(root + (app.openapi_url or "/openapi.json")),
        bundle="swagger-ui-bundle.js" if swagger else "redoc.standalone.js",
        init="swagger-init.js" if swagger else "redoc-init.js",
    )
    return HTMLResponse(body)


def install_docs(app: FastAPI) -> None:
    """/docs, /redoc and their assets. The app must be created with docs_url=None and redoc_url=None."""

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return _page(request, app, "swagger")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return _page(request, app, "redoc")

    @app.get(DOCS_STATIC + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        path = ASSETS.get(name)
        if path is None:
            raise HTTPException(status_code=404)
        # Versioned by the installed package; a day of caching spares the 1.5 MB bundle on every visit.
        return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=86400"})
