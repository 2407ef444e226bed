"""Where the browser goes back to after WeChat OAuth: one of our own H5 pages, never anywhere else.

The target travels inside the OAuth `state` (see service.features.wechat.oauth), which WeChat limits to 128 characters
of [a-zA-Z0-9]; it is checked here twice, when the login starts and when it comes back, so neither a crafted
link nor a tampered state can send the browser to another site (absolute URLs, `//host`, backslashes,
other prefixes and the JSON API all fall back to the start page).
"""

from __future__ import annotations

import re

HOME = "/h5/"
# The pages a person can open from a message or a menu; the JSON API and the OAuth callback are not pages.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PAGES = re.compile(r"/h5/(?:|family|certify|apply|me|(?:result|apply)/" + _UUID + ")")
_QUERIES = {"/h5/certify": re.compile(r"(?:mode=(?:self|proxy|consent|verify))?")}
MAX_LEN = 64  # hex-encoded in the state next to a 32-character MAC: 2 × 47 + 32 ≤ 128 for the longest page


def safe_target(raw: str | None) -> str:
    """`raw` when it is one of our H5 pages (path and an allowed query), else the start page."""
    if not raw or len(raw) > MAX_LEN or not raw.isascii() or not raw.isprintable():
        return HOME
    path, _, query = raw.partition("?")
    if not _PAGES.fullmatch(path):
        return HOME
    if query and not (path in _QUERIES and _QUERIES[path].fullmatch(query)):
        return HOME
    return raw
