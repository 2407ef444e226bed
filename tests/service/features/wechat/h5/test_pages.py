"""The H5 pages' markup where the browser tests cannot easily look: WeChat's JS-SDK script and its CSP origin
only on the capture page; the card and video buttons are real buttons, the action prompt is announced."""

from __future__ import annotations

from service.infra.observability.headers import H5_BASE_CSP, H5_CSP
from service.infra.security import ID_INPUT_MAX
from tests.service.features.wechat.h5.conftest import App

JWEIXIN = '<script src="https://res.wx.qq.com/open/js/jweixin-1.6.0.js"></script>'


def test_only_the_capture_page_loads_the_jssdk_and_allows_its_origin(app: App) -> None:
    certify = app.client.get("/h5/certify?mode=self")
    assert certify.status_code == 200 and JWEIXIN in certify.text
    assert certify.headers["content-security-policy"] == H5_CSP and "https://res.wx.qq.com" in H5_CSP
    for path in ("/h5/", "/h5/family"):
        page = app.client.get(path)
        assert page.status_code == 200 and "res.wx.qq.com" not in page.text
        assert page.headers["content-security-policy"] == H5_BASE_CSP and "res.wx.qq.com" not in H5_BASE_CSP


def test_capture_controls_are_buttons_and_the_prompt_is_announced(app: App) -> None:
    html = app.client.get("/h5/certify?mode=self").text
    assert '<button class="btn primary" id="card-button" type="button">' in html
    assert '<button class="btn" id="video-fallback" type="button" hidden>' in html
    assert '<label class="btn' not in html  # no label posing as a button around a hidden input
    assert 'id="action-text" aria-live="assertive"' in html
    assert f'id="id-number" maxlength="{ID_INPUT_MAX}" inputmode="numeric"' in html
