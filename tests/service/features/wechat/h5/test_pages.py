"""The H5 pages' markup where the browser tests cannot easily look: WeChat's JS-SDK script and its CSP origin
only on the capture page; the card and video buttons are real buttons, the action prompt is announced."""

from __future__ import annotations

import datetime as dt
import re

from service.certification.models import Beneficiary, Channel, utcnow
from service.features.proxy.models import ProxySession
from service.features.wechat.models import WeChatSessionLink
from service.infra.observability.headers import H5_BASE_CSP, H5_CSP
from service.infra.security import ID_INPUT_MAX
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, PHONE, App

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


def _accepted(app: App, openid: str, proxy: bool) -> str:
    """An accepted certification of the app's person linked to `openid`: their own (self), or a relative's
    proxy certification through an active binding."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        b.valid_until = dt.date(2027, 12, 1)
        s = factories.session_row(b.id, state="decided", decision="accept", decided_at=utcnow())
        s.channel = Channel.PROXY if proxy else Channel.SELF
        db.add(s)
        db.flush()
        if proxy:
            op, binding = factories.relative_binding(db, b.id)
            db.add(ProxySession(session_id=s.id, kind="certification", operator_id=op.id, binding_id=binding.id))
        db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        db.commit()
        return s.id


def test_only_the_persons_own_result_page_promises_a_reminder(app: App) -> None:
    """Reminders go to the person's own account only (docs/wechat.md): a relative's proxy result promised
    "到期前我们会通过公众号提醒您", which never comes; it now asks them to note the date."""
    own = app.client.get(f"/h5/result/{_accepted(app, OPENID, proxy=False)}").text
    assert "到期前我们会通过公众号提醒您" in own
    relative = app.client.get(f"/h5/result/{_accepted(app, OPENID, proxy=True)}").text
    assert "认证通过" in relative and "2027年12月1日" in relative
    assert "提醒您" not in relative and "请记下到期日" in relative and "李秀英" in relative


def _step(html: str, step: str) -> str:
    """The markup of one step of the capture page (`<section … id="step-…">` to its end)."""
    m = re.search(rf'<section class="card step" id="{step}"[^>]*>(.*?)</section>', html, re.S)
    assert m is not None, step
    return m.group(1)


def test_a_home_visit_is_offered_before_any_failure(app: App) -> None:
    """Before: the request form (/h5/apply) was reachable only after a failed video, a timeout or the daily limit; a
    blind or bedridden person, or one whose card photo kept failing, never reached it. The start page (the menu's
    link) and the card step now carry the help block, with the bureau's phone; a relative's own real-name check
    (nobody's pension to visit) does not."""
    start = app.client.get("/h5/").text
    assert '<a class="btn apply-link" href="/h5/apply">申请人工审核或上门认证</a>' in start
    assert "上门认证" in start and f'href="tel:{PHONE}"' in start
    card = _step(app.client.get("/h5/certify?mode=self").text, "step-card")
    assert '<a class="btn apply-link" href="/h5/apply">申请人工审核或上门认证</a>' in card
    assert "apply-link" in _step(app.client.get("/h5/certify?mode=proxy").text, "step-card")
    assert "apply-link" not in _step(app.client.get("/h5/certify?mode=verify").text, "step-card")
    assert app.client.get("/h5/apply").status_code == 200  # what the link opens: the form, asking for whom
