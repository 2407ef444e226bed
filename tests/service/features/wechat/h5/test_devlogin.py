"""Development mode for the H5 pages without WeChat: only with PENSION_CERT_ENV=development and
PENSION_CERT_H5_DEV_LOGIN=true does /h5/dev-login exist; it sets the H5 cookie for a made-up ``dev-`` openid and
returns to one of our pages. Test and production: 404; production refuses the setting at start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.schema
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatUser
from service.infra.config import InsecureSettingsError, settings_from_flat
from tests.service.conftest import make_settings


@contextmanager
def app(tmp_path: Path, **overrides: Any) -> Iterator[tuple[TestClient, ServiceContext]]:
    settings = make_settings(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'dev.db'}", h5_card_check=False, **overrides
    )
    ctx = ServiceContext(settings, schema=service.schema.metadata)
    with TestClient(create_app(ctx=ctx), follow_redirects=False) as client:
        yield client, ctx


def test_development_opens_the_pages_for_a_made_up_user(tmp_path: Path) -> None:
    with app(tmp_path, env="development", h5_dev_login=True) as (client, ctx):
        r = client.get("/h5/certify?mode=self")  # no WeChat configured: straight to the development login
        assert r.status_code == 302 and r.headers["location"] == "/h5/dev-login?next=%2Fh5%2Fcertify%3Fmode%3Dself"
        r = client.get(r.headers["location"])
        assert r.status_code == 303 and r.headers["location"] == "/h5/certify?mode=self"
        assert str(client.cookies.get(identity.COOKIE)).startswith("dev-tester|")  # openid|expiry|mac
        page = client.get("/h5/certify?mode=self")
        assert page.status_code == 200 and 'id="app"' in page.text
        # Another tester (a relative, say) and a target that is not one of our pages.
        r = client.get("/h5/dev-login", params={"user": "relative", "next": "https://evil.test/"})
        assert r.headers["location"] == "/h5/"
        assert client.get("/h5/dev-login", params={"user": "../admin"}).status_code == 404
        with ctx.db() as db:
            assert {u.openid for u in db.query(WeChatUser)} == {"dev-tester", "dev-relative"}


@pytest.mark.parametrize(("env", "flag"), [("test", True), ("development", False)])
def test_anywhere_else_there_is_no_such_page(tmp_path: Path, env: str, flag: bool) -> None:
    with app(tmp_path, env=env, h5_dev_login=flag) as (client, _):
        assert client.get("/h5/dev-login").status_code == 404
        assert client.cookies.get(identity.COOKIE) is None
        r = client.get("/h5/")
        assert r.status_code == 403 and "请在微信中打开" in r.text


def test_production_refuses_the_setting(tmp_path: Path) -> None:
    settings = settings_from_flat(env="production", h5_dev_login=True)
    assert any("PENSION_CERT_H5_DEV_LOGIN" in w for w in settings.production_weaknesses())
    with pytest.raises(InsecureSettingsError, match="PENSION_CERT_H5_DEV_LOGIN"):
        make_settings(tmp_path, env="production", h5_dev_login=True).validate_secrets()
