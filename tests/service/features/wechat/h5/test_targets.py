"""The OAuth return target: only our own H5 pages, everything else (other sites, the JSON API) is the start page."""

from __future__ import annotations

import pytest

from service.features.wechat.h5.targets import HOME, safe_target

RESULT = "/h5/result/0b7c1c9e-52f4-4d2e-9f0a-3c1d2e4f5a6b"
APPLY = "/h5/apply/0b7c1c9e-52f4-4d2e-9f0a-3c1d2e4f5a6b"  # the longest page: still fits WeChat's 128-char state


@pytest.mark.parametrize(
    "target", ["/h5/", "/h5/family", "/h5/certify", "/h5/certify?mode=proxy", RESULT, "/h5/apply", APPLY]
)
def test_our_pages_are_kept(target: str) -> None:
    assert safe_target(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "https://evil.test/h5/",
        "http:/h5/",
        "//evil.test/h5/",
        "///evil.test",
        "/\\evil.test",
        "/h5/\\evil.test",
        "\\\\evil.test\\h5",
        "/h5/../evil",
        "/h5//evil.test",
        "/h5",
        "/h5/api/sessions",
        "/h5/oauth/callback",
        "/h5/static/h5.js",
        "/console/",
        "/api/v1/sessions",
        "/h5/family?next=//evil.test",
        "/h5/certify?mode=self&x=1",
        "/h5/result/../../x",
        RESULT.upper(),
        RESULT + "/",
        " /h5/",
        "/h5/\n",
        "/h5/family\x00",
        "/h5/famíly",
        "/h5/" + "a" * 80,
        "javascript:alert(1)",
        "/h5/apply?session=x",
        APPLY + "/x",
        "/h5/apply/",
    ],
)
def test_anything_else_is_the_start_page(target: str | None) -> None:
    assert safe_target(target) == HOME
