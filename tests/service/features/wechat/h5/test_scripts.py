"""The H5 pages' own script, in parts (service/features/wechat/h5/static/): what every page shares (h5-page.js),
the family page (h5-family.js), the capture page's video step (h5-capture.js) and its upload and polling
(h5-upload.js), and h5.js, which starts the page. Before, one file of ~750 lines held all of it. Each page
loads the parts it needs, h5-page.js first and h5.js last, each served by the static route, each valid JavaScript,
none grown past a few hundred lines."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

import pytest

from service.features.wechat.h5.pages import HERE
from service.features.wechat.h5.routes import STATIC_FILES
from tests.service.features.wechat.h5.conftest import App
from tests.service.features.wechat.h5.test_recovery import finished

STATIC = HERE / "static"
OWN_SCRIPT = re.compile(r'<script src="/h5/static/([^"?]+)\?v=([0-9a-f]{12})"></script>')
MAX_LINES = 300  # the project's guide: modules of a few hundred lines
# The parts each page needs besides h5-page.js and h5.js.
PARTS = {
    "/h5/": [],
    "/h5/family": ["h5-family.js"],
    "/h5/certify?mode=self": ["guidance.js", "h5-light.js", "h5-capture.js", "h5-upload.js"],
}


def _scripts(html: str) -> list[str]:
    return [name for name, _ in OWN_SCRIPT.findall(html)]


def test_every_page_loads_its_parts_in_order_and_each_is_served(app: App) -> None:
    pages = {path: app.client.get(path) for path in PARTS}
    pages["result"] = app.client.get(f"/h5/result/{finished(app)}")
    for path, page in pages.items():
        assert page.status_code == 200, path
        names = _scripts(page.text)
        own = [n for n in names if n.startswith("h5")]
        assert own[0] == "h5-page.js" and own[-1] == "h5.js", (path, names)
        assert set(PARTS.get(path, [])) <= set(names), (path, names)
        for name in names:
            js = app.client.get(f"/h5/static/{name}")
            assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript"), name
            assert js.content == (STATIC / name).read_bytes(), name


def test_each_page_names_its_files_by_their_content(app: App) -> None:
    """A new release's page never runs with a script WeChat's browser kept from the last: each file's address
    carries its content's digest, so a changed file is a new address, and the same file the same one."""
    html = app.client.get("/h5/certify?mode=self").text
    found = dict(OWN_SCRIPT.findall(html))
    assert set(found) >= {"h5-page.js", "h5-capture.js", "h5-upload.js", "h5.js"}, found
    for name, version in found.items():
        assert version == hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12], name
        assert app.client.get(f"/h5/static/{name}?v={version}").content == (STATIC / name).read_bytes()
    assert len(set(found.values())) == len(found)  # each part its own digest
    css = re.search(r'href="/h5/static/h5.css\?v=([0-9a-f]{12})"', html)
    assert css is not None and css.group(1) == hashlib.sha256((STATIC / "h5.css").read_bytes()).hexdigest()[:12]


def test_a_file_is_kept_for_good_only_under_its_own_digest(app: App) -> None:
    """During a rolling restart a process of the old release may answer a new page's `h5.js?v=NEW`: it must not let
    the browser keep its old file under the new address. The file's own digest: kept for good (immutable); another
    digest or none: the file all the same (a page of the other release still gets a script), never kept."""
    body = (STATIC / "h5.js").read_bytes()
    own = hashlib.sha256(body).hexdigest()[:12]
    right = app.client.get(f"/h5/static/h5.js?v={own}")
    assert right.status_code == 200 and right.content == body
    assert right.headers["cache-control"] == "public, max-age=31536000, immutable"
    other = "0" * 12 if own != "0" * 12 else "1" * 12
    for url in (f"/h5/static/h5.js?v={other}", "/h5/static/h5.js"):
        resp = app.client.get(url)
        assert resp.status_code == 200 and resp.content == body, url
        assert resp.headers["cache-control"] == "no-store", url


def test_every_script_file_is_served_and_nothing_else() -> None:
    on_disk = {f.name for f in STATIC.iterdir() if f.is_file()}
    assert on_disk == set(STATIC_FILES), on_disk ^ set(STATIC_FILES)


def test_each_part_is_valid_javascript_of_a_few_hundred_lines() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the scripts cannot be checked (Debian: apt-get install nodejs)")
    for f in sorted(STATIC.glob("h5*.js")):
        lines = f.read_text(encoding="utf-8").count("\n")
        assert lines <= MAX_LINES, (f.name, lines)
        done = subprocess.run([node, "--check", str(f)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (f.name, done.stderr)
