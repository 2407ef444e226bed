"""Two taps on "是我本人,下一步" (an elder taps again while "正在核对…" shows) open one session, not two, in Debian's
Chromium against the real app (uvicorn, SQLite, the fake WeChat server). With two, the card photo went to the
first session and the page carried on with the second: the video was uploaded to a session without its card,
which then waited for a card that never came until it expired, so a good recording ended as “认证已超时”."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import sync_playwright
from sqlalchemy import select

import service.schema
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import CertSession
from service.features.install import install_features
from service.features.wechat.h5 import identity
from tests.browser import CHROMIUM, CHROMIUM_ARGS, serve_in_thread
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.h5.browser_flow import wait_until
from tests.service.servers import free_port

pytestmark = pytest.mark.slow
OPENID = "openid-double-tap"
NAME = "孙玉珍"
NUMBER = factories.id_number(seq=517)


@dataclass
class Site:
    base: str
    ctx: ServiceContext
    beneficiary_id: int


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with FakeWeChat() as fake:
        # No card reader in the API (h5_card_check off): the page asks for the name and number after the photo.
        settings = wechat_settings(fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'h5.db'}")
        ctx = install_features(ServiceContext(settings, schema=service.schema.metadata))
        with ctx.db() as db:
            bid = factories.beneficiary(db, ctx.keyring, name=NAME, id_number=NUMBER).id
        port = free_port()
        with serve_in_thread(create_app(ctx=ctx), port, log_level="warning"):
            yield Site(f"http://127.0.0.1:{port}", ctx, bid)


def card_photo(tmp: Path) -> str:
    path = tmp / "card.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (856, 540), (200, 190, 170)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())
    return str(path)


def test_two_taps_on_confirm_open_one_session_and_the_card_is_its(site: Site, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        context.add_cookies([{"name": identity.COOKIE, "value": identity.mint(site.ctx, OPENID), "url": site.base}])
        page = context.new_page()
        page.goto(f"{site.base}/h5/certify?mode=self")
        page.check("#consent")
        page.click("#consent-next")
        page.set_input_files("#card-file", card_photo(tmp_path))
        page.wait_for_selector("#confirm-edit-box:not([hidden])")
        page.fill("#name", NAME)
        page.fill("#id-number", NUMBER)
        page.dblclick("#confirm-yes")
        wait_until(page, lambda: any(s.id_card_key for s in sessions(site)), 30, "the card stored")
        page.wait_for_timeout(1500)  # a second answer, if any, arrives meanwhile
        current = page.get_attribute("#app", "data-session")
        on_screen = page.locator("#step-video").is_visible()
        browser.close()
    opened = sessions(site)
    assert len(opened) == 1, [s.id for s in opened]
    # The page goes on to the video with the session that holds the card: the video goes where the card is.
    assert opened[0].id == current and opened[0].id_card_key is not None and on_screen


def sessions(site: Site) -> list[CertSession]:
    with site.ctx.db() as db:
        return list(db.scalars(select(CertSession).where(CertSession.beneficiary_id == site.beneficiary_id)))
